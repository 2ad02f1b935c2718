"""`fellesdrift doctor`: the tools fellesdrift needs, their versions, what to do if one fails."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

from fellesdrift import environment
from fellesdrift.provision import backend, drivers, engine


@dataclass(frozen=True)
class Program:
    """A program of this machine that fellesdrift runs, and the Debian package that has it
    (scripts/setup.sh installs every one of these packages; tests/unit/test_setup_deps.py
    checks that, and that every program the code runs is here, in .venv, in the engine cache
    or part of Debian's base system)."""

    name: str
    package: str
    needed_for: str


#: The one table of the programs fellesdrift runs on this machine, outside Debian's base.
PROGRAMS = (
    Program("podman", "podman", "the lab's hosts and networks"),
    Program("runc", "runc", "the lab's container runtime (podman runs it)"),
    Program("iptables", "iptables", "the lab's forward guard"),
    Program("ip6tables", "iptables", "the lab's forward guard"),
    Program("ip", "iproute2", "the lab's unreachable routes and neighbour flushes"),
    Program("tc", "iproute2", "the lab links' bandwidth"),
    Program("sysctl", "procps", "the lab's kernel limits"),
    Program("debootstrap", "debootstrap", "building the lab's golden image"),
    Program("newuidmap", "uidmap", "podman's user namespaces"),
    Program("ssh", "openssh-client", "Ansible and testinfra reach the hosts over SSH"),
    Program("ssh-keygen", "openssh-client", "the lab's key pairs"),
    Program("gcc", "gcc", "the routers' FRR capability wrapper (role site_router, on this "
            "machine)"),
    Program("git", "git", "`--only-changed` (files changed since --base)"),
    Program("xmllint", "libxml2-utils", "`invoice`: the UBL 2.1 XML Schema check "
            "(fellesdrift/ubl.py)"),
    Program("python3", "python3", "set-up: the interpreter of .venv"),
    Program("psql", "postgresql-client-common", "a postgres:// state backend: doctor's check, "
            "recover's locks (fellesdrift/provision/backend.py)"),
)


def missing_programs(programs: tuple[Program, ...] = PROGRAMS) -> list[Program]:
    """The programs of ``programs`` that are not on PATH."""
    return [p for p in programs if shutil.which(p.name) is None]


def install_hint(missing: list[Program]) -> str:
    """One line: what is missing and the command that installs it."""
    packages = sorted({p.package for p in missing})
    return (f"missing {', '.join(p.name for p in missing)}: run `make setup` as root (or "
            f"`apt-get install {' '.join(packages)}`)")


@dataclass
class Check:
    name: str
    ok: bool
    version: str
    fix: str = ""


def _tool_version(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else None


def _at_least(version: str, wanted: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", v.split("-")[0])[:3])

    return bool(parts(version)) and parts(version) >= parts(wanted)


def backend_check(env: str) -> Check:
    """The environment's state backend (its URL without the password, and where it was set:
    the process environment, a file, or the environment's ``backend:`` in environments.yaml)
    and whether it answers."""
    try:
        store = backend.for_environment(env)
    except (backend.BackendError, environment.EnvironmentFileError) as e:
        return Check("backend", False, "unusable", str(e))
    ok, detail = store.reachable()
    return Check("backend", ok, f"{store.display} ({store.source}): "
                 + (f"reachable, {detail}" if ok else "not reachable"),
                 "" if ok else f"{detail}; check the URL, the server and the credentials "
                 f"({backend.ENV_URL} or {backend.ENV_FILE}; for a URL without its password, "
                 "PGPASSWORD or a 0600 PGPASSFILE)")


def run(env: str = "lab") -> list[Check]:
    checks = [Check("python", sys.version_info >= (3, 11), platform.python_version(),
                    "use Python 3.11 or newer for .venv (make setup)")]
    try:
        versions = engine.versions()
        sdk = metadata.version("pulumi")
        pulumi_v = versions.get("pulumi", "missing")
        checks.append(Check("pulumi", _at_least(pulumi_v, sdk), pulumi_v,
                            f"needs pulumi >= {sdk} (the SDK): run make setup"))
        host_v = versions.get("pulumi-language-python", "missing")
        checks.append(Check("pulumi-language-python", host_v != "missing", host_v,
                            "run make setup to build the language host"))
    except engine.EngineError as e:
        checks.append(Check("pulumi", False, "missing", str(e)))
    for pkg in ("ansible-core", "ansible-runner", "netmiko", "pytest-testinfra"):
        try:
            checks.append(Check(pkg, True, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            checks.append(Check(pkg, False, "missing", "run make setup"))
    missing = missing_programs()
    checks.append(Check("programs", not missing, "missing" if missing else
                        f"{len(PROGRAMS)} found", install_hint(missing) if missing else ""))
    checks.append(backend_check(env))
    podman = _tool_version(["podman", "--version"])
    checks.append(Check("podman", podman is not None, (podman or "missing").split()[-1],
                        "apt-get install podman runc (make setup does this as root)"))
    if podman is not None:
        ok, message = drivers.driver("lab").check()
        checks.append(Check("lab host", ok, message if ok else "cannot start",
                            message))
    return checks
