"""Shared fixtures of the testinfra suites (fellesdrift/verify/suites).

The platform runs these suites against every host, either with ``--hosts=...`` (plus
``--ssh-config``) or with ``--ansible-inventory``. A suite named after a role checks what
the role promises; where a promise depends on a role variable, :func:`role_vars` gives the
value the host should have: the role's defaults, overlaid with the host's inventory
variables when the run goes through an Ansible inventory.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from fellesdrift.access.credentials import reveal
from fellesdrift.paths import ROLES
from fellesdrift.verify.run import ssh_control_dir

ROLES_DIR = ROLES


@functools.cache
def role_defaults(role: str) -> dict[str, Any]:
    """The defaults of a role (roles/<role>/defaults/main.yml)."""
    path = ROLES_DIR / role / "defaults" / "main.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise TypeError(f"{path}: expected a mapping of variables")
    return data


#: The revealed inventory variables of each host, by (inventory, host): read once per process
#: (collection alone asks for them thousands of times, and revealing decrypts every secret).
_REVEALED: dict[tuple[str | None, str], dict[str, Any]] = {}


def inventory_vars(host: Any) -> dict[str, Any]:
    """The host's Ansible inventory variables, or {} when the run has no inventory (``ssh://``
    hosts). With an inventory, variables that cannot be read are an error of every check of the
    host, never a reason to skip: a role check that skipped for that would prove nothing."""
    if not getattr(host.backend, "HAS_RUN_ANSIBLE", False):
        return {}
    key = (host.backend.ansible_inventory, host.backend.get_hostname())
    if key not in _REVEALED:
        # ansible-inventory --list shows !unsafe strings and !vault secrets as tagged mappings:
        # reveal() gives the values the roles see.
        variables = reveal(host.ansible.get_variables())
        if not isinstance(variables, dict):
            raise TypeError(
                f"the inventory variables of this host are not a mapping: {variables!r}")
        _REVEALED[key] = variables
    # A copy of the mapping; no check changes a value inside it.
    return dict(_REVEALED[key])


def role_vars_for(host: Any, role: str) -> dict[str, Any]:
    """Defaults of ``role`` overlaid with the host's inventory variables of that role."""
    merged = dict(role_defaults(role))
    prefix = f"{role}__"
    for name, value in inventory_vars(host).items():
        # Unrendered Jinja cannot be compared with what is on the host: keep the default.
        if name.startswith(prefix) and not (isinstance(value, str) and "{{" in value):
            merged[name] = value
    return merged


def _function_or_none(host: Any) -> str | None:
    try:
        return function_of(host)
    except Exception:  # noqa: BLE001 - kept: the host's checks then fail with the reason
        return None


