"""The main job end to end on a small lab: up, up again (nothing to do), down (nothing left).

Uses tests/fixtures/inventories (two municipalities, one site each) in a lab of its own, `e2e`.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

ENV = "e2e"
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab


def fellesdrift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fellesdrift", *args],
                          capture_output=True, text=True, check=False, timeout=1800)


def labeled(kind: str) -> list[str]:
    listing = ["container", "ls", "-a", "--format", "{{.Names}}"] if kind == "container" \
        else ["network", "ls", "--format", "{{.Name}}"]
    out = subprocess.run(["podman", *listing, "--filter", f"label=fellesdrift.lab={ENV}"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def routes() -> str:
    return subprocess.run(["ip", "route", "show", "type", "unreachable"], capture_output=True,
                          text=True, check=True).stdout


@pytest.fixture(scope="module")
def first_up(pipeline_lab: Any) -> dict[str, Any]:
    if pipeline_lab.env != ENV:
        pytest.skip("test_up.py makes and removes its own lab; not with FELLESDRIFT_E2E_REUSE")
    return dict(pipeline_lab.first_up)


@pytest.fixture(scope="module")
def fixture_inventories_module() -> Path:
    return Path(__file__).resolve().parents[1] / "fixtures" / "inventories"


def test_first_up_provisions_converges_and_verifies_every_host(first_up: dict[str, Any]) -> None:
    hosts = {h["host"]: h for h in first_up["hosts"]}
    assert sorted(hosts) == ["apt-proxy", "core-router", "gis-01", "katalog", "okonomi-01",
                             "overvaking", "tokke-skule-client", "tokke-skule-router",
                             "vinje-radhus-client", "vinje-radhus-router"]
    assert hosts["vinje-radhus-client"]["address"] == "10.104.1.10"
    assert hosts["vinje-radhus-router"]["address"] == "10.104.1.1"
    assert sorted(s["stack"] for s in first_up["stacks"]) == ["e2e.core", "e2e.tokke",
                                                             "e2e.vinje"]
    assert first_up["pulumi_changes"] > 0
    assert first_up["idempotent"] is True, first_up["second_run_changed"]
    # A first up changes every host, so the second run went to every one of them.
    assert sorted(first_up["second_run_hosts"]) == sorted(hosts)
    report = Path(first_up["report"])
    assert report.is_file() and "vinje" in report.read_text()
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
    assert second["idempotent"] is True
    # Nothing any host is converged from changed, and every host's last converge and verify
    # passed: none was converged again, and verify checked every one.
    assert second["unchanged_hosts"] == sorted(h["host"] for h in first_up["hosts"])
    assert second["second_run_hosts"] == []
    assert all(h["verify"]["passed"] > 0 and h["ok"] for h in second["hosts"])


def test_a_file_changed_behind_ansibles_back_fails_verify_and_the_next_up_puts_it_right(
        first_up: dict[str, Any], fixture_inventories_module: Path) -> None:
    client, sysctl_file = "tokke-skule-client", "/etc/sysctl.d/60-fellesdrift-net.conf"
    subprocess.run(["podman", "exec", f"{ENV}-{client}", "rm", sysctl_file], check=True)
    # The client's inputs did not change, so `up` does not converge it; verify finds the
    # missing file on it.
    found = fellesdrift("up", str(fixture_inventories_module), "--env", ENV, "-m", "tokke",
                        "--json")
    assert found.returncode == 1, found.stderr[-4000:]
    summary = json.loads(found.stdout)
    assert summary["failed"] == "verify" and client in summary["unchanged_hosts"]
    failed = {h["host"] for h in summary["hosts"] if not h["ok"]}
    assert failed == {client}
    # Its last verify failed: the next `up` converges it (and only it), which puts the file back.
    again = fellesdrift("up", str(fixture_inventories_module), "--env", ENV, "-m", "tokke",
                        "--json")
    assert again.returncode == 0, again.stderr[-4000:]
    fixed = json.loads(again.stdout)
    assert client not in fixed["unchanged_hosts"]
    assert {h["host"] for h in fixed["hosts"]} - set(fixed["unchanged_hosts"]) == {client}
    assert any(t.startswith(f"{client}: common : ") for t in fixed["changed_tasks"])
    assert subprocess.run(["podman", "exec", f"{ENV}-{client}", "test", "-s", sysctl_file],
                          check=False).returncode == 0


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


def test_drift_notices_a_removed_host_and_up_m_puts_it_back_on_its_hosts_only(
        first_up: dict[str, Any], fixture_inventories_module: Path) -> None:
    subprocess.run(["podman", "rm", "-f", f"{ENV}-vinje-radhus-client"], check=True,
                   capture_output=True)
    drift = fellesdrift("drift", str(fixture_inventories_module), "--env", ENV, "--json")
    assert drift.returncode == 1, drift.stderr[-2000:]
    assert json.loads(drift.stdout)["drifted"] == [f"{ENV}.vinje"]
    again = fellesdrift("up", str(fixture_inventories_module), "--env", ENV, "-m", "vinje",
                        "--json")
    assert again.returncode == 0, again.stderr[-4000:]
    assert f"{ENV}-vinje-radhus-client" in labeled("container")
    # `up -m vinje` works on vinje's hosts and the centre hosts rendered from it (vinje
    # subscribes to GIS and finance), not on tokke's or the apt proxy.
    joined = json.loads(again.stdout)
    assert {h["host"] for h in joined["hosts"]} == {
        "vinje-radhus-client", "vinje-radhus-router", "core-router", "katalog", "overvaking",
        "gis-01", "okonomi-01"}
    assert joined["hosts_worked_on"] == 7 and joined["hosts_in_lab"] == 10
    # The client is a new machine and its stack changed: vinje's hosts converge; the centre
    # hosts' inputs did not change.
    assert joined["unchanged_hosts"] == ["core-router", "gis-01", "katalog", "okonomi-01",
                                         "overvaking"]
    # Its tenancy row and column: vinje reaches no tokke host, tokke's client reaches no vinje
    # host (checked on tokke's client although tokke was not converged).
    network = joined["tenancy"]["network"]
    assert network["vinje"] == {"tokke": False} and network["tokke"] == {"vinje": False}
    assert fellesdrift("drift", str(fixture_inventories_module), "--env", ENV).returncode == 0


def test_plan_of_an_unchanged_lab_is_empty(first_up: dict[str, Any],
                                           fixture_inventories_module: Path) -> None:
    plan = fellesdrift("plan", str(fixture_inventories_module), "--env", ENV, "--json")
    assert plan.returncode == 0, plan.stderr[-4000:]
    stacks = json.loads(plan.stdout)["stacks"]
    assert len(stacks) == 3 and all(s["changed"] == 0 for s in stacks), stacks


def background_up(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "fellesdrift", "up", *args, "--env", ENV],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for(condition: Any, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_locked_stack_fails_fast_naming_the_holder_and_a_stale_lock_is_cleared(
        first_up: dict[str, Any], fixture_inventories_module: Path) -> None:
    # Another `up` of e2e.vinje holds its lock: a live process, recorded the way Pulumi's local
    # file backend records a lock holder.
    holder = subprocess.Popen(["sleep", "300"])
    lock = (ROOT / ".state" / ".pulumi" / "locks" / "organization" / "fellesdrift"
            / f"{ENV}.vinje" / "e2e-test-holder.json")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"pid": holder.pid, "username": getpass.getuser(),
                                "hostname": socket.gethostname(),
                                "timestamp": datetime.now(UTC).isoformat()}))
    try:
        runs = ROOT / ".lab" / ENV / "ansible" / "artifacts"
        before = (labeled("container"), sorted(runs.iterdir()) if runs.exists() else [])
        second = fellesdrift("up", str(fixture_inventories_module), "--env", ENV, "-m", "vinje")
        assert second.returncode != 0
        assert f"{ENV}.vinje is locked by {getpass.getuser()}@{socket.gethostname()} " \
               f"(pid {holder.pid})" in second.stderr, second.stderr[-2000:]
        assert "fellesdrift recover" in second.stderr
        # It stopped at the lock: no host was made or removed, no converge ran.
        assert "converging" not in second.stderr
        assert (labeled("container"), sorted(runs.iterdir()) if runs.exists() else []) == before
        assert "up FAILED in provision" in second.stdout
        busy = fellesdrift("recover", "--env", ENV, "--stack", f"{ENV}.vinje")
        assert busy.returncode != 0 and "still running" in busy.stderr  # never breaks a live lock
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its lock is stale, and recover clears it.
    cleared = fellesdrift("recover", "--env", ENV, "--stack", f"{ENV}.vinje")
    assert cleared.returncode == 0 and "cleared 1 stale lock" in cleared.stdout, cleared.stderr
    assert not lock.exists()
    assert fellesdrift("plan", str(fixture_inventories_module), "--env", ENV, "-m",
                       "vinje").returncode == 0


def with_hjartdal(tmp_path: Path, fixtures: Path) -> Path:
    for f in fixtures.glob("*.yaml"):
        shutil.copy(f, tmp_path)
    text = (tmp_path / "tokke.yaml").read_text()
    (tmp_path / "hjartdal.yaml").write_text(
        text.replace("tokke", "hjartdal").replace("Tokke", "Hjartdal")
        .replace('"4034"', '"4024"').replace("10.104.2.0/24", "10.104.3.0/24")
        .replace("vlan: 102", "vlan: 103").replace("FGL2245D3AB", "FGL2245D3AX"))
    return tmp_path


def test_a_killed_up_recovers_with_one_command_and_orphans_nothing(
        first_up: dict[str, Any], fixture_inventories_module: Path, tmp_path: Path) -> None:
    folder = with_hjartdal(tmp_path, fixture_inventories_module)
    assert fellesdrift("validate", str(folder)).returncode == 0
    run = background_up(str(folder), "-m", "hjartdal")
    wait_for(lambda: any(n.startswith(f"{ENV}-hjartdal-") for n in labeled("container")))
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    stuck = fellesdrift("up", str(folder), "--env", ENV, "-m", "hjartdal")
    assert stuck.returncode != 0 and "fellesdrift recover" in stuck.stderr, stuck.stderr[-3000:]
    recover = fellesdrift("recover", "--env", ENV, "--stack", f"{ENV}.hjartdal")
    assert recover.returncode == 0, recover.stderr[-3000:]
    done = fellesdrift("up", str(folder), "--env", ENV, "-m", "hjartdal", "--json")
    assert done.returncode == 0, done.stderr[-4000:]
    declared = {h["machine"] for h in yaml.safe_load(
        (ROOT / ".lab" / ENV / "hosts" / f"{ENV}.hjartdal.yml").read_text())}
    made = {n for n in labeled("container") if n.startswith(f"{ENV}-hjartdal-")}
    assert made == declared == {f"{ENV}-hjartdal-skule-router", f"{ENV}-hjartdal-skule-client"}


def test_removing_a_municipality_needs_its_name(first_up: dict[str, Any],
                                                fixture_inventories_module: Path) -> None:
    refused = fellesdrift("up", str(fixture_inventories_module), "--env", ENV)
    assert refused.returncode == 1
    assert "--destroy-municipality hjartdal" in refused.stderr, refused.stderr[-2000:]
    assert f"{ENV}-hjartdal-skule-router" in labeled("container")  # nothing was applied
    removed = fellesdrift("up", str(fixture_inventories_module), "--env", ENV,
                          "--destroy-municipality", "hjartdal", "--json")
    assert removed.returncode == 0, removed.stderr[-4000:]
    assert not [n for n in labeled("container") if n.startswith(f"{ENV}-hjartdal-")]


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
