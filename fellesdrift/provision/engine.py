"""The Pulumi engine: where its binaries are, and the environment every Pulumi call gets."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cache
from pathlib import Path

from fellesdrift.access.stack_encryption import passphrase_env
from fellesdrift.errors import FellesdriftError
from fellesdrift.paths import ROOT
from fellesdrift.provision import backend

BUILD = ROOT / "scripts" / "engine" / "build.sh"


class EngineError(FellesdriftError, RuntimeError):
    pass


@cache
def bin_dir() -> Path:
    """The folder with `pulumi` and the Python language host (built on first use, then cached)."""
    proc = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise EngineError(f"the Pulumi engine is not available:\n{proc.stderr.strip()}")
    return Path(proc.stdout.strip().splitlines()[-1])


def env(store: backend.Backend | None = None) -> dict[str, str]:
    """Environment for the engine: the backend (``store``, by default
    ``backend.for_environment()``: the file backend under .state/), our venv's Python."""
    store = store if store is not None else backend.for_environment()
    venv_bin = Path(sys.executable).parent
    return {
        "PATH": os.pathsep.join([str(bin_dir()), str(venv_bin), os.environ.get("PATH", "")]),
        **store.engine_env,
        "PULUMI_PYTHON_CMD": sys.executable,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        **passphrase_env(),
    }


def versions() -> dict[str, str]:
    """Versions of the engine and the language host, as they report them."""
    out: dict[str, str] = {}
    for name, args in (("pulumi", ["version"]), ("pulumi-language-python", ["--version"])):
        exe = bin_dir() / name
        if not exe.exists():
            # A pulumi from PATH keeps its language host beside it or in its plugin folder.
            out[name] = "bundled with pulumi" if name != "pulumi" else "missing"
            continue
        proc = subprocess.run([str(exe), *args], capture_output=True, text=True, check=False)
        out[name] = proc.stdout.strip().lstrip("v") or proc.stderr.strip()
    return out
