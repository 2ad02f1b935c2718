"""The one exception base: every error a user can act on derives from :class:`FellesdriftError`
and carries its message; the CLI catches this class once, prints the message, exits 1."""

from __future__ import annotations


class FellesdriftError(Exception):
    """An error whose message tells the user what is wrong and what to do; no traceback."""
