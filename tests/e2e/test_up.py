"""The main job end to end on a small lab: up, up again (nothing to do), down (nothing left).

Uses tests/fixtures/inventories (two municipalities, one site each) in a lab of its own, `e2e`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ENV = "e2e"
pytestmark = pytest.mark.lab


def fellesdrift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fellesdrift", *args],
                          capture_output=True, text=True, check=False, timeout=1800)


def labeled(kind: str) -> list[str]:
    out = subprocess.run(["podman", kind, "ls", "-a" if kind == "container" else "-q",
                          "--filter", f"label=fellesdrift.lab={ENV}", "--format", "{{.Name}}"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def routes() -> str:
    return subprocess.run(["ip", "route", "show", "type", "unreachable"], capture_output=True,
                          text=True, check=True).stdout


@pytest.fixture(scope="module")
def first_up(fixture_inventories_module: Path) -> Iterator[dict[str, Any]]:
    proc = fellesdrift("up", str(fixture_inventories_module), "--env", ENV, "--json")
    try:
        assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-4000:]
        yield json.loads(proc.stdout)
    finally:
        fellesdrift("down", "--env", ENV)


@pytest.fixture(scope="module")
def fixture_inventories_module() -> Path:
    return Path(__file__).resolve().parents[1] / "fixtures" / "inventories"


def test_first_up_provisions_converges_and_verifies_every_host(first_up: dict[str, Any]) -> None:
    hosts = {h["host"]: h for h in first_up["hosts"]}
    assert sorted(hosts) == ["apt-proxy", "core-router", "tokke-skule-client",
                             "tokke-skule-router", "vinje-radhus-client", "vinje-radhus-router"]
    assert hosts["vinje-radhus-client"]["address"] == "10.104.1.10"
    assert hosts["vinje-radhus-router"]["address"] == "10.104.1.1"
    assert sorted(s["stack"] for s in first_up["stacks"]) == ["e2e.core", "e2e.tokke",
                                                             "e2e.vinje"]
    assert first_up["pulumi_changes"] > 0
    for h in hosts.values():
        assert h["converge"]["failed"] == 0 and h["converge"]["unreachable"] == 0
        assert h["verify"]["passed"] > 0 and h["verify"]["failed"] == 0
    assert "10.104.0.0/16" in routes()


def test_second_up_changes_nothing(first_up: dict[str, Any],
                                   fixture_inventories_module: Path) -> None:
    proc = fellesdrift("up", str(fixture_inventories_module), "--env", ENV, "--json")
    assert proc.returncode == 0, proc.stderr[-4000:]
    second = json.loads(proc.stdout)
    assert second["pulumi_changes"] == 0
    assert second["ansible_changed"] == 0, second["changed_tasks"]


def test_ssh_checks_host_keys(first_up: dict[str, Any]) -> None:
    lab = Path(__file__).resolve().parents[2] / ".lab" / ENV
    host = first_up["hosts"][0]
    base = ["ssh", "-F", str(lab / "ssh_config"), "-o", "ConnectTimeout=10"]
    assert subprocess.run([*base, host["host"], "true"], check=False).returncode == 0
    # With an empty known_hosts, strict checking refuses the very same host.
    empty = lab / "empty_known_hosts"
    empty.write_text("")
    refused = subprocess.run([*base, "-o", f"UserKnownHostsFile={empty}", host["host"], "true"],
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 255 and "Host key verification failed" in refused.stderr


def test_down_leaves_nothing_behind(first_up: dict[str, Any]) -> None:
    proc = fellesdrift("down", "--env", ENV, "--json")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert labeled("container") == [] and labeled("network") == []
    assert "10.104.0.0/16" not in routes()
    assert not (Path(__file__).resolve().parents[2] / ".lab" / ENV).exists()


def test_bad_inventory_stops_before_anything_is_applied(tmp_path: Path,
                                                       fixture_inventories_module: Path) -> None:
    for f in fixture_inventories_module.glob("*.yaml"):
        shutil.copy(f, tmp_path)
    bad = tmp_path / "tokke.yaml"
    bad.write_text(bad.read_text().replace('code: "4034"', "code: 4034"))
    proc = fellesdrift("up", str(tmp_path), "--env", "e2e-bad")
    assert proc.returncode == 1
    assert f"{bad}:2:7: code:" in proc.stderr and "Traceback" not in proc.stderr
    assert subprocess.run(["podman", "ps", "-a", "-q", "--filter", "label=fellesdrift.lab=e2e-bad"],
                          capture_output=True, text=True, check=True).stdout == ""


def test_doctor_names_the_tools() -> None:
    proc = fellesdrift("doctor", "--json")
    report = json.loads(proc.stdout)
    names = {c["name"]: c for c in report["checks"]}
    for tool in ("pulumi", "pulumi-language-python", "ansible-core", "podman", "python"):
        assert names[tool]["ok"], names[tool]
    assert names["pulumi"]["version"] == names["pulumi-language-python"]["version"]
