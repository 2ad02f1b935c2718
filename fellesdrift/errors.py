"""The one exception base: every error a user can act on derives from :class:`FellesdriftError`
and says what is wrong and what to do; the CLI catches this class once, prints its
:meth:`~FellesdriftError.lines` (no traceback) and exits with its
:attr:`~FellesdriftError.exit_code`.
"""

from __future__ import annotations


class FellesdriftError(Exception):
    """An error whose message tells the user what is wrong and what to do."""

    #: The exit status of the command it ends: 1 for refused input, 2 for what failed.
    exit_code = 2
    #: What the CLI says after the message, e.g. "nothing was applied".
    consequence = ""

    def lines(self) -> list[str]:
        text = f"error: {self}"
        return [f"{text}; {self.consequence}." if self.consequence else text]


class RefusedError(FellesdriftError):
    """Input refused before anything was applied (exit status 1)."""

    exit_code = 1
    consequence = "nothing was applied"
