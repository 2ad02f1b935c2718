"""What a municipality can expect to pay over the next 36 months.

Per month, from the report's month on: today's monthly invoice (:func:`fellesdrift.invoice.
invoice`, the one computation: today's subscriptions, users, sites and prices), plus, in the
month its lease ends, the replacement of each site's network device at the catalogue's price for
its model (``equipment_prices`` in ``operations-centre.yaml``). A device whose lease has already
ended is due in the first month. Amounts are NOK excluding VAT.

A device whose model has no price in the catalogue is not a validation error (the catalogue's
prices are optional, like the invoice's fields): the forecast lists it as *unpriced*, says so
next to its totals, and leaves it out of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from fellesdrift.inventory.model import Municipality, OperationsCentre
from fellesdrift.report.invoice import invoice

#: How far the forecast looks ahead, in months (the cooperations' budgets plan three years).
HORIZON_MONTHS = 36


def month_of(first: date, offset: int) -> date:
    """The first day of the month ``offset`` months after ``first``'s month."""
    year, month = divmod(first.year * 12 + first.month - 1 + offset, 12)
    return date(year, month + 1, 1)


@dataclass(frozen=True)
class Replacement:
    """One site's device whose lease ends within the forecast."""

    site: str
    site_name: str
    model: str
    lease_end: date
    #: The first day of the month the replacement is counted in.
    month: date
    #: The catalogue's price for the model; None when it gives none (unpriced).
    price: Decimal | None
    #: Its lease ended before the forecast starts.
    overdue: bool

    def as_dict(self) -> dict[str, Any]:
        return {"site": self.site, "site_name": self.site_name, "model": self.model,
                "lease_end": self.lease_end.isoformat(), "month": self.month.strftime("%Y-%m"),
                "price": None if self.price is None else str(self.price),
                "overdue": self.overdue}


@dataclass(frozen=True)
class Forecast:
    municipality: str
    #: The first day of the forecast's first month.
    start: date
    #: Today's monthly invoice total, every month.
    subscriptions: Decimal
    replacements: tuple[Replacement, ...]
    months: int = HORIZON_MONTHS

    @property
    def end(self) -> date:
        """The first day of the forecast's last month."""
        return month_of(self.start, self.months - 1)

    @property
    def unpriced(self) -> tuple[Replacement, ...]:
        return tuple(r for r in self.replacements if r.price is None)

    def equipment(self, first: date, last: date) -> Decimal:
        """The priced replacements counted in the months from ``first`` to ``last``."""
        return sum((r.price for r in self.replacements
                    if r.price is not None and first <= r.month <= last), Decimal("0.00"))

    def monthly(self) -> list[dict[str, Any]]:
        """Every month: subscriptions, equipment, total."""
        rows = []
        for i in range(self.months):
            month = month_of(self.start, i)
            equipment = self.equipment(month, month)
            rows.append({"month": month.strftime("%Y-%m"), "subscriptions": self.subscriptions,
                         "equipment": equipment, "total": self.subscriptions + equipment})
        return rows

    def years(self) -> list[dict[str, Any]]:
        """The forecast in 12-month periods: first and last month, subscriptions, equipment,
        total."""
        rows = []
        for i in range(0, self.months, 12):
            first, last = month_of(self.start, i), month_of(self.start, min(i + 12, self.months)
                                                            - 1)
            n = (last.year - first.year) * 12 + last.month - first.month + 1
            subscriptions = self.subscriptions * n
            equipment = self.equipment(first, last)
            rows.append({"first": first.strftime("%Y-%m"), "last": last.strftime("%Y-%m"),
                         "months": n, "subscriptions": subscriptions, "equipment": equipment,
                         "total": subscriptions + equipment})
        return rows

    @property
    def total(self) -> Decimal:
        return self.subscriptions * self.months + self.equipment(self.start, self.end)

    def as_dict(self) -> dict[str, Any]:
        def text(row: dict[str, Any]) -> dict[str, Any]:
            return {k: str(v) if isinstance(v, Decimal) else v for k, v in row.items()}
        return {"first": self.start.strftime("%Y-%m"), "last": self.end.strftime("%Y-%m"),
                "months": self.months, "subscriptions_monthly": str(self.subscriptions),
                "subscriptions": str(self.subscriptions * self.months),
                "equipment": str(self.equipment(self.start, self.end)),
                "total": str(self.total),
                "replacements": [r.as_dict() for r in self.replacements],
                "unpriced": [r.as_dict() for r in self.unpriced],
                "years": [text(r) for r in self.years()],
                "monthly": [text(r) for r in self.monthly()]}


def forecast(centre: OperationsCentre, m: Municipality, today: date,
             months: int = HORIZON_MONTHS) -> Forecast:
    """``m``'s forecast over ``months`` months from ``today``'s month."""
    start = today.replace(day=1)
    end = month_of(start, months)  # the first day after the forecast
    replacements = []
    for site in m.sites:
        d = site.device
        if d is None or d.lease_end >= end:
            continue
        overdue = d.lease_end < start
        replacements.append(Replacement(
            site.id, site.name, d.model, d.lease_end,
            start if overdue else d.lease_end.replace(day=1),
            centre.equipment_prices.get(d.model), overdue))
    replacements.sort(key=lambda r: (r.month, r.site))
    return Forecast(m.slug, start, invoice(centre, m).total, tuple(replacements), months)
