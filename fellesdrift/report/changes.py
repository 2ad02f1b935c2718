"""What changed since a municipality's last invoice, and why.

Today's invoice (:func:`fellesdrift.invoice.invoice`, the one computation of amounts) is compared
with the municipality's last kept invoice (:func:`fellesdrift.billing.last_invoice`) line by
line; a line is a service and what it counts (one service area's users, or the sites). Every
difference is one change with its effect on the monthly total, and the changes add up to the
difference of the two totals exactly:

- ``subscribed`` / ``unsubscribed``: the service is on one of the two invoices only (its whole
  amount);
- ``tier``: the service is billed at another tier (its lines now minus its lines then);
- ``users`` / ``sites``: at the same tier, a line counts more or fewer users or sites (the
  difference × the previous unit price);
- ``price``: at the same tier, the catalogue's unit price changed (the difference × today's
  quantity).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from fellesdrift.inventory.model import Municipality, OperationsCentre
from fellesdrift.report import billing
from fellesdrift.report.invoice import Invoice, InvoiceLine, invoice, money, nok

Kind = Literal["subscribed", "unsubscribed", "tier", "users", "sites", "price"]


@dataclass(frozen=True)
class Change:
    kind: Kind
    service: str
    #: The service's name (today's, or the kept invoice's for a service no longer billed).
    name: str
    #: The service area of a users or price change; None for the others and for sites.
    area: str | None
    #: What it was and what it is, in words: ``110`` (users or sites), ``Standard (2 sites)``,
    #: ``130.00 NOK``; ``none`` for a service on one invoice only.
    before: str
    after: str
    #: The change's effect on the monthly total, NOK excluding VAT.
    amount: Decimal

    @property
    def what(self) -> str:
        """What changed, in words: ``users in administration``, ``tier``, ``subscribed`` …"""
        return {"subscribed": "subscribed", "unsubscribed": "no longer subscribed",
                "tier": "tier", "users": f"users in {self.area}", "sites": "sites",
                "price": "unit price " + (f"per user in {self.area}" if self.area
                                          else "per site")}[self.kind]

    @property
    def text(self) -> str:
        """The change in words: ``Drift: users in administration 110 → 120``."""
        if self.kind == "subscribed":
            return f"{self.name}: subscribed at {self.after}"
        if self.kind == "unsubscribed":
            return f"{self.name}: no longer subscribed (was {self.before})"
        return f"{self.name}: {self.what} {self.before} → {self.after}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "service": self.service, "name": self.name,
                "area": self.area, "what": self.what, "before": self.before,
                "after": self.after,
                "amount": str(self.amount), "text": self.text}


@dataclass(frozen=True)
class Comparison:
    """Today's monthly amount against the last kept invoice (none kept: ``previous`` None)."""

    municipality: str
    current: Invoice
    previous: Invoice | None
    #: The kept invoice's number, the month it billed and its issue date.
    number: str | None = None
    month: str | None = None
    issued: date | None = None

    @property
    def changes(self) -> tuple[Change, ...]:
        return () if self.previous is None else compare(self.previous, self.current)

    @property
    def difference(self) -> Decimal | None:
        return None if self.previous is None else self.current.total - self.previous.total

    def as_dict(self) -> dict[str, Any]:
        return {"previous": None if self.previous is None else {
                    "number": self.number, "month": self.month,
                    "issue_date": self.issued.isoformat() if self.issued else None,
                    "total": str(self.previous.total)},
                "total": str(self.current.total),
                "difference": None if self.difference is None else str(self.difference),
                "changes": [c.as_dict() for c in self.changes]}


def since_last(root: Path, env: str, centre: OperationsCentre, m: Municipality) -> Comparison:
    """What changed since ``m``'s last kept invoice in ``root/env`` (``invoices/<env>/``)."""
    current = invoice(centre, m)
    kept = billing.last_invoice(root, env, m.slug)
    if kept is None:
        return Comparison(m.slug, current, None)
    return Comparison(m.slug, current, kept.bill, kept.number,
                      kept.period[0].strftime("%Y-%m"), kept.issue_date)


def _services(bill: Invoice) -> dict[str, list[InvoiceLine]]:
    by: dict[str, list[InvoiceLine]] = {}
    for line in bill.lines:
        by.setdefault(line.service, []).append(line)
    return by


def _counts(lines: list[InvoiceLine]) -> str:
    return ", ".join(f"{ln.quantity} {ln.basis}" for ln in lines)


def _sum(lines: list[InvoiceLine]) -> Decimal:
    return sum((ln.amount for ln in lines), Decimal("0.00"))


def compare(previous: Invoice, current: Invoice) -> tuple[Change, ...]:
    """Every difference between two invoices of one municipality (see the module's rules), in
    today's line order, then the services no longer billed."""
    before, after = _services(previous), _services(current)
    changes: list[Change] = []
    for service, now in after.items():
        then = before.get(service)
        head = now[0]
        if then is None:
            changes.append(Change("subscribed", service, head.name, None, "none",
                                  f"{head.tier_name} ({_counts(now)})", _sum(now)))
        elif then[0].tier != head.tier:
            changes.append(Change("tier", service, head.name, None,
                                  f"{then[0].tier_name} ({_counts(then)})",
                                  f"{head.tier_name} ({_counts(now)})", _sum(now) - _sum(then)))
        else:
            changes.extend(_line_changes(then, now))
    changes.extend(Change("unsubscribed", service, then[0].name, None,
                          f"{then[0].tier_name} ({_counts(then)})", "none", -_sum(then))
                   for service, then in before.items() if service not in after)
    return tuple(changes)


def _line_changes(then: list[InvoiceLine], now: list[InvoiceLine]) -> list[Change]:
    """One service at one tier: its lines' counts and prices, matched by what they count (a
    line on one side only counts 0 on the other)."""
    old = {ln.area: ln for ln in then}
    new = {ln.area: ln for ln in now}
    changes: list[Change] = []
    for area in [*new, *(a for a in old if a not in new)]:
        a, b = old.get(area), new.get(area)
        line = b or a
        assert line is not None
        q0, q1 = (a.quantity if a else 0), (b.quantity if b else 0)
        p0 = a.unit_price if a else line.unit_price
        p1 = b.unit_price if b else p0
        if q0 != q1:
            changes.append(Change("sites" if area is None else "users", line.service,
                                  line.name, area, str(q0), str(q1),
                                  money((q1 - q0) * p0)))
        if p0 != p1:
            changes.append(Change("price", line.service, line.name, area, nok(p0), nok(p1),
                                  money((p1 - p0) * q1)))
    return changes
