"""Monthly invoices from the catalogue, checked against invoices computed by hand."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from fellesdrift import inventory
from fellesdrift.invoice import InvoiceError, invoice, nok
from fellesdrift.model import Subscription

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = inventory.load([ROOT / "inventories"])


def amounts(slug: str) -> dict[str, tuple[int, Decimal, Decimal]]:
    bill = invoice(SAMPLES.centre, SAMPLES.municipality(slug))
    return {line.service: (line.quantity, line.unit_price, line.amount) for line in bill.lines}


def test_vinje_by_hand() -> None:
    # Users: administration 110, education 150, health_care 190, technical 40, culture 20 = 510;
    # two sites.
    assert amounts("vinje") == {
        "drift": (510, Decimal("130.00"), Decimal("66300.00")),      # all areas, standard
        "okonomi": (110, Decimal("260.00"), Decimal("28600.00")),    # administration, pluss
        "gis": (150, Decimal("75.00"), Decimal("11250.00")),         # administration+technical
        "sak-arkiv": (300, Decimal("60.00"), Decimal("18000.00")),   # administration+health
        "breiband": (2, Decimal("1950.00"), Decimal("3900.00")),     # per site, standard
    }
    bill = invoice(SAMPLES.centre, SAMPLES.municipality("vinje"))
    assert bill.total == Decimal("128050.00")
    assert nok(bill.total) == "128 050.00 NOK"


def test_seljord_by_hand() -> None:
    # Users: administration 95, education 140, health_care 160, technical 30, culture 15 = 440;
    # two sites; everything at standard.
    assert amounts("seljord") == {
        "drift": (440, Decimal("130.00"), Decimal("57200.00")),
        "okonomi": (95, Decimal("210.00"), Decimal("19950.00")),
        "gis": (125, Decimal("75.00"), Decimal("9375.00")),
        "sak-arkiv": (255, Decimal("60.00"), Decimal("15300.00")),
        "breiband": (2, Decimal("1950.00"), Decimal("3900.00")),
    }
    assert invoice(SAMPLES.centre, SAMPLES.municipality("seljord")).total == Decimal("105725.00")


def test_lines_follow_the_subscriptions_and_say_what_they_count() -> None:
    m = SAMPLES.municipality("vinje")
    bill = invoice(SAMPLES.centre, m)
    assert [line.service for line in bill.lines] == [s.service for s in m.services]
    by_id = {line.service: line for line in bill.lines}
    assert by_id["drift"].basis == "users (all areas)"
    assert by_id["gis"].basis == "users in administration, technical"
    assert by_id["breiband"].basis == "sites"
    data = bill.as_dict()
    assert data["total"] == "128050.00" and data["currency"] == "NOK"
    assert data["lines"][0]["unit_price"] == "130.00"


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
