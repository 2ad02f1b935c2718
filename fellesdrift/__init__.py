"""fellesdrift: infrastructure as code for an IT operations centre shared by municipalities."""

__version__ = "0.1.0"
