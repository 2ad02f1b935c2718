"""A municipality's monthly invoice, computed from the centre's service catalogue.

Rules (prices are monthly, NOK excluding VAT):

- ``per_user`` services: the municipality's users in the service's areas (every area when the
  service names none) × the price of the subscribed tier.
- ``per_site`` services: the municipality's number of sites × the price of the tier.
- Each line and the total are exact decimals rounded to øre (two decimals, half up).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from .model import Municipality, OperationsCentre, UsersPerArea

CENT = Decimal("0.01")
#: Every service area, in the model's order.
AREAS: tuple[str, ...] = tuple(UsersPerArea.model_fields)


class InvoiceError(ValueError):
    """A subscription the catalogue cannot price (validation normally rules it out)."""


@dataclass(frozen=True)
class InvoiceLine:
    service: str
    name: str
    tier: str
    billing: Literal["per_user", "per_site"]
    #: What is counted: the service areas whose users count, or ("sites",).
    counted: tuple[str, ...]
    quantity: int
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(CENT, ROUND_HALF_UP)

    @property
    def basis(self) -> str:
        """What the quantity counts, in words."""
        if self.billing == "per_site":
            return "sites"
        if self.counted == AREAS:
            return "users (all areas)"
        return "users in " + ", ".join(self.counted)

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "name": self.name, "tier": self.tier,
                "billing": self.billing, "counted": list(self.counted), "basis": self.basis,
                "quantity": self.quantity, "unit_price": str(money(self.unit_price)),
                "amount": str(self.amount)}


@dataclass(frozen=True)
class Invoice:
    municipality: str
    lines: tuple[InvoiceLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00")).quantize(CENT)

    def as_dict(self) -> dict[str, Any]:
        return {"municipality": self.municipality, "currency": "NOK",
                "lines": [line.as_dict() for line in self.lines], "total": str(self.total)}


def money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, ROUND_HALF_UP)


def nok(amount: Decimal) -> str:
    """An amount as people read it: ``45 300.00 NOK`` (space between thousands)."""
    return f"{money(amount):,.2f}".replace(",", " ") + " NOK"


def invoice(centre: OperationsCentre, municipality: Municipality) -> Invoice:
    """The monthly invoice of one municipality, one line per subscription, in file order."""
    catalogue = {s.id: s for s in centre.services}
    lines = []
    for sub in municipality.services:
        service = catalogue.get(sub.service)
        if service is None:
            raise InvoiceError(f"{municipality.slug}: {sub.service!r} is not in the catalogue")
        price = service.prices.get(sub.tier)
        if price is None:
            raise InvoiceError(f"{municipality.slug}: {sub.service} is not offered at "
                               f"{sub.tier!r}")
        if service.billing == "per_site":
            counted: tuple[str, ...] = ("sites",)
            quantity = len(municipality.sites)
        else:
            counted = tuple(service.areas) if service.areas else AREAS
            quantity = municipality.users.total(list(counted))
        lines.append(InvoiceLine(service.id, service.name, sub.tier, service.billing, counted,
                                 quantity, price))
    return Invoice(municipality.slug, tuple(lines))
