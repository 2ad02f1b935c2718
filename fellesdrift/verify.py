"""Verify: run the testinfra suites in tests/infra against every provisioned host."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .hosts import Host, ssh_config
from .paths import ROOT, lab_dir

SUITES = ROOT / "tests" / "infra"


@dataclass
class HostVerdict:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0


def _verdict(report: Path) -> HostVerdict:
    verdict = HostVerdict()
    if not report.exists():
        verdict.failed, verdict.failures = 1, ["the test run produced no report"]
        return verdict
    for case in ET.parse(report).getroot().iter("testcase"):
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        if failure is not None:
            verdict.failed += 1
            verdict.failures.append(f"{case.get('name')}: {failure.get('message', '')[:300]}")
        elif case.find("skipped") is not None:
            verdict.skipped += 1
        else:
            verdict.passed += 1
    return verdict


def _run_one(env: str, host: Host, config: Path, suites: list[Path]) -> HostVerdict:
    report = lab_dir(env) / "verify" / f"{host.name}.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           f"--rootdir={ROOT}", f"--hosts=ssh://{host.name}", f"--ssh-config={config}",
           f"--junitxml={report}", *map(str, suites)]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    return _verdict(report)


def run(env: str, hosts: list[Host], suites: list[Path] | None = None,
        workers: int = 4) -> dict[str, HostVerdict]:
    """Run the suites against each host (hosts in parallel); returns the verdict per host."""
    config = ssh_config(env, hosts)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {h.name: pool.submit(_run_one, env, h, config, suites or [SUITES])
                   for h in hosts}
        return {name: f.result() for name, f in futures.items()}
