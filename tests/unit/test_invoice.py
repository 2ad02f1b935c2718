"""Monthly invoices from the catalogue, checked against invoices computed by hand."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import Subscription
from fellesdrift.report.invoice import InvoiceError, invoice, nok

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = inventory.load([ROOT / "inventories"])
ALL = ("administration", "education", "health_care", "technical", "culture")


def amounts(slug: str) -> dict[tuple[str, str | None], tuple[int, Decimal, Decimal]]:
    bill = invoice(SAMPLES.centre, SAMPLES.municipality(slug))
    return {(line.service, line.area): (line.quantity, line.unit_price, line.amount)
            for line in bill.lines}


def test_vinje_by_hand() -> None:
    # Users: administration 110, education 150, health_care 190, technical 40, culture 20 = 510;
    # two sites. One line per service and service area.
    users = {"administration": 110, "education": 150, "health_care": 190, "technical": 40,
             "culture": 20}
    drift = {("drift", a): (n, Decimal("130.00"), Decimal(130 * n)) for a, n in users.items()}
    assert amounts("vinje") == drift | {
        ("okonomi", "administration"): (110, Decimal("260.00"), Decimal("28600.00")),  # pluss
        ("gis", "administration"): (110, Decimal("75.00"), Decimal("8250.00")),
        ("gis", "technical"): (40, Decimal("75.00"), Decimal("3000.00")),
        ("sak-arkiv", "administration"): (110, Decimal("60.00"), Decimal("6600.00")),
        ("sak-arkiv", "health_care"): (190, Decimal("60.00"), Decimal("11400.00")),
        ("breiband", None): (2, Decimal("1950.00"), Decimal("3900.00")),  # per site, standard
    }
    bill = invoice(SAMPLES.centre, SAMPLES.municipality("vinje"))
    # 66 300 drift + 28 600 økonomi + 11 250 GIS + 18 000 sak/arkiv + 3 900 breiband
    assert bill.total == Decimal("128050.00")
    assert nok(bill.total) == "128 050.00 NOK"
    # Every service at 25 % VAT: 32 012.50.
    [group] = bill.vat()
    assert (group.rate, group.taxable, group.tax, group.category) == (
        Decimal(25), Decimal("128050.00"), Decimal("32012.50"), "S")
    assert bill.total_with_vat == Decimal("160062.50")


def test_seljord_by_hand() -> None:
    # Users: administration 95, education 140, health_care 160, technical 30, culture 15 = 440;
    # two sites; everything at standard.
    got = amounts("seljord")
    per_service: dict[str, tuple[int, Decimal]] = {}
    for (service, _), (quantity, _, amount) in got.items():
        n, total = per_service.get(service, (0, Decimal(0)))
        per_service[service] = (n + quantity, total + amount)
    assert per_service == {
        "drift": (440, Decimal("57200.00")),
        "okonomi": (95, Decimal("19950.00")),
        "gis": (125, Decimal("9375.00")),
        "sak-arkiv": (255, Decimal("15300.00")),
        "breiband": (2, Decimal("3900.00")),
    }
    assert invoice(SAMPLES.centre, SAMPLES.municipality("seljord")).total == Decimal("105725.00")


def test_lines_follow_the_subscriptions_and_say_what_they_count() -> None:
    m = SAMPLES.municipality("vinje")
    bill = invoice(SAMPLES.centre, m)
    assert list(dict.fromkeys(line.service for line in bill.lines)) == [
        s.service for s in m.services]
    assert [line.area for line in bill.lines if line.service == "drift"] == list(ALL)
    gis = [line for line in bill.lines if line.service == "gis"]
    assert [line.basis for line in gis] == ["users in administration", "users in technical"]
    assert gis[0].description == "Standard: 110 users in administration"
    [okonomi] = [line for line in bill.lines if line.service == "okonomi"]
    assert okonomi.description == "Pluss: 110 users in administration"
    [breiband] = [line for line in bill.lines if line.service == "breiband"]
    assert breiband.basis == "sites" and breiband.description == "Standard: 2 sites"
    data = bill.as_dict()
    assert data["total"] == "128050.00" and data["currency"] == "NOK"
    assert data["lines"][0]["unit_price"] == "130.00"
    assert data["vat"] == [{"category": "S", "rate": "25", "taxable": "128050.00",
                            "tax": "32012.50"}]
    assert data["total_with_vat"] == "160062.50"


def test_vat_is_grouped_per_rate_and_rounded_per_group() -> None:
    services = [s.model_copy(update={"vat_rate": Decimal(0)}) if s.id == "breiband" else
                s.model_copy(update={"vat_rate": Decimal("12.5")}) if s.id == "gis" else s
                for s in SAMPLES.centre.services]
    centre = SAMPLES.centre.model_copy(update={"services": services})
    bill = invoice(centre, SAMPLES.municipality("vinje"))
    groups = [(g.category, g.rate, g.taxable, g.tax) for g in bill.vat()]
    assert groups == [
        ("S", Decimal(25), Decimal("112900.00"), Decimal("28225.00")),
        ("S", Decimal("12.5"), Decimal("11250.00"), Decimal("1406.25")),
        ("Z", Decimal(0), Decimal("3900.00"), Decimal("0.00")),
    ]
    assert bill.vat_total == Decimal("29631.25")


def test_a_service_without_a_vat_rate_has_no_vat_breakdown() -> None:
    services = [s.model_copy(update={"vat_rate": None}) if s.id == "gis" else s
                for s in SAMPLES.centre.services]
    centre = SAMPLES.centre.model_copy(update={"services": services})
    bill = invoice(centre, SAMPLES.municipality("vinje"))
    assert bill.unpriced_vat == ("gis",)
    assert "vat" not in bill.as_dict() and bill.as_dict()["total"] == "128050.00"
    with pytest.raises(InvoiceError, match="no vat_rate for gis"):
        bill.vat()


def test_no_subscriptions_is_a_zero_invoice() -> None:
    m = SAMPLES.municipality("vinje").model_copy(update={"services": []})
    bill = invoice(SAMPLES.centre, m)
    assert bill.lines == () and bill.total == Decimal("0.00")
    assert nok(bill.total) == "0.00 NOK"


@pytest.mark.parametrize(("service", "tier"), [("nope", "standard"), ("gis", "pluss")])
def test_unpriced_subscription_is_an_error(service: str, tier: str) -> None:
    m = SAMPLES.municipality("vinje")
    odd = m.model_copy(update={"services": [Subscription(service=service, tier=tier)]})
    with pytest.raises(InvoiceError, match=service):
        invoice(SAMPLES.centre, odd)


def test_nok_groups_thousands_and_keeps_two_decimals() -> None:
    assert nok(Decimal("1342450")) == "1 342 450.00 NOK"
    assert nok(Decimal("95.5")) == "95.50 NOK"
    assert nok(Decimal("0.005")) == "0.01 NOK"
