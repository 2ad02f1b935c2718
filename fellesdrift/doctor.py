"""`fellesdrift doctor`: the tools fellesdrift needs, their versions, what to do if one fails."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

from . import engine, lab


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


def run() -> list[Check]:
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
    podman = _tool_version(["podman", "--version"])
    checks.append(Check("podman", podman is not None, (podman or "missing").split()[-1],
                        "apt-get install podman runc (make setup does this as root)"))
    if podman is not None:
        ok, message = lab.can_start_host()
        checks.append(Check("lab host", ok, message if ok else "cannot start",
                            message))
    return checks
