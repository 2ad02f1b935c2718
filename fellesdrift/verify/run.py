"""Verify: run the testinfra suites (fellesdrift/verify/suites) against every host of the
generated Ansible inventory, in one pytest run spread over workers (pytest-xdist).

Each suite skips the hosts whose function it does not check; a host's verdict counts its own
test cases (suites/conftest.py records the host of each case in the JUnit report). A host
is verified only when nothing failed and the suite of its function (:data:`ROLE_SUITES`) passed
at least one check on it: the common checks alone never make a host verified, and a host whose
function has no suite, or whose role checks all skipped, fails.
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fellesdrift.paths import ROOT, lab_dir
from fellesdrift.plan.functions import FUNCTIONS, function_of
from fellesdrift.progress import START, Progress, silent
from fellesdrift.provision.hosts import Host
from fellesdrift.results import Result

#: The product's testinfra suites (one per role, plus the site, link and tenancy checks).
SUITES = Path(__file__).resolve().parent / "suites"
#: pytest-xdist workers. Most of verify is waiting on the hosts (SSH round trips, services,
#: polls), not the controller's CPU: more workers than cores let the waits overlap.
DEFAULT_WORKERS = 12
#: The suites (module names in suites/) that check what a host's function promises; one of
#: them must pass a check on the host for it to be verified.
ROLE_SUITES: dict[str, tuple[str, ...]] = {f.name: f.suites for f in FUNCTIONS.values()}
PHASE = "verify"


@dataclass
class Case:
    """One check on one host, as the JUnit report says."""

    suite: str
    name: str
    outcome: str  # passed, failed, skipped
    message: str = ""
    tenancy: list[dict[str, Any]] = field(default_factory=list)

    @property
    def check(self) -> str:
        """The check's function, without the parameters pytest adds to its name
        (``test_x[ansible://host]`` is check ``test_x``)."""
        return self.name.partition("[")[0]


@dataclass
class HostVerdict(Result):
    """A host's verdict (``name``: the host): ok when nothing failed and the suite of its
    function passed a check on it."""

    function: str = ""
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)

    @property
    def role_checked(self) -> bool:
        """A check of the suite of the host's function passed on it."""
        suites = ROLE_SUITES.get(self.function, ())
        return any(c.outcome == "passed" and c.suite in suites for c in self.cases)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.role_checked

    @property
    def error(self) -> str:
        if self.ok:
            return ""
        return self.failures[0] if self.failures else "no check of its role passed"

    @property
    def detail(self) -> str:
        counts = f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"
        return f"{counts}; {self.failures[0]}" if self.failures else counts

    def add(self, case: Case) -> None:
        self.cases.append(case)
        if case.outcome == "failed":
            self.failed += 1
            self.failures.append(f"{case.name}: {case.message[:300]}")
        elif case.outcome == "skipped":
            self.skipped += 1
        else:
            self.passed += 1


def _case(element: ET.Element) -> tuple[str, Case]:
    props = {p.get("name"): p.get("value", "") for p in element.iter("property")}
    failure = element.find("failure")
    if failure is None:
        failure = element.find("error")
    if failure is not None:
        outcome, message = "failed", failure.get("message", "")
    elif element.find("skipped") is not None:
        outcome, message = "skipped", element.find("skipped").get("message", "")  # type: ignore[union-attr]
    else:
        outcome, message = "passed", ""
    suite = (element.get("classname") or "").rpartition(".")[2]
    tenancy = [json.loads(p.get("value", "{}")) for p in element.iter("property")
               if p.get("name") == "tenancy"]
    return props.get("host", ""), Case(suite, element.get("name", ""), outcome, message,
                                       tenancy)


def tenancy(verdicts: dict[str, HostVerdict]) -> dict[str, dict[str, dict[str, bool]]]:
    """The tenant-by-tenant matrices the checks recorded: {kind: {from: {to: reached}}}, kind
    ``network`` (a site of one municipality reached a host of another) or a hosted service
    (one municipality's login connected to another's database). Only the diagonal may be
    True."""
    found: dict[str, dict[str, dict[str, bool]]] = {}
    for v in verdicts.values():
        for record in (t for case in v.cases for t in case.tenancy):
            row = found.setdefault(record["kind"], {}).setdefault(record["from"], {})
            for to, reached in record["to"].items():
                row[to] = row.get(to, False) or bool(reached)
    return found


def _unchecked(v: HostVerdict) -> str:
    """Why the host's role was not checked ("" when it was)."""
    if v.function not in ROLE_SUITES:
        return (f"function {v.function or '(none)'} has no suite in fellesdrift/verify/suites: "
                "nothing checks what this host is for")
    if v.role_checked:
        return ""
    suites = ROLE_SUITES[v.function]
    skips = [c.message for c in v.cases if c.suite in suites and c.outcome == "skipped"]
    why = f"; it skipped {len(skips)}: {skips[0][:200]}" if skips else ""
    return f"{' and '.join(suites)} passed no check of this {v.function} host{why}"


def verdicts(report: Path, hosts: list[Host]) -> dict[str, HostVerdict]:
    """Per-host verdicts from a JUnit report. A host with no case at all failed; so did a host on
    which the suite of its function passed no check (its failures say why)."""
    found = {h.name: HostVerdict(h.name, function_of(h)) for h in hosts}
    if report.exists():
        for element in ET.parse(report).getroot().iter("testcase"):
            name, case = _case(element)
            if name in found:
                found[name].add(case)
    for v in found.values():
        if not v.cases:
            v.add(Case("verify", "report", "failed", "no check ran against this host"))
        elif why := _unchecked(v):
            v.failures.append(why)
    return found


def ssh_control_dir() -> Path | None:
    """The directory of the SSH connections testinfra shares (ansible.cfg's
    ``[persistent_connection] control_path_dir``), made if missing. testinfra's Ansible backend
    passes ``ControlPath`` to ssh only when that directory exists: without it ssh's
    ``ControlMaster=auto`` has no socket, and every command of every check is a new SSH login
    (key exchange, authentication, a session) instead of a channel on one connection per host."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "ansible.cfg")
    directory = config.get("persistent_connection", "control_path_dir", fallback="")
    if not directory:
        return None
    path = Path(os.path.expanduser(directory))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _close_connections(control_dir: Path, hosts: list[Host]) -> None:
    """Stop the shared SSH connections of these hosts (they would linger for ControlPersist)."""
    stops = [subprocess.Popen(["ssh", "-o", f"ControlPath={control_dir}/%C", "-O", "exit",
                               "-p", str(h.ssh_port), f"{h.ssh_user}@{h.address}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for h in hosts]
    for stop in stops:
        stop.wait(timeout=30)


def run(env: str, inventory: Path, hosts: list[Host], suites: list[Path] | None = None,
        workers: int = DEFAULT_WORKERS, progress: Progress = silent, folder: str = "verify"
        ) -> dict[str, HostVerdict]:
    """Run the suites against these hosts of the inventory; returns the verdict per host.
    The JUnit report is .lab/<env>/<folder>/junit.xml (a run beside another needs its own
    ``folder``). The hosts are checked in one pytest run: ``progress`` hears every host start,
    and each host's verdict when the run is over. ``suites`` given: at most one worker per
    host and suite (the unit of work), so that no worker starts only to idle."""
    if suites:
        workers = min(workers, len(hosts) * len(suites))
    report = lab_dir(env) / folder / "junit.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--rootdir={ROOT}",
           "-n", str(max(1, workers)), "--dist", "loadgroup",
           f"--ansible-inventory={inventory}",
           "--hosts=" + ",".join(f"ansible://{h.name}" for h in hosts),
           f"--junitxml={report}", "-o", "junit_family=xunit1",
           # Where the time goes, in pytest.log: the slowest checks.
           "--durations=30", "--durations-min=2",
           *map(str, suites or [SUITES])]
    # testinfra calls ansible-inventory: the venv's, as for ansible-runner.
    environ = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
               "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                        os.environ.get("PATH", "")]),
               # Every worker rewrites the assertions of the suites and of testinfra (a hundred
               # modules) unless pytest may keep the result: kept in the lab, shared by its runs.
               "PYTHONPYCACHEPREFIX": str(lab_dir(env) / "verify" / "pycache")}
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    control_dir = ssh_control_dir()
    for h in hosts:
        progress(PHASE, h.name, START, f"pytest-xdist, {max(1, workers)} workers")
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                              env=environ)
    finally:
        if control_dir:
            _close_connections(control_dir, hosts)
    (report.parent / "pytest.log").write_text(proc.stdout + proc.stderr)
    found = verdicts(report, hosts)
    for name, verdict in found.items():
        progress(PHASE, name, verdict.state, verdict.detail)
    return found
