"""The plan's invoice part: a municipality's monthly amount as last applied and after the
change, line by line.

"Before" is the invoice `up` recorded in the audit log at the municipality's last successful
apply (:func:`.audit.invoices`); "after" is :func:`fellesdrift.invoice.invoice` of the inventory
as it is now. A line is a service and what it counts (one service area's users, or the sites).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fellesdrift.report.invoice import Invoice, nok

Key = tuple[str, str | None]


@dataclass(frozen=True)
class LineChange:
    service: str
    area: str | None
    before: str | None  # the line in words, e.g. "Standard: 110 users in administration"
    after: str | None
    change: Decimal

    def __str__(self) -> str:
        what = f"{self.service}" + (f" ({self.area})" if self.area else " (sites)")
        sign = "+" if self.change >= 0 else "−"
        return (f"{what}: {self.before or 'none'} → {self.after or 'none'}, "
                f"{sign}{nok(abs(self.change))}")


@dataclass(frozen=True)
class Delta:
    municipality: str
    before: Decimal | None  # None: never applied
    after: Decimal
    lines: tuple[LineChange, ...]

    def summary(self) -> str:
        if self.before is None:
            return (f"invoice {self.municipality}: {nok(self.after)} a month (first apply; "
                    "nothing applied before)")
        if not self.lines:
            return f"invoice {self.municipality}: unchanged, {nok(self.after)} a month"
        change = self.after - self.before
        sign = "+" if change >= 0 else "−"
        return (f"invoice {self.municipality}: {nok(self.before)} → {nok(self.after)} a month "
                f"({sign}{nok(abs(change))})")

    def as_dict(self) -> dict[str, Any]:
        return {"municipality": self.municipality,
                "before": None if self.before is None else str(self.before),
                "after": str(self.after),
                "lines": [{"service": c.service, "area": c.area, "before": c.before,
                           "after": c.after, "change": str(c.change)} for c in self.lines]}


def _lines(recorded: dict[str, Any]) -> dict[Key, tuple[str, Decimal]]:
    return {(str(ln["service"]), ln.get("area")): (f"{ln['description']} = {ln['amount']}",
                                                   Decimal(str(ln["amount"])))
            for ln in recorded.get("lines", [])}


def delta(before: dict[str, Any] | None, after: Invoice) -> Delta:
    """``before``: an invoice as :meth:`Invoice.as_dict` recorded it (None: never applied)."""
    if before is None:
        return Delta(after.municipality, None, after.total, ())
    then = _lines(before)
    now = _lines(after.as_dict())
    changes = []
    for key in sorted(set(then) | set(now), key=lambda k: (k[0], k[1] or "")):
        old, new = then.get(key), now.get(key)
        if old != new:
            changes.append(LineChange(key[0], key[1], old[0] if old else None,
                                      new[0] if new else None,
                                      (new[1] if new else Decimal(0))
                                      - (old[1] if old else Decimal(0))))
    return Delta(after.municipality, Decimal(str(before["total"])), after.total, tuple(changes))
