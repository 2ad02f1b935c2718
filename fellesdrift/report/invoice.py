"""A municipality's monthly invoice, computed from the centre's service catalogue.

This is the one computation of what a municipality pays: the report shows it, and
``fellesdrift invoice`` bills it (:mod:`fellesdrift.billing`, :mod:`fellesdrift.ehf`).

Rules (prices are monthly, NOK excluding VAT):

- ``per_user`` services: one line per service area the service counts (every area when the
  service names none): the municipality's users in that area × the price of the subscribed tier.
- ``per_site`` services: one line, the municipality's number of sites × the price of the tier.
- Each line and the total are exact decimals rounded to øre (two decimals, half up).
- VAT (:meth:`Invoice.vat`): per rate, the sum of its lines × the rate, rounded to øre; the rate
  is the service's ``vat_rate`` in the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from fellesdrift.errors import FellesdriftError
from fellesdrift.inventory.model import Municipality, OperationsCentre, UsersPerArea

CENT = Decimal("0.01")
#: Every service area, in the model's order.
AREAS: tuple[str, ...] = tuple(UsersPerArea.model_fields)


class InvoiceError(FellesdriftError, ValueError):
    """A subscription the catalogue cannot price (validation normally rules it out)."""


@dataclass(frozen=True)
class InvoiceLine:
    service: str
    name: str
    tier: str
    #: The tier's name in the catalogue's service levels (the tier id when it has none).
    tier_name: str
    billing: Literal["per_user", "per_site"]
    #: The service area whose users are counted; None on a per-site line.
    area: str | None
    quantity: int
    unit_price: Decimal
    #: VAT in percent, from the catalogue; None when the catalogue gives no rate.
    vat_rate: Decimal | None

    @property
    def amount(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(CENT, ROUND_HALF_UP)

    @property
    def basis(self) -> str:
        """What the quantity counts, in words."""
        return "sites" if self.area is None else f"users in {self.area}"

    @property
    def description(self) -> str:
        """The line in words, with its tier: ``Standard: 110 users in administration``."""
        return f"{self.tier_name}: {self.quantity} {self.basis}"

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "name": self.name, "tier": self.tier,
                "tier_name": self.tier_name, "billing": self.billing, "area": self.area,
                "basis": self.basis, "description": self.description,
                "quantity": self.quantity, "unit_price": str(money(self.unit_price)),
                "amount": str(self.amount),
                "vat_rate": None if self.vat_rate is None else str(self.vat_rate)}


@dataclass(frozen=True)
class VatGroup:
    """The lines taxed at one rate: EN 16931's VAT breakdown."""

    rate: Decimal
    taxable: Decimal
    tax: Decimal

    @property
    def category(self) -> str:
        """UNCL5305: S (standard rated) or Z (zero rated)."""
        return "S" if self.rate > 0 else "Z"


@dataclass(frozen=True)
class Invoice:
    municipality: str
    lines: tuple[InvoiceLine, ...]

    @property
    def total(self) -> Decimal:
        """The total excluding VAT."""
        return sum((line.amount for line in self.lines), Decimal("0.00")).quantize(CENT)

    @property
    def unpriced_vat(self) -> tuple[str, ...]:
        """The services on this invoice whose VAT rate the catalogue does not give."""
        return tuple(dict.fromkeys(ln.service for ln in self.lines if ln.vat_rate is None))

    def vat(self) -> tuple[VatGroup, ...]:
        """The VAT breakdown, one group per rate, highest rate first."""
        if self.unpriced_vat:
            raise InvoiceError(f"{self.municipality}: the catalogue gives no vat_rate for "
                               f"{', '.join(self.unpriced_vat)}")
        taxable: dict[Decimal, Decimal] = {}
        for line in self.lines:
            assert line.vat_rate is not None
            taxable[line.vat_rate] = taxable.get(line.vat_rate, Decimal("0.00")) + line.amount
        return tuple(VatGroup(rate, base, money(base * rate / 100))
                     for rate, base in sorted(taxable.items(), reverse=True))

    @property
    def vat_total(self) -> Decimal:
        return sum((g.tax for g in self.vat()), Decimal("0.00"))

    @property
    def total_with_vat(self) -> Decimal:
        return self.total + self.vat_total

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"municipality": self.municipality, "currency": "NOK",
                                "lines": [line.as_dict() for line in self.lines],
                                "total": str(self.total)}
        if not self.unpriced_vat:
            data["vat"] = [{"category": g.category, "rate": str(g.rate),
                            "taxable": str(g.taxable), "tax": str(g.tax)} for g in self.vat()]
            data["total_with_vat"] = str(self.total_with_vat)
        return data


def money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, ROUND_HALF_UP)


def nok(amount: Decimal) -> str:
    """An amount as people read it: ``45 300.00 NOK`` (space between thousands)."""
    return f"{money(amount):,.2f}".replace(",", " ") + " NOK"


def invoice(centre: OperationsCentre, municipality: Municipality) -> Invoice:
    """The monthly invoice of one municipality: per subscription in file order, one line per
    counted service area (per-user services) or one line of sites (per-site services)."""
    catalogue = {s.id: s for s in centre.services}
    tier_names = {level.id: level.name for level in centre.service_levels}
    lines: list[InvoiceLine] = []
    for sub in municipality.services:
        service = catalogue.get(sub.service)
        if service is None:
            raise InvoiceError(f"{municipality.slug}: {sub.service!r} is not in the catalogue")
        price = service.prices.get(sub.tier)
        if price is None:
            raise InvoiceError(f"{municipality.slug}: {sub.service} is not offered at "
                               f"{sub.tier!r}")
        tier_name = tier_names.get(sub.tier, sub.tier)
        if service.billing == "per_site":
            counts: list[tuple[str | None, int]] = [(None, len(municipality.sites))]
        else:
            areas = service.areas or AREAS
            counts = [(area, municipality.users.total([area])) for area in areas]
        lines.extend(InvoiceLine(service.id, service.name, sub.tier, tier_name, service.billing,
                                 area, quantity, price, service.vat_rate)
                     for area, quantity in counts)
    return Invoice(municipality.slug, tuple(lines))
