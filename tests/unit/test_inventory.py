"""The loader: a valid inventory loads; every bad one is reported at its file, line and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fellesdrift import inventory
from fellesdrift.inventory import InventoryError


def test_sample_and_fixture_inventories_load(fixture_inventories: Path) -> None:
    model = inventory.load([fixture_inventories])
    assert sorted(m.slug for m in model.municipalities) == ["tokke", "vinje"]
    assert model.municipality("vinje").sites[0].lan_prefix == "10.104.1.0/24"
    assert inventory.load([Path("inventories")]).municipalities


def _with(tmp_path: Path, fixtures: Path, name: str, text: str) -> Path:
    shutil.copy(fixtures / "operations-centre.yaml", tmp_path)
    (tmp_path / name).write_text(text)
    return tmp_path


GOOD = """\
schema_version: 1
code: "4036"
name: Vinje
slug: vinje
sites:
  - id: radhus
    name: Vinje rådhus
    kind: town_hall
    lan_prefix: 10.104.1.0/24
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "rule"),
    [
        ('code: "4036"', "code: 4036", 2, "code", "schema"),  # YAML int where a string is wanted
        ("    kind: town_hall", "    kind: castle", 8, "sites.0.kind", "schema"),
        ("    lan_prefix: 10.104.1.0/24", "    lan_prefix: 10.104.1.1/24", 9,
         "sites.0.lan_prefix", "schema"),
        ("    lan_prefix: 10.104.1.0/24", "    lan_prefix: 192.168.1.0/24", 9,
         "sites.0.lan_prefix", "prefix-in-plan"),
        ("slug: vinje", "slug: vinje-kommune", 4, "slug", "slug-file-name"),
        ("name: Vinje\n", "name: Vinje\nname: Vinje kommune\n", 4, "name", "duplicate-key"),
        ("name: Vinje\n", "name: Vinje\ncolour: blue\n", 4, "colour", "unknown-field"),
        ("sites:\n", "sites: [\n", 6, "", "yaml-syntax"),
        ('code: "4036"', "code: !!python/object/apply:os.system [echo]", 2, "", "yaml-syntax"),
    ],
)
def test_bad_inventory_names_file_line_field_and_rule(
    tmp_path: Path, fixture_inventories: Path, old: str, new: str, line: int, field: str,
    rule: str,
) -> None:
    assert old in GOOD
    folder = _with(tmp_path, fixture_inventories, "vinje.yaml", GOOD.replace(old, new))
    with pytest.raises(InventoryError) as err:
        inventory.load([folder])
    problem = next(p for p in err.value.problems if p.rule == rule)
    assert (Path(problem.file).name, problem.line, problem.field) == ("vinje.yaml", line, field)
    assert str(problem).startswith(f"{folder / 'vinje.yaml'}:{line}:")


def test_all_problems_of_all_files_at_once(tmp_path: Path, fixture_inventories: Path) -> None:
    folder = _with(tmp_path, fixture_inventories, "vinje.yaml", GOOD)
    # tokke and vinje share a LAN (the later file is blamed); kviteseid writes its code as a number
    (folder / "tokke.yaml").write_text(
        GOOD.replace("vinje", "tokke").replace("Vinje", "Tokke").replace('"4036"', '"4034"'))
    (folder / "kviteseid.yaml").write_text(
        GOOD.replace("vinje", "kviteseid").replace('"4036"', "4020")
        .replace("10.104.1.0", "10.104.3.0"))
    with pytest.raises(InventoryError) as err:
        inventory.load([folder])
    found = sorted((Path(p.file).name, p.line, p.rule) for p in err.value.problems)
    assert found == [("kviteseid.yaml", 2, "schema"), ("vinje.yaml", 9, "prefix-overlap")]


def test_missing_centre_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "vinje.yaml").write_text(GOOD)
    with pytest.raises(InventoryError) as err:
        inventory.load([tmp_path])
    assert [p.rule for p in err.value.problems] == ["centre-missing"]
