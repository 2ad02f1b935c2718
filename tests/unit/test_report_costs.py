"""What changed since the last kept invoice, and the 36-month forecast: figures worked out by
hand from the sample inventories, against invoices kept the way `fellesdrift invoice` keeps
them (billing.Month)."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import Inventory, Municipality
from fellesdrift.report import billing, changes, forecast
from fellesdrift.report.invoice import invoice

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = inventory.load([ROOT / "inventories"])
ENV = "sample"
TODAY = date(2026, 12, 1)


def keep(root: Path, model: Inventory, slug: str, month: str, issued: date) -> str:
    """Invoice ``slug`` for ``month`` as `fellesdrift invoice` keeps it; its number."""
    kept = billing.Month.of(root, ENV, month)
    m = model.municipality(slug)
    doc = billing.document(model.centre, m, month, kept.next_number(m.code, slug), issued)
    kept.keep([doc], billing.xml_of([doc]))
    return doc.number


def credit(root: Path, slug: str, month: str, issued: date) -> None:
    kept = billing.Month.of(root, ENV, month)
    billed = kept.open_invoice(slug)
    assert billed is not None
    note = billing.credit_note(billed, issued)
    kept.keep([note], billing.xml_of([note]))


def edited(tmp_path: Path, edits: dict[str, list[tuple[str, str]]]) -> Inventory:
    """The samples with text replaced in some files, loaded and validated as a user's are."""
    folder = tmp_path / "inventories"
    shutil.copytree(ROOT / "inventories", folder)
    for name, pairs in edits.items():
        path = folder / name
        text = path.read_text()
        for old, new in pairs:
            assert old in text, (name, old)
            text = text.replace(old, new, 1)
        path.write_text(text)
    return inventory.load([folder])


def since(root: Path, model: Inventory, slug: str) -> changes.Comparison:
    return changes.since_last(root, ENV, model.centre, model.municipality(slug))


def test_nothing_kept_yet_is_said_so(tmp_path: Path) -> None:
    c = since(tmp_path, SAMPLES, "vinje")
    assert c.previous is None and c.changes == () and c.difference is None
    assert c.as_dict()["total"] == "128050.00"


def test_the_invoice_just_kept_is_what_the_report_computes(tmp_path: Path) -> None:
    number = keep(tmp_path, SAMPLES, "vinje", "2026-11", date(2026, 11, 30))
    c = since(tmp_path, SAMPLES, "vinje")
    assert (c.number, c.month, c.issued) == (number, "2026-11", date(2026, 11, 30))
    assert c.previous is not None and c.previous.total == Decimal("128050.00")
    assert c.changes == () and c.difference == Decimal("0.00")


def test_users_tier_price_and_a_new_site_each_explained(tmp_path: Path) -> None:
    keep(tmp_path, SAMPLES, "vinje", "2026-11", date(2026, 11, 30))
    site = SAMPLES.municipality("vinje").sites[1]
    new_site = ("  - id: skule\n    name: Vinje skule\n    kind: school\n"
                "    address: Skulevegen 2, 3890 Vinje\n    users: 30\n"
                "    lan_prefix: 10.101.200.0/24\n    link:\n      access: fibre\n"
                "      provider: vtk\n      down_mbps: 500\n      up_mbps: 500\n"
                "      vlan: 1063\n")
    now = edited(tmp_path, {
        "vinje.yaml": [("administration: 110", "administration: 120"),  # +10 users
                       ("  - service: okonomi\n    tier: pluss",
                        "  - service: okonomi\n    tier: standard"),
                       (f"  - id: {site.id}\n", f"{new_site}  - id: {site.id}\n")],
        "operations-centre.yaml": [("      standard: 60.00", "      standard: 65.00")],  # sak-arkiv
    })
    c = since(tmp_path, now, "vinje")
    got = {(ch.kind, ch.service, ch.area): (ch.before, ch.after, ch.amount) for ch in c.changes}
    assert got == {
        ("users", "drift", "administration"): ("110", "120", Decimal("1300.00")),  # 10 × 130
        # økonomi: 110 × 260 (pluss) then, 120 × 210 (standard) now: 25 200 − 28 600.
        ("tier", "okonomi", None): ("Pluss (110 users in administration)",
                                    "Standard (120 users in administration)",
                                    Decimal("-3400.00")),
        ("users", "gis", "administration"): ("110", "120", Decimal("750.00")),  # 10 × 75
        # sak og arkiv: 10 more users at the old 60.00, then 5.00 more on 120 and on 190.
        ("users", "sak-arkiv", "administration"): ("110", "120", Decimal("600.00")),
        ("price", "sak-arkiv", "administration"): ("60.00 NOK", "65.00 NOK", Decimal("600.00")),
        ("price", "sak-arkiv", "health_care"): ("60.00 NOK", "65.00 NOK", Decimal("950.00")),
        ("sites", "breiband", None): ("2", "3", Decimal("1950.00")),  # one site × 1 950
    }
    assert c.difference == Decimal("2750.00")
    assert sum((ch.amount for ch in c.changes), Decimal(0)) == c.difference
    texts = [ch.text for ch in c.changes]
    assert "Sak og arkiv: users in administration 110 → 120" in texts
    assert "Breiband og ruter per bygg: sites 2 → 3" in texts
    assert ("Økonomisystem, felles drift: tier Pluss (110 users in administration) → "
            "Standard (120 users in administration)") in texts


