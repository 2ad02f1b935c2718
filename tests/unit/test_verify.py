"""Verify cannot pass by skipping: per-host verdicts from a real pytest run (the command
fellesdrift.verify runs, the real conftest of fellesdrift/verify/suites, testinfra's Ansible
backend, the
JUnit report pytest writes) on a tiny suite run against this machine."""

from __future__ import annotations

import multiprocessing
import shutil
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from fellesdrift import paths
from fellesdrift.plan import topology
from fellesdrift.provision.hosts import Host
from fellesdrift.verify import run as verify

ROOT = Path(__file__).resolve().parents[2]
SUITES = verify.SUITES

# A common check every host passes, and a site client's role check (it skips on other hosts,
# as the real role suites do, through the conftest's `require`).
COMMON = """
def test_the_host_answers(host):
    assert host.run("true").rc == 0
"""
SITE_CLIENT = """
def test_the_site_client_answers(host, require):
    require("site_client")
    assert host.run("true").rc == 0
"""


NOBODY = """
FUNCTIONS = ("execution_node",)

def test_the_node_answers(host):
    assert host.run("true").rc == 0
"""


def _host(name: str, function: str) -> Host:
    return Host(name, name, (function,), "127.0.0.1", "ops", 22, "k")


HEARD: list[tuple[str, str, str, str]] = []


def _heard(phase: str, item: str, state: str, detail: str, /) -> None:
    HEARD.append((phase, item, state, detail))


@dataclass(frozen=True)
class SuiteLab:
    """Suites and an inventory of local hosts, for verify.run."""
    inventory: Path
    suite: Path
    hosts: list[Host]


@pytest.fixture(scope="module")
def suite_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteLab]:
    tmp = tmp_path_factory.mktemp("verify")
    suite = tmp / "infra"
    suite.mkdir()
    shutil.copy(SUITES / "conftest.py", suite / "conftest.py")
    (suite / "test_common.py").write_text(textwrap.dedent(COMMON))
    (suite / "test_site_client.py").write_text(textwrap.dedent(SITE_CLIENT))
    # A suite of a function no host of the run has (as the execution node's on a lab without
    # one): pytest makes an empty parameter set of it, which must not stop the collection.
    (suite / "test_nobody.py").write_text(textwrap.dedent(NOBODY))
    local = {"ansible_connection": "local"}
    inventory = tmp / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {
        "client": local | {"fellesdrift_function": "site_client"},
        # The inventory says nothing of what this host is: its role checks cannot be chosen.
        "unreadable": local,
        # The inventory calls a site client something else: its role suite skips entirely.
        "skipped": local | {"fellesdrift_function": "site_router"},
        "unknown": local | {"fellesdrift_function": "jukebox"},
    }}}))
    hosts = [_host("client", "site_client"), _host("unreadable", "site_client"),
             _host("skipped", "site_client"), _host("unknown", "jukebox")]
    monkey = pytest.MonkeyPatch()
    monkey.setattr(paths, "LAB_DIR", tmp / ".lab")
    yield SuiteLab(inventory, suite, hosts)
    monkey.undo()


@pytest.fixture(scope="module")
def found(suite_lab: SuiteLab) -> dict[str, verify.HostVerdict]:
    return verify.run("unit", suite_lab.inventory, suite_lab.hosts, suites=[suite_lab.suite],
                      workers=2, progress=_heard)


@pytest.fixture(scope="module")
def known(suite_lab: SuiteLab) -> dict[str, verify.HostVerdict]:
    """Only the host whose function is known: no host is left for the node's suite."""
    return verify.run("unit", suite_lab.inventory, suite_lab.hosts[:1], suites=[suite_lab.suite])


def test_progress_says_each_host_start_and_its_verdict(found: dict[str, verify.HostVerdict]
                                                       ) -> None:
    assert [(p, i, s) for p, i, s, _ in HEARD[:4]] == [
        ("verify", name, "start") for name in ("client", "unreadable", "skipped", "unknown")]
    ends = {i: (s, d) for p, i, s, d in HEARD[4:]}
    assert ends == {name: (v.state, v.detail) for name, v in found.items()}
    assert ends["client"][0] == "ok" and ends["unknown"][0] == "failed"
    assert ends["client"][1] == "2 passed, 0 failed, 0 skipped"


def test_a_suite_no_host_of_the_run_is_for_does_not_stop_the_others(
        known: dict[str, verify.HostVerdict]) -> None:
    assert known["client"].ok, known["client"].detail
    assert known["client"].passed == 2  # common and site client ran; the node's had no host


def test_a_host_whose_role_check_passed_is_verified(found: dict[str, verify.HostVerdict]
                                                    ) -> None:
    client = found["client"]
    assert (client.passed, client.failed, client.skipped) == (2, 0, 0)
    assert client.ok, client.failures


def test_a_host_with_unreadable_variables_is_not_verified(
        found: dict[str, verify.HostVerdict]) -> None:
    v = found["unreadable"]
    assert not v.ok
    assert v.failed >= 1
    assert any("fellesdrift_function" in f for f in v.failures), v.failures


