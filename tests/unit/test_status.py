"""The per-lab status record and the convergence of each site derived from it."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from fellesdrift import paths
from fellesdrift.converge import idempotence
from fellesdrift.converge.run import ConvergeResult, HostRecap
from fellesdrift.inventory import load as inventory
from fellesdrift.network.push import DeviceResult
from fellesdrift.provision.hosts import Host
from fellesdrift.provision.stacks import StackResult
from fellesdrift.report import status
from fellesdrift.report.status import PhaseResult
from fellesdrift.verify.run import Case, HostVerdict

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "inventories"
MODEL = inventory.load([FIXTURES])
ENV = "unit"
SITE_HOSTS = ["vinje-radhus-router", "vinje-radhus-client"]


@pytest.fixture(autouse=True)
def lab_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(paths, "LAB_DIR", tmp_path / ".lab")
    return tmp_path / ".lab" / ENV


def ok(detail: str = "") -> PhaseResult:
    return PhaseResult(True, detail, "2026-01-01T10:00:00+00:00")


def converge_vinje(failing: dict[str, str] | None = None) -> None:
    """Record every phase of vinje's site as done; ``failing``: phase → host that failed."""
    failing = failing or {}

    def results(phase: str, keys: list[str]) -> dict[str, PhaseResult]:
        return {k: PhaseResult(False, "boom") if failing.get(phase) == k else ok()
                for k in keys}

    status.record(ENV, "provision", results("provision", [f"{ENV}.vinje"]))
    status.record(ENV, "converge", results("converge", SITE_HOSTS))
    status.record(ENV, "network", results("network", SITE_HOSTS[:1]))
    status.record(ENV, "verify", results("verify", SITE_HOSTS))


def row(slug: str, site: str) -> status.SiteStatus:
    return next(r for r in status.site_status(MODEL, ENV) if (r.municipality, r.site)
                == (slug, site))


def test_record_writes_json_and_merges_per_key(lab_dir: Path) -> None:
    status.record(ENV, "converge", {"a": ok("changed 3, then 0")})
    status.record(ENV, "converge", {"b": PhaseResult(False, "second run changed 1")})
    status.record(ENV, "converge", {"a": PhaseResult(False, "later")})
    data = json.loads((lab_dir / "status.json").read_text())
    assert data["env"] == ENV
    assert data["phases"]["converge"]["a"]["detail"] == "later"
    assert data["phases"]["converge"]["b"]["ok"] is False
    assert data["phases"]["provision"] == {}
    assert not [p for p in lab_dir.iterdir() if p.name.endswith(".tmp")]
    found = status.load(ENV)
    assert found["converge"]["b"] == PhaseResult(False, "second run changed 1",
                                                 found["converge"]["b"].at)


def test_a_result_carries_an_iso_timestamp() -> None:
    at = PhaseResult(True).at
    assert at.endswith("+00:00") and at[:4].isdigit() and "T" in at


def test_unknown_phase_is_refused() -> None:
    with pytest.raises(status.StatusError, match="unknown phase 'deploy'"):
        status.record(ENV, "deploy", {"a": ok()})


def test_a_damaged_record_is_one_clear_error(lab_dir: Path) -> None:
    lab_dir.mkdir(parents=True)
    (lab_dir / "status.json").write_text("{not json")
    with pytest.raises(status.StatusError, match="is not a status record"):
        status.load(ENV)


