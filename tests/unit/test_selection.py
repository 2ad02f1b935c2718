"""Which stacks `plan` and `up` act on, and when they refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from fellesdrift import inventory
from fellesdrift.pipeline import SelectionError, select

MODEL = inventory.load([Path(__file__).resolve().parents[1] / "fixtures" / "inventories"])


def test_everything_by_default() -> None:
    s = select(MODEL, [], [], None, [])
    assert s.targets == ["core", "tokke", "vinje"]


def test_named_municipalities_only() -> None:
    assert select(MODEL, ["core", "tokke", "vinje"], ["vinje"], None, []).targets == ["vinje"]


def test_unknown_municipality_is_refused() -> None:
    with pytest.raises(SelectionError, match="no inventory file for bo"):
        select(MODEL, [], ["bo"], None, [])


@pytest.mark.parametrize(("changed", "targets"), [
    (["inventories/vinje.yaml"], ["vinje"]),
    (["inventories/vinje.yaml", "README.md", "inventories/tokke.yaml"], ["tokke", "vinje"]),
    (["docs/inventory.md"], []),
    (["inventories/operations-centre.yaml"], ["core", "tokke", "vinje"]),
    (["stacks/components.py"], ["core", "tokke", "vinje"]),
])
def test_only_changed(changed: list[str], targets: list[str]) -> None:
    assert select(MODEL, ["core", "tokke", "vinje"], [], changed, []).targets == targets


def test_a_stack_without_its_file_is_destroyed_only_when_named() -> None:
    existing = ["core", "hjartdal", "tokke", "vinje"]
    with pytest.raises(SelectionError, match="--destroy-municipality hjartdal"):
        select(MODEL, existing, [], None, [])
    assert select(MODEL, existing, [], None, ["hjartdal"]).destroy == ["hjartdal"]


def test_destroying_a_municipality_that_still_has_its_file_is_refused() -> None:
    with pytest.raises(SelectionError, match="remove the file first"):
        select(MODEL, ["core", "tokke", "vinje"], [], None, ["vinje"])
