"""The command line: parses, calls one function of a phase or the pipeline, renders the result."""

from fellesdrift.cli.app import main

__all__ = ["main"]