def test_concurrent_recorders_lose_nothing() -> None:
    threads = [threading.Thread(target=status.record, args=(ENV, "verify", {f"h{i}": ok()}))
               for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(status.load(ENV)["verify"]) == sorted(f"h{i}" for i in range(16))


def test_nothing_recorded_is_unknown_never_ok() -> None:
    rows = status.site_status(MODEL, ENV)
    assert [(r.municipality, r.site) for r in rows] == [
        ("centre", "centre"), ("tokke", "skule"), ("vinje", "radhus")]
    for r in rows:
        assert not r.ok and r.state == "unknown"
        assert all(c.state == "unknown" for c in r.checks.values())
    assert "vinje-radhus-router, vinje-radhus-client: never ran" in rows[2].converged.detail
    assert status.summary(ENV, rows)["ok"] is False


def test_a_site_converges_when_all_four_checks_hold() -> None:
    converge_vinje()
    vinje = row("vinje", "radhus")
    assert vinje.ok and vinje.state == "ok"
    assert vinje.stack == f"{ENV}.vinje" and vinje.hosts == tuple(SITE_HOSTS)
    assert not row("tokke", "skule").ok  # nothing recorded for it


@pytest.mark.parametrize(("phase", "key", "check"), [
    ("provision", f"{ENV}.vinje", "provisioned"),
    ("converge", "vinje-radhus-client", "converged"),
    ("network", "vinje-radhus-router", "network"),
    ("verify", "vinje-radhus-router", "verified"),
])
def test_one_failure_fails_its_check_and_the_site(phase: str, key: str, check: str) -> None:
    converge_vinje(failing={phase: key})
    vinje = row("vinje", "radhus")
    assert vinje.checks[check].state == "failed"
    assert vinje.checks[check].detail == f"{key}: boom"
    assert not vinje.ok and vinje.state == "failed"
    assert [c for c, v in vinje.checks.items() if not v.ok] == [check]


def test_one_host_missing_makes_the_check_unknown() -> None:
    status.record(ENV, "verify", {"vinje-radhus-router": ok()})
    verified = row("vinje", "radhus").verified
    assert verified.state == "unknown" and "vinje-radhus-client" in verified.detail


def test_the_centre_is_a_row_of_its_own_with_its_provisioned_hosts() -> None:
    provisioned = [Host(n, f"{ENV}-{n}", (g, "centre"), "10.104.0.1", "ops", 22, "key")
                   for n, g in [("core-router", "core_router"), ("apt-proxy", "apt_proxy")]]
    site = Host("vinje-radhus-router", "m", ("site_router", "municipality_vinje"), "10.104.1.1",
                "ops", 22, "k")
    status.record(ENV, "provision", {f"{ENV}.core": ok()})
    status.record(ENV, "converge", {"core-router": ok(), "apt-proxy": ok()})
    status.record(ENV, "network", {"core-router": ok()})
    status.record(ENV, "verify", {"core-router": ok(), "apt-proxy": ok()})
    centre = status.site_status(MODEL, ENV, [*provisioned, site])[0]
    assert centre.hosts == ("core-router", "apt-proxy") and centre.ok
    # Without provisioned hosts the model names them, and the shared ones never ran.
    fallback = status.site_status(MODEL, ENV)[0]
    assert fallback.hosts == ("core-router", "apt-proxy", "katalog", "overvaking", "gis-01",
                              "okonomi-01")
    assert fallback.converged.state == "unknown" and fallback.network.ok


def test_any_phase_is_recorded_from_its_results() -> None:
    """One result family: stacks, hosts and routers are recorded through the same function,
    each judged as its phase says."""
    planned = status.from_results([
        StackResult("a.core", {"same": 3}), StackResult("a.x", {"create": 2, "same": 1}),
        StackResult("a.y", error="a.y is locked by ops@ctl (pid 7)")])
    assert [r.ok for r in planned.values()] == [True, False, False]
    assert planned["a.core"].detail == "no pending changes"
    assert planned["a.x"].detail == "2 pending change(s)"
    assert planned["a.y"].detail.startswith("a.y is locked")
    applied = status.from_results([StackResult("a.x", {"create": 2}, applied=True)])
    assert applied["a.x"] == PhaseResult(True, "applied 2 change(s)", applied["a.x"].at)

    first = ConvergeResult("failed", 2, Path("."), {
        "a": HostRecap(ok=5, changed=5), "b": HostRecap(ok=5, changed=5),
        "c": HostRecap(ok=1, failed=1)})
    second = ConvergeResult("successful", 0, Path("."), {
        "a": HostRecap(ok=5), "b": HostRecap(ok=5, changed=1), "c": HostRecap(ok=1)})
    conv = status.from_results(idempotence.per_host(["a", "b", "c", "d"], first, second))
    assert conv["a"] == PhaseResult(True, "changed 5, then 0", conv["a"].at)
    assert not conv["b"].ok and "second run changed 1" in conv["b"].detail
    assert not conv["c"].ok and "first run: 1 failed" in conv["c"].detail
    assert not conv["d"].ok and "missing from the first run" in conv["d"].detail
    alone = status.from_results(idempotence.per_host(["a"], first))
    assert not alone["a"].ok and alone["a"].detail == "missing from the second run"

    net = status.from_results([DeviceResult("r1", "unchanged"), DeviceResult("r2", "changed"),
                               DeviceResult("r3", "would-change"),
                               DeviceResult("r4", "failed", error="TimeoutError: no route")])
    assert {k: r.ok for k, r in net.items()} == {"r1": True, "r2": True, "r3": False,
                                                 "r4": False}
    assert net["r3"].detail == "running differs from intended"
    assert net["r4"].detail == "TimeoutError: no route"

    passed, failed, nothing = (HostVerdict(n, "site_client") for n in ("a", "b", "c"))
    passed.add(Case("test_site_client", "t", "passed"))
    passed.add(Case("test_common", "u", "skipped"))
    failed.add(Case("test_site_client", "t", "passed"))
    failed.add(Case("test_common", "u", "failed", "no"))
    verified = status.from_results([passed, failed, nothing])
    assert verified["a"].ok and verified["a"].detail == "1 passed, 0 failed, 1 skipped"
    assert not verified["b"].ok and verified["b"].detail.endswith("u: no")
    assert not verified["c"].ok  # nothing ran: not a pass
