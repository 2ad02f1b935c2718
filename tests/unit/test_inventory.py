"""The loader: a valid inventory loads; every bad one is reported at its file, line and field.

The corpus of bad inventories is in test_inventory_corpus.py; properties (arbitrary input) in
test_inventory_properties.py.
"""

from __future__ import annotations

import ipaddress
import shutil
import typing
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from fellesdrift.inventory import load as inventory
from fellesdrift.inventory import safeyaml
from fellesdrift.inventory.addressing import Span, free_prefixes, overlaps, parse_prefix
from fellesdrift.inventory.load import InventoryError
from fellesdrift.inventory.model import Platform
from fellesdrift.inventory.safeyaml import Flagged, plain_scalar

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "inventories"


def test_sample_and_fixture_inventories_load(fixture_inventories: Path) -> None:
    model = inventory.load([fixture_inventories])
    assert sorted(m.slug for m in model.municipalities) == ["tokke", "vinje"]
    vinje = model.municipality("vinje")
    assert vinje.sites[0].lan_prefix == "10.104.1.0/24"
    assert str(vinje.sites[0].lan.network_address + 10) == "10.104.1.10"
    assert str(model.municipality("tokke").sites[0].lan.network_address + 10) == "10.104.2.10"
    assert model.centre.address_plan.aggregates == ["10.104.0.0/16"]


def test_samples_cover_both_cooperations_within_the_lab_plan() -> None:
    model = inventory.load([SAMPLES])
    slugs = {m.slug for m in model.municipalities}
    assert slugs == {"seljord", "kviteseid", "nissedal", "fyresdal", "tokke", "vinje", "hjartdal",
                     "skien", "porsgrunn", "bamble", "kragero", "drangedal", "siljan"}
    sites = [s for m in model.municipalities for s in m.sites]
    assert len(sites) <= 20 and all(1 <= len(m.sites) <= 2 for m in model.municipalities)
    lab = ipaddress.IPv4Network("10.100.0.0/14")
    assert all(s.lan.subnet_of(lab) for s in sites)
    assert model.municipality("kragero").name == "Kragerø"
    # Prices stay exact: 95.00 is Decimal("95.00"), never a binary float.
    drift = next(s for s in model.centre.services if s.id == "drift")
    assert drift.prices["basis"] == Decimal("95.00")


def _with(tmp_path: Path, fixtures: Path, name: str, text: str) -> Path:
    shutil.copy(fixtures / "operations-centre.yaml", tmp_path)
    (tmp_path / name).write_text(text)
    return tmp_path


GOOD = (Path(__file__).parent / "bad_inventories" / "unique-code" / "tokke.yaml").read_text()


def test_all_problems_of_all_files_at_once(tmp_path: Path, fixture_inventories: Path) -> None:
    folder = _with(tmp_path, fixture_inventories, "tokke.yaml", GOOD)
    # vinje shares tokke's LAN (the later file is blamed); kviteseid writes its code as a number
    (folder / "vinje.yaml").write_text(
        GOOD.replace("tokke", "vinje").replace("Tokke", "Vinje").replace('"4034"', '"4036"')
        .replace("vlan: 102", "vlan: 101").replace("FGL2245D3AB", "FGL2318E4AC"))
    (folder / "kviteseid.yaml").write_text(
        GOOD.replace("tokke", "kviteseid").replace('"4034"', "4028")
        .replace("10.104.2.0", "10.104.3.0"))
    with pytest.raises(InventoryError) as err:
        inventory.load([folder])
    found = sorted((Path(p.file).name, p.line, p.rule) for p in err.value.problems)
    assert found == [("kviteseid.yaml", 2, "wrong-type"), ("vinje.yaml", 24, "prefix-overlap")]


def test_problem_text_names_file_line_column_field_and_rule(
    tmp_path: Path, fixture_inventories: Path
) -> None:
    folder = _with(tmp_path, fixture_inventories, "tokke.yaml", GOOD.replace('"4034"', "4034"))
    with pytest.raises(InventoryError) as err:
        inventory.load([folder])
    [problem] = err.value.problems
    assert str(problem) == (f"{folder / 'tokke.yaml'}:2:7: code: got the number 4034 where text "
                            'is expected; write it in quotes: "4034" (the official four-digit '
                            'municipality number, in quotes, e.g. "4022") [wrong-type]')
    assert problem.as_dict()["rule"] == "wrong-type"


def test_missing_centre_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "tokke.yaml").write_text(GOOD)
    with pytest.raises(InventoryError) as err:
        inventory.load([tmp_path])
    assert [p.rule for p in err.value.problems] == ["centre-missing"]


