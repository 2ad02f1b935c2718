"""A problem in an inventory file, and the error that carries every problem of a run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from fellesdrift.errors import RefusedError


def _shown(text: str) -> str:
    """Text fit for one line of a terminal or a CI log: a character that is not printable
    (a line break, a control or bidi character a file put in a key or value) as its escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


@dataclass(frozen=True)
class Problem:
    """One thing wrong, where it is, and the stable id of the rule it breaks."""

    file: str
    line: int
    column: int
    field: str
    message: str
    rule: str

    def __str__(self) -> str:
        where = f"{_shown(self.file)}:{self.line}:{self.column}"
        field = f" {_shown(self.field)}:" if self.field else ""
        return f"{where}:{field} {_shown(self.message)} [{self.rule}]"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ProblemsError(RefusedError):
    """Input refused, with every problem found (each names file, line, field and rule)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems

    def lines(self) -> list[str]:
        files = len({p.file for p in self.problems})
        return [*map(str, self.problems),
                f"{len(self.problems)} problem(s) in {files} file(s); {self.consequence}."]


class InventoryError(ProblemsError):
    """Raised by :func:`fellesdrift.inventory.load` with every problem of every file."""

    def lines(self) -> list[str]:
        return [*map(str, self.problems),
                f"{len(self.problems)} problem(s); nothing was applied."]
