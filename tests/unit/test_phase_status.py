"""Every phase records its own status: what `converge`, `network` and `verify` run alone leave
in .lab/<env>/status.json is what `fellesdrift status` then shows (the same functions `up`
records with). And a failed host's line reads as text, markup rendered, not printed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from fellesdrift import paths
from fellesdrift.cli import app as cli
from fellesdrift.converge.run import ChangedTask, ConvergeResult, HostRecap
from fellesdrift.network.push import DeviceResult
from fellesdrift.pipeline import job as pipeline
from fellesdrift.report import status
from fellesdrift.verify.run import Case, HostVerdict

ENV = "phase-unit"


@pytest.fixture(autouse=True)
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "LAB_DIR", tmp_path / ".lab")


def result(recap: dict[str, HostRecap], rc: int = 0, changed: list[ChangedTask] | None = None,
           failures: list[str] | None = None) -> ConvergeResult:
    return ConvergeResult("successful" if rc == 0 else "failed", rc, Path("/nonexistent"),
                          recap, changed or [], failures or [])


def test_converge_alone_with_its_second_run_records_each_host() -> None:
    first = result({"a": HostRecap(ok=5, changed=3), "b": HostRecap(ok=5, changed=1)})
    change = ChangedTask("b", "common", "write the drop-in", False)
    second = result({"a": HostRecap(ok=5), "b": HostRecap(ok=5, changed=1)}, changed=[change])
    idem = pipeline.record_converge(ENV, ["a", "b"], first, second, waivers=[])
    assert idem is not None and not idem.ok
    recorded = status.load(ENV)["converge"]
    assert recorded["a"].ok and recorded["a"].detail == "changed 3, then 0"
    assert not recorded["b"].ok and "not idempotent" in recorded["b"].detail


def test_converge_alone_without_a_second_run_records_only_its_failures() -> None:
    before = result({"a": HostRecap(ok=5), "b": HostRecap(ok=5)})
    pipeline.record_converge(ENV, ["a", "b"], before, before, waivers=[])
    first = result({"a": HostRecap(ok=5), "b": HostRecap(ok=2, failed=1)}, rc=2)
    assert pipeline.record_converge(ENV, ["a", "b"], first, None, waivers=[]) is None
    recorded = status.load(ENV)["converge"]
    assert recorded["a"].ok  # a first run alone cannot show idempotence: a stays as it was
    assert not recorded["b"].ok and "1 failed" in recorded["b"].detail


def test_network_and_verify_alone_record_their_results() -> None:
    pipeline.record_network(ENV, [DeviceResult("core-router", "unchanged"),
                                  DeviceResult("tokke-radhus-router", "would-change")])
    pipeline.record_network(ENV, [DeviceResult("vinje-radhus-router", "changed")])
    net = status.load(ENV)["network"]
    assert net["core-router"].ok and not net["tokke-radhus-router"].ok
    assert net["vinje-radhus-router"].ok  # pushed and read back: running = intended
    good, bad = HostVerdict("good", "site_client"), HostVerdict("bad", "site_client")
    good.add(Case("test_site_client", "test_reaches_dns", "passed"))
    bad.add(Case("test_site_client", "test_reaches_dns", "failed", "timed out"))
    pipeline.record_verify(ENV, {"good": good, "bad": bad})
    verified = status.load(ENV)["verify"]
    assert verified["good"].ok and not verified["bad"].ok
    assert "timed out" in verified["bad"].detail


def test_a_failed_host_line_renders_its_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=200, color_system=None))
    failure = "tokke-skule-client: common : install [x] failed"  # brackets of its own
    cli._print_converge(result({}, rc=2, failures=[failure]), None)
    assert out.getvalue().splitlines()[0] == f"  failed {failure}"