def test_unreadable_file(tmp_path: Path, fixture_inventories: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(InventoryError) as err:
        inventory.load([fixture_inventories, missing])
    assert [(p.file, p.rule) for p in err.value.problems] == [(str(missing), "io")]


def test_too_large_file(tmp_path: Path, fixture_inventories: Path) -> None:
    big = GOOD + "# padding\n" * (safeyaml.MAX_BYTES // 10)
    folder = _with(tmp_path, fixture_inventories, "tokke.yaml", big)
    with pytest.raises(InventoryError) as err:
        inventory.load([folder])
    assert [(p.line, p.rule) for p in err.value.problems] == [(1, "too-large")]


def test_problems_per_file_are_capped(tmp_path: Path, fixture_inventories: Path) -> None:
    sites = "".join(f"  - id: s{i}\n" for i in range(300))
    folder = _with(tmp_path, fixture_inventories, "tokke.yaml",
                   GOOD[:GOOD.index("sites:")] + "sites:\n" + sites)
    with pytest.raises(InventoryError) as err:
        inventory.load([folder])
    problems = err.value.problems
    assert len(problems) == safeyaml.MAX_PROBLEMS_PER_FILE
    assert problems[-1].rule == "too-many-problems" and "more problems" in problems[-1].message


def test_same_slug_in_two_folders(tmp_path: Path, fixture_inventories: Path) -> None:
    (tmp_path / "b").mkdir()
    other = tmp_path / "b" / "tokke.yaml"
    other.write_text(GOOD.replace('"4034"', '"4099"').replace("10.104.2.0", "10.104.9.0")
                     .replace("vlan: 102", "vlan: 109").replace("FGL2245D3AB", "FGL0000X"))
    with pytest.raises(InventoryError) as err:
        inventory.load([fixture_inventories, other])
    # One problem: every name the second file derives collides because its slug does.
    assert {(p.file, p.rule) for p in err.value.problems} == {(str(other), "unique-slug")}


def test_two_centres(tmp_path: Path, fixture_inventories: Path) -> None:
    (tmp_path / "other").mkdir()
    second = tmp_path / "other" / "operations-centre.yaml"
    shutil.copy(fixture_inventories / "operations-centre.yaml", second)
    with pytest.raises(InventoryError) as err:
        inventory.load([fixture_inventories, second])
    assert [(p.file, p.rule) for p in err.value.problems] == [(str(second), "centre-duplicate")]


def test_a_file_given_twice_is_read_once(fixture_inventories: Path) -> None:
    model = inventory.load([fixture_inventories, fixture_inventories / "vinje.yaml"])
    assert len(model.municipalities) == 2


# --- How plain scalars are typed ---------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("Seljord", "Seljord"), ("", None), ("~", None), ("null", None), ("true", True),
    ("False", False), ("42", 42), ("-7", -7), ("0", 0), ("95.50", Decimal("95.50")),
    ("2024-05-10", date(2024, 5, 10)), ("10.101.1.0/24", "10.101.1.0/24"), ("4022", 4022),
    ("+47 35 06 51 00", "+47 35 06 51 00"), ("C1111-4P", "C1111-4P"), ("24/7", "24/7"),
    ("weekdays 08-16", "weekdays 08-16"), (".", "."), ("-", "-"), ("1.2.3", "1.2.3"),
])
def test_plain_scalars_are_typed_like_yaml_1_1(text: str, value: object) -> None:
    got = plain_scalar(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(("text", "rule", "reading"), [
    ("NO", "yaml-boolean-word", "boolean false"), ("yes", "yaml-boolean-word", "boolean true"),
    ("On", "yaml-boolean-word", "boolean true"), ("n", "yaml-boolean-word", "boolean false"),
    ("0301", "yaml-octal", "octal number 193"), ("089", "yaml-octal", "as text"),
    ("1:30", "yaml-sexagesimal", "(90)"), ("190:20:30", "yaml-sexagesimal", "(685230)"),
    ("1_000", "yaml-number-format", "number 1000, YAML 1.2 as text"),
    ("0x1F", "yaml-number-format", "hexadecimal number 31"),
    ("0b101", "yaml-number-format", "binary number 5"),
    ("0o17", "yaml-number-format", "octal number 15"),
    ("1e5", "yaml-number-format", "YAML 1.2 reads"), ("1.0e5", "yaml-number-format", "1.2"),
    ("1_0.5", "yaml-number-format", "underscores"), ("2024-02-30", "format", "not a real"),
    ("2024-05-10 10:00:00", "wrong-type", "date and time"),
])
def test_yaml_1_1_pitfalls_are_flagged(text: str, rule: str, reading: str) -> None:
    got = plain_scalar(text)
    assert isinstance(got, Flagged)
    assert (got.text, got.rule) == (text, rule) and reading in got.reading


def test_platforms_are_netmiko_device_types() -> None:
    from netmiko.ssh_dispatcher import CLASS_MAPPER

    assert set(typing.get_args(Platform)) <= set(CLASS_MAPPER)


# --- Addresses as integers ---------------------------------------------------------------------

@pytest.mark.parametrize("text", ["10.101.1.0/24", "0.0.0.0/0", "10.0.0.0/8", "192.168.1.128/25",
                                  "255.255.255.255/32"])
def test_prefixes_parse_as_ipaddress_does(text: str) -> None:
    net = ipaddress.IPv4Network(text)
    assert parse_prefix(text) == (int(net.network_address), net.prefixlen)


@pytest.mark.parametrize("text", ["10.101.1.1/24", "10.101.1.0", "10.101.1.0/33", "010.1.1.0/24",
                                  "10.256.0.0/16", "10.1.0/16", "a.b.c.d/8", "10.0.0.0/08"])
def test_bad_prefixes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_prefix(text)


def test_overlaps_finds_each_overlapping_prefix() -> None:
    spans = [Span.of(p, p) for p in ("10.0.0.0/16", "10.0.1.0/24", "10.1.0.0/24", "10.1.0.128/25",
                                     "10.2.0.0/24")]
    later = {b.owner for _, b in overlaps(spans)}
    assert later == {"10.0.1.0/24", "10.1.0.128/25"}


def test_free_prefixes_skip_what_is_used() -> None:
    free = free_prefixes(["10.104.0.0/16"], ["10.104.0.0/24", "10.104.1.0/24", "10.104.3.0/25"],
                         24)
    assert [next(free) for _ in range(3)] == ["10.104.2.0/24", "10.104.4.0/24", "10.104.5.0/24"]
    assert list(free_prefixes(["10.0.0.0/30"], [], 24)) == []