def test_a_subscription_added_and_one_dropped(tmp_path: Path) -> None:
    keep(tmp_path, SAMPLES, "vinje", "2026-11", date(2026, 11, 30))
    now = edited(tmp_path, {"vinje.yaml": [
        ("  - service: gis\n    tier: standard\n", "  - service: lisensar\n    tier: standard\n")]})
    c = since(tmp_path, now, "vinje")
    assert [(ch.kind, ch.service, ch.amount) for ch in c.changes] == [
        ("subscribed", "lisensar", Decimal("56100.00")),  # 510 users × 110
        ("unsubscribed", "gis", Decimal("-11250.00")),  # 150 users × 75
    ]
    assert c.changes[1].text == ("GIS og kart (eigedom, adresse, bygning, kartinnsyn): no longer "
                                 "subscribed (was Standard (110 users in administration, 40 users "
                                 "in technical))")
    assert c.difference == Decimal("44850.00")


def test_the_last_open_invoice_is_compared_newest_month_first(tmp_path: Path) -> None:
    keep(tmp_path, SAMPLES, "vinje", "2026-10", date(2026, 10, 31))
    fewer = edited(tmp_path, {"vinje.yaml": [("culture: 20", "culture: 10")]})
    november = keep(tmp_path, fewer, "vinje", "2026-11", date(2026, 11, 30))
    assert since(tmp_path, SAMPLES, "vinje").number == november
    # November credited (and not invoiced again): October's invoice is the last one open.
    credit(tmp_path, "vinje", "2026-11", date(2026, 12, 1))
    c = since(tmp_path, SAMPLES, "vinje")
    assert (c.number, c.difference) == ("202610-4036-1", Decimal("0.00"))
    # Invoiced again from the smaller inventory: compared with that (-2), 10 users of culture.
    again = keep(tmp_path, fewer, "vinje", "2026-11", date(2026, 12, 1))
    assert again == "202611-4036-2"
    c = since(tmp_path, SAMPLES, "vinje")
    assert c.number == again
    assert [(ch.text, ch.amount) for ch in c.changes] == [(
        "Drift og brukarstøtte (servicedesk, klientar, serverpark): users in culture 10 → 20",
        Decimal("1300.00"))]
    # Another municipality's invoices are not Vinje's.
    assert since(tmp_path, SAMPLES, "tokke").previous is None


# --- The forecast --------------------------------------------------------------------------


def test_vinje_forecast_by_hand() -> None:
    f = forecast.forecast(SAMPLES.centre, SAMPLES.municipality("vinje"), TODAY)
    assert (f.start, f.end, f.months) == (date(2026, 12, 1), date(2029, 11, 1), 36)
    # Both routers' leases end 2028-05-01: a C1121-8P (24 900) and a C1111-4P (18 500).
    assert [(r.site, r.model, r.month, r.price) for r in f.replacements] == [
        ("helsetun", "C1111-4P", date(2028, 5, 1), Decimal("18500.00")),
        ("radhus", "C1121-8P", date(2028, 5, 1), Decimal("24900.00"))]
    assert f.total == 36 * Decimal("128050.00") + Decimal("43400.00") == Decimal("4653200.00")
    years = f.years()
    assert [(y["first"], y["last"], y["equipment"]) for y in years] == [
        ("2026-12", "2027-11", Decimal("0.00")), ("2027-12", "2028-11", Decimal("43400.00")),
        ("2028-12", "2029-11", Decimal("0.00"))]
    assert sum((y["total"] for y in years), Decimal(0)) == f.total
    monthly = f.monthly()
    assert len(monthly) == 36 and monthly[17]["month"] == "2028-05"
    assert monthly[17]["total"] == Decimal("128050.00") + Decimal("43400.00")
    assert sum((row["total"] for row in monthly), Decimal(0)) == f.total


def _with_devices(m: Municipality, *leases: tuple[str, date]) -> Municipality:
    sites = [s.model_copy(update={"device": s.device.model_copy(
                 update={"model": model, "lease_end": lease})}) if s.device else s
             for s, (model, lease) in zip(m.sites, leases, strict=True)]
    return m.model_copy(update={"sites": sites})


@pytest.mark.parametrize(("lease_end", "counted_in", "overdue"), [
    (date(2026, 11, 30), date(2026, 12, 1), True),  # ended: due in the first month
    (date(2026, 12, 1), date(2026, 12, 1), False),
    (date(2029, 11, 30), date(2029, 11, 1), False),  # the last month
])
def test_a_lease_ending_in_the_period_is_counted_in_its_month(
        lease_end: date, counted_in: date, overdue: bool) -> None:
    m = _with_devices(SAMPLES.municipality("vinje"), ("C1111-4P", lease_end),
                      ("C1111-4P", date(2029, 12, 1)))  # after the period: not counted
    f = forecast.forecast(SAMPLES.centre, m, TODAY)
    assert [(r.month, r.overdue, r.price) for r in f.replacements] == [
        (counted_in, overdue, Decimal("18500.00"))]
    assert f.total == 36 * invoice(SAMPLES.centre, m).total + Decimal("18500.00")


def test_a_model_without_a_price_is_listed_and_left_out_of_the_totals() -> None:
    m = _with_devices(SAMPLES.municipality("vinje"), ("ISR4321", date(2027, 3, 1)),
                      ("C1111-4P", date(2027, 4, 1)))
    f = forecast.forecast(SAMPLES.centre, m, TODAY)
    assert [(r.model, r.price) for r in f.unpriced] == [("ISR4321", None)]
    assert f.equipment(f.start, f.end) == Decimal("18500.00")
    data = f.as_dict()
    assert data["unpriced"][0]["model"] == "ISR4321" and data["equipment"] == "18500.00"
