"""A problem in an inventory file, and the error that carries every problem of a run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


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
        where = f"{self.file}:{self.line}:{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message} [{self.rule}]"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class InventoryError(Exception):
    """Raised by :func:`fellesdrift.inventory.load` with every problem of every file."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems
