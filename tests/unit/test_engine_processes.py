"""No process of the project outlives its Pulumi engine.

The engine starts the project's language host (scripts/engine/langhost.go), which runs the
program (pulumi-language-python-exec), and the dynamic provider host
(pulumi-resource-pulumi-python). A killed engine does not stop them itself: each must notice on
its own. Here a real engine previews a real program that registers a dynamic resource and then
waits; the engine is killed (SIGKILL) while all three run; every one of them must be gone
within a bounded wait.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fellesdrift.provision import engine

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = '''
import time

import pulumi
from pulumi.dynamic import CreateResult, Resource, ResourceProvider


class Provider(ResourceProvider):
    def create(self, props):
        return CreateResult("one", props)


class Waits(Resource):
    def __init__(self, name):
        super().__init__(Provider(), name, {})


# Once the engine has registered it (its provider is running), the program waits.
Waits("waits").urn.apply(lambda _: time.sleep(600))
'''


def _children() -> dict[int, int]:
    """{pid: parent pid} of every process of this machine."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(stat.parent.name)] = int(fields[1])
    return found


def _descendants(pid: int) -> set[int]:
    parents = _children()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    (tmp_path / "Pulumi.yaml").write_text(
        "name: enginetest\nruntime:\n  name: python\n  options:\n"
        f"    virtualenv: {Path(sys.executable).parent.parent}\n")
    (tmp_path / "__main__.py").write_text(PROGRAM)
    state = tmp_path / "state"
    state.mkdir()
    env = {**os.environ, **engine.env(), "PULUMI_BACKEND_URL": f"file://{state}",
           "PULUMI_CONFIG_PASSPHRASE": "unit", "PULUMI_HOME": str(tmp_path / "home")}
    env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
    pulumi = str(engine.bin_dir() / "pulumi")
    subprocess.run([pulumi, "stack", "init", "unit", "--non-interactive"], cwd=tmp_path,
                   env=env, check=True, capture_output=True)
    yield tmp_path, env


def test_killing_the_engine_ends_the_language_host_the_program_and_the_provider(
        project: tuple[Path, dict[str, str]]) -> None:
    folder, env = project
    proc = subprocess.Popen([str(engine.bin_dir() / "pulumi"), "preview", "--stack", "unit",
                             "--non-interactive"], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    started: set[int] = set()
    try:
        wanted = ("pulumi-language-python ", "pulumi-language-python-exec", "pulumi.dynamic")
        deadline = time.monotonic() + 180
        while True:  # bounded wait: the engine has started all three
            started = _descendants(proc.pid)
            running = " | ".join(_cmdline(p) for p in started)
            if all(w in running for w in wanted):
                break
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, f"not all started: {running}"
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60
        while any(_alive(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.5)  # bounded wait for them to notice
        left = {p: _cmdline(p) for p in started if _alive(p)}
        assert not left, f"still running after their engine was killed: {left}"
    finally:
        for p in started | {proc.pid}:  # only what this test started
            if _alive(p):
                os.kill(p, signal.SIGKILL)
        if proc.stdout:
            proc.stdout.close()
