"""Golden files of the intended router configurations for the sample inventories, per platform.

Regenerate after an intended change::

    FELLESDRIFT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_network_templates.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import Inventory
from fellesdrift.network import config, intended
from fellesdrift.paths import INVENTORIES

GOLDEN = Path(__file__).parent / "golden" / "network"
UPDATE = os.environ.get("FELLESDRIFT_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def model() -> Inventory:
    return inventory.load([INVENTORIES])


def _cases() -> list[tuple[str, str]]:
    names = intended.devices(inventory.load([INVENTORIES]))
    return [(p, n) for p in intended.PLATFORMS for n in names]


@pytest.mark.parametrize(("platform", "device"), _cases())
def test_golden(model: Inventory, platform: str, device: str) -> None:
    text = intended.render(model, device, platform)
    path = GOLDEN / platform / f"{device}.cfg"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with FELLESDRIFT_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), (
        f"{platform}/{device} differs from its golden file; if intended, regenerate with "
        "FELLESDRIFT_UPDATE_GOLDEN=1")


def test_no_stale_golden_files(model: Inventory) -> None:
    expected = {f"{p}/{n}.cfg" for p, n in _cases()}
    present = {str(f.relative_to(GOLDEN)) for f in GOLDEN.glob("*/*.cfg")}
    assert present <= expected, f"golden files of no device: {sorted(present - expected)}"


def test_isolation_in_the_intended_configuration(model: Inventory) -> None:
    core = intended.device(model, intended.CORE)
    shared = set(core.shared)
    assert "10.100.16.0/20" not in shared and "10.100.255.0/24" not in shared  # links, mgmt
    for m in model.municipalities:
        pl = next(p for p in core.prefix_lists if p.name == intended.prefix_list_name(m.slug))
        assert set(pl.prefixes) == {s.lan_prefix for s in m.sites}
    for n in core.neighbors:
        assert n.route_map_out == "TO-SITES"
    site = intended.device(model, intended.devices(model)[1])
    assert {p for pl in site.prefix_lists if pl.name == "SHARED" for p in pl.prefixes} == shared


def test_frr_output_parses_back_to_itself(model: Inventory) -> None:
    for name in intended.devices(model):
        text = intended.render(model, name, "frr")
        assert config.diff(text, text) == ""
        assert config.normalise(config.normalise(text)) == config.normalise(text)
        assert config.commands(text, text) == []
        assert len(config.parse(text)) > 5


@pytest.mark.skipif(shutil.which("vtysh") is None, reason="FRR (vtysh) is not installed here")
def test_frr_output_is_valid_vtysh(model: Inventory, tmp_path: Path) -> None:
    for name in intended.devices(model):
        vtysh_dryrun(intended.render(model, name, "frr"), tmp_path / f"{name}.conf")


def vtysh_dryrun(text: str, path: Path) -> None:
    """FRR's own parser reads the configuration ``text`` (written to ``path``) without error."""
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run(["vtysh", "--dryrun", "-f", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
