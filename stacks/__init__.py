"""The Pulumi program of fellesdrift: components named after the domain, and drivers."""