def test_a_host_whose_role_suite_only_skipped_is_not_verified(
        found: dict[str, verify.HostVerdict]) -> None:
    v = found["skipped"]
    assert (v.passed, v.failed, v.skipped) == (1, 0, 1)  # the common check alone passed
    assert not v.ok
    assert any("test_site_client" in f and "passed no check" in f for f in v.failures), \
        v.failures


def test_a_host_of_unknown_function_is_not_verified(found: dict[str, verify.HostVerdict]
                                                    ) -> None:
    v = found["unknown"]
    assert v.failed == 0 and v.passed >= 1
    assert not v.ok
    assert any("jukebox has no suite" in f for f in v.failures), v.failures


def test_checks_share_one_ssh_connection_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """testinfra's Ansible backend runs each command with ssh; it names the ControlPath (so
    ``ControlMaster=auto`` shares one connection per host) only when the directory ansible.cfg
    gives exists, which verify makes sure of."""
    from testinfra.utils.ansible_runner import get_ansible_config, get_ansible_host

    control = verify.ssh_control_dir()
    assert control is not None and control.is_dir()
    monkeypatch.setenv("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    inventory = {"_meta": {"hostvars": {"h": {"ansible_host": "192.0.2.1",
                                              "ansible_user": "ops"}}},
                 "all": {"hosts": ["h"]}}
    host = get_ansible_host(get_ansible_config(), inventory, "h")
    assert host is not None
    cmd, _ = host.backend._build_ssh_command("true")
    line = " ".join(cmd).replace("%%", "%")
    assert "ControlMaster=auto" in line
    assert f"ControlPath={control}/%C" in line


def test_every_function_the_stacks_make_has_a_role_suite() -> None:
    functions = set(topology.SHARED_FUNCTIONS.values()) | {"core_router", "site_router",
                                                          "site_client"}
    assert functions <= set(verify.ROLE_SUITES), functions - set(verify.ROLE_SUITES)
    for suites in verify.ROLE_SUITES.values():
        for suite in suites:
            assert (SUITES / f"{suite}.py").is_file(), suite



def _claim(ledger: Path, amount: float, log: Path, hold_until: Path, then: Path | None) -> None:
    """Hold ``amount`` of a budget of 1000 until the file ``hold_until`` exists (at most two
    seconds), noting in ``log`` when it was held and let go; then create ``then``."""
    from budget import held

    with held("unit", amount, 1000, path=ledger):
        with log.open("a") as f:
            f.write(f"start {amount} {time.monotonic()}\n")
        deadline = time.monotonic() + 2
        while not hold_until.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        end = time.monotonic()
    with log.open("a") as f:
        f.write(f"end {amount} {end}\n")
    if then:
        then.touch()


@pytest.mark.parametrize("first, second, together", [(400, 500, True), (600, 500, False)])
def test_link_checks_share_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      first: float, second: float, together: bool) -> None:
    """Claims that fit the budget are held at the same time (the first is let go only once the
    second held its share); a claim that does not fit waits until the other let go."""
    monkeypatch.syspath_prepend(str(SUITES))
    ledger, log, go, now = (tmp_path / n for n in ("ledger.json", "log", "go", "now"))
    now.touch()
    ctx = multiprocessing.get_context("fork")
    a = ctx.Process(target=_claim, args=(ledger, first, log, go, None))
    a.start()
    while not log.exists():
        time.sleep(0.05)
    b = ctx.Process(target=_claim, args=(ledger, second, log, now, go))
    b.start()
    a.join(10)
    b.join(10)
    events = sorted((float(t), kind, float(n)) for kind, n, t in
                    (line.split() for line in log.read_text().splitlines()))
    order = [(kind, n) for _, kind, n in events]
    if together:
        assert order == [("start", first), ("start", second), ("end", second), ("end", first)]
    else:
        assert order == [("start", first), ("end", first), ("start", second), ("end", second)]


def _suites_conftest() -> object:
    """The testinfra suites' conftest, as the suites import it (a module named conftest)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("suites_conftest",
                                                  verify.SUITES / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses read their module's namespace
    spec.loader.exec_module(module)
    return module


def test_run_all_hands_a_secret_to_its_command_on_stdin_never_on_a_command_line() -> None:
    """The script run_all sends to a host, run here as the host runs it: the jobs arrive on
    standard input, a Job's env reaches its command's environment, and the secret is on no
    process's command line (the script's own argv holds only how many run at once)."""
    import json
    import subprocess
    import sys

    suites = _suites_conftest()
    secret = "s3cret-Passw0rd"
    job = suites.as_login(secret, 'printf %s "$PGPASSWORD"; cat /proc/$$/cmdline '  # type: ignore[attr-defined]
                          '/proc/$PPID/cmdline')
    data = json.dumps({"login": [job.command, job.user, dict(job.env)],
                       "plain": ["echo hello", None, {}]}).encode()
    argv = [sys.executable, "-c", suites._RUN_ALL, "2"]  # type: ignore[attr-defined]
    assert secret not in " ".join(argv)
    ran = subprocess.run(argv, input=data, capture_output=True, check=True)
    answers = json.loads(ran.stdout)
    rc, out, _ = answers["login"]
    assert rc == 0
    assert out.startswith(secret)  # the command read it from its environment …
    assert secret not in out[len(secret):]  # … and neither it nor its parent has it in argv
    assert answers["plain"][:2] == [0, "hello\n"]