@pytest.hookimpl(hookwrapper=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> Any:
    """A suite that declares ``FUNCTIONS`` (the host functions it checks) is parametrized with
    those hosts only, not with every host to skip on most of them: fewer items to collect, send
    and report in every xdist worker. A host whose function cannot be read stays in (its checks
    fail with the reason); the suites' own ``only_for`` still guards runs without inventory."""
    functions = getattr(metafunc.module, "FUNCTIONS", None)
    if not functions or not metafunc.config.option.ansible_inventory:
        yield
        return
    parametrize = metafunc.parametrize

    def theirs(argnames: Any, argvalues: Any, *args: Any, ids: Any = None, **kw: Any) -> Any:
        if argnames == "_testinfra_host":
            keep = [i for i, h in enumerate(argvalues)
                    if _function_or_none(h) in (*functions, None)]
            argvalues = [argvalues[i] for i in keep]
            ids = [ids[i] for i in keep] if ids is not None else None
        return parametrize(argnames, argvalues, *args, ids=ids, **kw)

    metafunc.parametrize = theirs  # type: ignore[method-assign]
    try:
        yield
    finally:
        del metafunc.parametrize


_INVENTORY_JSON = "fellesdrift_inventory_json"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: read the inventory once (``ansible-inventory --list``, as testinfra
    does) and hand it to every worker, instead of one Ansible start per worker while all of them
    start at once on a machine of two cores. The file holds what ansible-inventory prints
    (secrets stay vault-encrypted), mode 0600, removed when the run ends."""
    config = node.config
    inventory = config.option.ansible_inventory
    if not inventory:
        return
    if not hasattr(config, "_fellesdrift_inventory"):
        from testinfra.utils.ansible_runner import get_ansible_config, get_ansible_inventory

        fd, path = tempfile.mkstemp(prefix="fellesdrift-inventory-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(get_ansible_inventory(get_ansible_config(), inventory), f)
        config._fellesdrift_inventory = path
        config.add_cleanup(lambda: os.unlink(path))
    node.workerinput[_INVENTORY_JSON] = config._fellesdrift_inventory


def pytest_configure(config: pytest.Config) -> None:
    """xdist worker: take the inventory the controller read (see pytest_configure_node)."""
    path = getattr(config, "workerinput", {}).get(_INVENTORY_JSON)
    if path and config.option.ansible_inventory:
        from testinfra.utils.ansible_runner import AnsibleRunner

        runner = AnsibleRunner.get_runner(config.option.ansible_inventory)
        # AnsibleRunner.inventory is a cached property: this is the value it would compute.
        runner.__dict__["inventory"] = json.loads(Path(path).read_text(encoding="utf-8"))


#: The suites whose checks of one host take longest (restores, matrices, maps, probes that wait
#: for an interval): verify starts them first, so that they overlap the many short checks
#: instead of trailing after them. (Not the site clients': twenty at once asking the GIS host
#: for maps while its own suite runs made its WMS time out.)
SLOW_SUITES = ("test_finance_hosting", "test_gis_hosting", "test_tenancy", "test_monitoring")


def _suite(nodeid: str) -> str:
    return Path(nodeid.partition("::")[0]).stem


def _order(item: pytest.Item) -> tuple[int, int, int]:
    suite = _suite(item.nodeid)
    if suite in SLOW_SUITES:
        return SLOW_SUITES.index(suite), 0, 0
    callspec = getattr(item, "callspec", None)
    host = callspec.params.get("_testinfra_host") if callspec else None
    names = item.config.option.hosts or ""
    # No host: a suite whose FUNCTIONS no host of the run has (pytest's empty parameter set).
    spec = host.backend.get_pytest_id() if hasattr(host, "backend") else ""
    index = names.split(",").index(spec) if spec in names.split(",") else 0
    # Host by host, its link measurement first: measurements wait for their share of the
    # machine (budget.py), and spread among the short checks they never hold many workers.
    return len(SLOW_SUITES), index, 0 if suite == "test_links" else 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The order verify hands out the work in (see pytest_xdist_make_scheduler): the slow
    suites first, then host by host. A stable sort: the checks of one suite on one host stay
    together in pytest's order. Every xdist worker collects the same order."""
    items.sort(key=_order)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadgroup`` (what verify runs): the checks of one suite on one host are one
    unit of work, run by one xdist worker one after the other; the units are handed out in
    collection order (slow suites first) to whichever worker is free. What a suite gathers from
    a host once (module-scoped fixtures: test_common's facts) is gathered once per host, not
    again on every worker that got one of its checks, and checks that change a host (the
    finance backups, all in one suite) never run on two workers at once. A scheduler, not
    ``xdist_group`` marks: pytest 9 derives an item's node id from its own fields, so the
    ``@group`` suffix xdist 3.8 appends to it is lost and the marks group nothing."""
    if config.getvalue("dist") != "loadgroup" or not config.option.hosts:
        return None
    from xdist.scheduler import LoadScopeScheduling

    # testinfra's id of a host is its --hosts spec (ansible://NAME); pytest appends the check's
    # own parameters after a "-". The longest spec first: a host name may begin another's.
    given = {spec.strip() for spec in str(config.option.hosts).split(",")} - {""}
    specs = sorted(given, key=len, reverse=True)

    class ByHostAndSuite(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            params = nodeid.partition("[")[2]
            for spec in specs:
                if params == f"{spec}]" or params.startswith(f"{spec}-"):
                    return f"{spec} {_suite(nodeid)}"
            return nodeid

    config.option.loadscopereorder = False  # collection order, not the biggest units first
    return ByHostAndSuite(config, log)


def shell(template: str, *args: str) -> str:
    """The command line ``host.run(template, *args)`` runs: each argument shell-quoted."""
    return template % tuple(shlex.quote(a) for a in args)


@dataclass(frozen=True)
class Ran:
    """What one command of :func:`run_all` did: as testinfra's CommandResult says it."""

    command: str
    rc: int
    stdout: str
    stderr: str

    def output(self) -> str:
        """stdout of a command that must succeed (testinfra's check_output)."""
        assert self.rc == 0, f"{self.command!r} exited {self.rc}: {self.stderr.strip()}"
        return self.stdout.rstrip("\r\n")


#: Runs the commands given (argv: how many at a time; stdin: JSON {key: [shell command, user or
#: null, environment]}), each as testinfra runs it (``/bin/sh -c``; ``sudo [-u user] /bin/sh
#: -c`` for another user), and prints {key: [rc, stdout, stderr]} as JSON.
_RUN_ALL = """
import json, os, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
jobs = json.load(sys.stdin)
def run(job):
    command, user, env = job
    argv = ["/bin/sh", "-c", command]
    if user:
        argv = ["sudo"] + (["-u", user] if user != "root" else []) + argv
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           env={**os.environ, **env})
    except OSError as e:  # no sudo: what a shell says of a missing command
        return [127, "", f"{argv[0]}: {e}"]
    return [p.returncode] + [o.decode("utf-8", "replace") for o in (p.stdout, p.stderr)]
with ThreadPoolExecutor(int(sys.argv[1])) as pool:
    print(json.dumps(dict(zip(jobs, pool.map(run, jobs.values())))))
"""


@dataclass(frozen=True)
class Job:
    """A command of :func:`run_all`: a shell command line run by the login user (``user``:
    through sudo as that user), with ``env`` added to its environment. A secret a command needs
    (``PGPASSWORD``) goes in ``env``: it travels on the SSH session's standard input and reaches
    the command's environment only, never a command line, here or on the host."""

    command: str
    user: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


def _ssh_with_stdin(host: Any, command: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` on the host with ``data`` on its standard input: OpenSSH with the lab's
    client configuration (beside the inventory, :func:`fellesdrift.provision.hosts.ssh_config`)
    over the connection testinfra shares with the host (testinfra's ``run`` has no stdin)."""
    config = getattr(host.backend, "ssh_config", None) or (
        Path(host.backend.ansible_inventory).parent / "ssh_config")
    argv = ["ssh", "-F", str(config)]
    control = ssh_control_dir()
    if control is not None:
        argv += ["-o", "ControlMaster=auto", "-o", "ControlPersist=60s",
                 "-o", f"ControlPath={control}/%C"]
    return subprocess.run([*argv, host.backend.get_hostname(), command], input=data,
                          capture_output=True, check=False, timeout=1800)


def run_all(host: Any, commands: Mapping[str, str | tuple[str, str] | Job], at_once: int = 4
            ) -> dict[str, Ran]:
    """Run every command in ONE round trip to the host, side by side there (``at_once`` at a
    time: the host shares this machine's cores with every other); the result of each by
    key. A command is a shell command line run as the login user, (command, user) to run it
    through sudo as ``user`` (``root``, ``postgres``), as ``host.sudo(user)`` would, or a
    :class:`Job` (with its environment). A check that needs many commands waits for the
    slowest of them, not for one SSH round trip each. The commands travel on standard input."""
    jobs = {key: c if isinstance(c, Job) else Job(c) if isinstance(c, str) else Job(*c)
            for key, c in commands.items()}
    if not jobs:
        return {}
    data = json.dumps({k: [j.command, j.user, dict(j.env)] for k, j in jobs.items()}).encode()
    result = _ssh_with_stdin(host, f"python3 -c {shlex.quote(_RUN_ALL)} {int(at_once)}", data)
    stderr = result.stderr.decode("utf-8", "replace").strip()
    assert result.returncode == 0, f"running {len(jobs)} commands on the host: {stderr}"
    answers = json.loads(result.stdout)
    return {key: Ran(jobs[key].command, *answers[key]) for key in jobs}


def as_login(password: str, command: str) -> Job:
    """``command`` (a psql line with ``-w``) run by the login user with ``password`` for libpq
    (``PGPASSWORD`` in its environment only)."""
    return Job(command, env={"PGPASSWORD": password})


def psql_attempts(host: Any, attempts: list[tuple[str, str]], sql: str) -> list[tuple[int, str]]:
    """Run ``psql -c sql`` once per (password, conninfo), all in one round trip to the host and
    side by side there (:func:`run_all`); the exit code and output (stderr included) of each. A
    tenancy matrix is many connection attempts: one SSH command per attempt would make it wait
    on the link, one after the other on the host for psql's start each time (the finance
    host's 169 logins: 111 s four at a time, 168 s one at a time, at load 20-27)."""
    ran = run_all(host, {
        str(i): as_login(password, f"psql -X -w -tA {shlex.quote(conninfo)} "
                                   f"-c {shlex.quote(sql)} 2>&1")
        for i, (password, conninfo) in enumerate(attempts)})
    return [(r.rc, r.stdout.strip()) for r in (ran[str(i)] for i in range(len(attempts)))]


@pytest.fixture(scope="module")
def common_vars(host: Any) -> dict[str, Any]:
    """What the role ``common`` was asked to do on this host."""
    return role_vars_for(host, "common")


@pytest.fixture(scope="module")
def is_container(host: Any) -> bool:
    """True when the host is a container (systemd-detect-virt --container)."""
    return bool(host.run("systemd-detect-virt --container --quiet").rc == 0)


def function_of(host: Any) -> str:
    """The host's function (its first group: gis_hosting, site_router …), from the inventory;
    "" when the run has no inventory. An inventory that names no function for the host is an
    error: the host's role checks would all skip."""
    variables = inventory_vars(host)
    if not variables:
        return ""
    function = variables.get("fellesdrift_function")
    if not function:
        raise LookupError(f"{variables.get('inventory_hostname', 'this host')}: the inventory "
                          "names no fellesdrift_function (fellesdrift.hostvars renders it)")
    return str(function)


def only_for(host: Any, *functions: str) -> None:
    """Skip the calling test unless the host has one of these functions."""
    have = function_of(host)
    if have not in functions:
        pytest.skip(f"not a {' or '.join(functions)} host ({have or 'function unknown'})")


@pytest.fixture(scope="module")
def function(host: Any) -> str:
    """The host's function, "" when the run has no inventory."""
    return function_of(host)


@pytest.fixture(autouse=True)
def _record_host(request: pytest.FixtureRequest, record_property: Any) -> None:
    """Name each case's host in the JUnit report (fellesdrift.verify reads it per host)."""
    if "host" in request.fixturenames:
        backend = request.getfixturevalue("host").backend
        record_property("host", getattr(backend, "host", None) or backend.get_hostname())


@pytest.fixture(scope="module")
def role_vars(host: Any) -> Any:
    """``role_vars(role)``: what ``role`` was asked to do on this host (see role_vars_for)."""
    return lambda role: role_vars_for(host, role)


@pytest.fixture(scope="module")
def require(host: Any) -> Any:
    """``require(*functions)``: skip the calling test unless the host has one of them."""
    return lambda *functions: only_for(host, *functions)
