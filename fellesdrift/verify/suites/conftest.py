"""Shared fixtures of the testinfra suites (fellesdrift/verify/suites).

The platform runs these suites against every host, either with ``--hosts=...`` (plus
``--ssh-config``) or with ``--ansible-inventory``. A suite named after a role checks what
the role promises; where a promise depends on a role variable, :func:`role_vars` gives the
value the host should have: the role's defaults, overlaid with the host's inventory
variables when the run goes through an Ansible inventory.
"""

from __future__ import annotations

import functools
import shlex
import uuid
from typing import Any

import pytest
import yaml

from fellesdrift.access.credentials import reveal
from fellesdrift.paths import ROLES

ROLES_DIR = ROLES


@functools.cache
def role_defaults(role: str) -> dict[str, Any]:
    """The defaults of a role (roles/<role>/defaults/main.yml)."""
    path = ROLES_DIR / role / "defaults" / "main.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise TypeError(f"{path}: expected a mapping of variables")
    return data


def inventory_vars(host: Any) -> dict[str, Any]:
    """The host's Ansible inventory variables, or {} when the run has no inventory (``ssh://``
    hosts). With an inventory, variables that cannot be read are an error of every check of the
    host, never a reason to skip: a role check that skipped for that would prove nothing."""
    if not getattr(host.backend, "HAS_RUN_ANSIBLE", False):
        return {}
    # ansible-inventory --list shows !unsafe strings and !vault secrets as tagged mappings:
    # reveal() gives the values the roles see.
    variables = reveal(host.ansible.get_variables())
    if not isinstance(variables, dict):
        raise TypeError(f"the inventory variables of this host are not a mapping: {variables!r}")
    return dict(variables)


def role_vars_for(host: Any, role: str) -> dict[str, Any]:
    """Defaults of ``role`` overlaid with the host's inventory variables of that role."""
    merged = dict(role_defaults(role))
    prefix = f"{role}_"
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


def psql_attempts(host: Any, attempts: list[tuple[str, str]], sql: str) -> list[tuple[int, str]]:
    """Run ``psql -c sql`` once per (password, conninfo), all in one round trip to the host;
    the exit code and output (stderr included) of each. A tenancy matrix is many connection
    attempts: one SSH command per attempt would make it wait on the link, not on PostgreSQL."""
    marker = f"@@fd-{uuid.uuid4().hex}"
    script = "".join(
        f"echo {marker}; env PGPASSWORD={shlex.quote(password)} psql -X -w -tA "
        f"{shlex.quote(conninfo)} -c {shlex.quote(sql)} 2>&1; echo {marker} $?; "
        for password, conninfo in attempts)
    out = host.run(script).stdout
    found: list[tuple[int, str]] = []
    for chunk in out.split(f"{marker}\n")[1:]:
        text, _, rc = chunk.rpartition(f"{marker} ")
        found.append((int(rc.split()[0]), text.strip()))
    assert len(found) == len(attempts), f"psql answered {len(found)} of {len(attempts)}: {out}"
    return found


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
