"""Another run's lock on a stack: an apply of the core only for sizing waits for it, an explicit
one fails at once naming the holder.

A real engine applies a real (tiny) program on a file backend of the test's own: the holder is
an apply whose program waits for the test's word, so its engine holds the stack's lock (the lock
object Pulumi's DIY backend writes, pkg/backend/diy/lock.go) for as long as the test wants. The
project's folder is the test's (``stacks.ROOT``), everything else is the product's code path:
``stacks.up``, ``stacks.many``, the backend's locks.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fellesdrift.provision import backend
from fellesdrift.provision import stacks as provision

ENV = "lockt"
STACK = provision.stack_name(ENV, provision.CORE)
PROGRAM = '''
import os
import time
from pathlib import Path

import pulumi

gate = Path(os.environ["LOCK_TEST_GATE"])
while not gate.exists():  # the holder's program runs, its engine holding the lock, until told
    time.sleep(0.05)
pulumi.export("hosts", [])
'''


@dataclass
class Held:
    """The holder's apply, running until ``release``."""

    who: str
    pid: int
    release: Path
    thread: threading.Thread
    result: list[provision.StackResult]

    def end(self) -> provision.StackResult:
        self.release.touch()
        self.thread.join(timeout=300)
        assert not self.thread.is_alive(), "the holder's apply did not end"
        return self.result[0]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Pulumi project of the test's own, its file backend and passphrase."""
    (tmp_path / "Pulumi.yaml").write_text(
        "name: fellesdrift\nruntime:\n  name: python\n  options:\n"
        f"    virtualenv: {Path(sys.executable).parent.parent}\n")
    (tmp_path / "__main__.py").write_text(PROGRAM)
    monkeypatch.setattr(provision, "ROOT", tmp_path)
    monkeypatch.setenv(backend.ENV_URL, f"file://{tmp_path / 'state'}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "unit")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(provision.LOCK_WAIT_VAR, raising=False)
    monkeypatch.setenv("LOCK_TEST_GATE", str(tmp_path / "release"))
    return tmp_path


def settings() -> provision.StackSettings:
    return provision.StackSettings(ENV, "lab")


def locks() -> list[backend.Lock]:
    return backend.for_environment(ENV).locks(STACK)


def updates(project: Path) -> list[dict[str, Any]]:
    """The stack's updates as the backend recorded them (kind, result, start and end)."""
    listed = provision.open_stack(ENV, provision.CORE).history()
    return [{"kind": u.kind, "result": u.result, "start": u.start_time, "end": u.end_time}
            for u in reversed(listed)]


@pytest.fixture
def held(project: Path) -> Iterator[Held]:
    """The core's stack, made, then held by a running apply (an explicit one, as `-m core`)."""
    release = project / "release"
    provision.open_stack(ENV, provision.CORE)  # the stack exists (its making locks it briefly)
    result: list[provision.StackResult] = []
    thread = threading.Thread(target=lambda: result.append(
        provision.up(provision.CORE, project, settings())))
    thread.start()
    deadline = time.monotonic() + 120
    while not (found := locks()):
        assert thread.is_alive(), f"the holder ended before it took the lock: {result}"
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.05)
    pid = int(found[0].holder["pid"])
    # The lock is the engine's own: written by the running `pulumi` of the holder's apply.
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"pulumi")
    holder = Held(found[0].who, pid, release, thread, result)
    yield holder
    if thread.is_alive():
        holder.end()


def test_a_held_stack_fails_an_explicit_apply_at_once_and_a_wait_at_its_limit(
        held: Held, monkeypatch: pytest.MonkeyPatch) -> None:
    # Explicit (`-m core`, a full `up`): at once, naming the holder.
    [refused] = provision.many(lambda t: provision.up(t, held.release.parent, settings()),
                               [provision.CORE], ENV)
    assert refused.error.startswith(f"{STACK} is locked by {held.who}: another `fellesdrift "
                                    "up` is applying it."), refused.error
    assert f"`fellesdrift recover --stack {STACK}`" in refused.error
    # For sizing, with a limit of 0 s: the wait ends at once, in one line naming the holder.
    monkeypatch.setenv(provision.LOCK_WAIT_VAR, "0")
    told: list[str] = []
    result = provision.up(provision.CORE, held.release.parent, settings(), wait=told.append)
    assert result.error.startswith(f"{STACK} is still locked by {held.who} since "), result
    assert f" UTC after a wait of 0 s ({provision.LOCK_WAIT_VAR}): another `fellesdrift up` " \
           "is applying it; nothing was applied." in result.error
    assert f"`fellesdrift recover --stack {STACK}`" in result.error and "\n" not in result.error
    assert not result.applied and not told
    # Neither applied anything, nor disturbed the holder.
    assert held.thread.is_alive() and [lock.who for lock in locks()] == [held.who]
    assert held.end().error == ""
    assert [u["result"] for u in updates(held.release.parent)] == ["succeeded"]


def test_an_apply_for_sizing_waits_for_the_holder_then_applies(held: Held) -> None:
    told: list[str] = []
    waited: list[provision.StackResult] = []
    waiter = threading.Thread(target=lambda: waited.append(provision.up(
        provision.CORE, held.release.parent, settings(), wait=told.append)))
    waiter.start()
    deadline = time.monotonic() + 120
    while not told:  # bounded: the waiter says it waits, and for whom
        assert waiter.is_alive(), f"the waiter ended without waiting: {waited}"
        assert time.monotonic() < deadline, "the waiter never said it waits"
        time.sleep(0.05)
    assert told[0].startswith(f"waiting for {STACK}, held by {held.who} since "), told
    assert " UTC: " in told[0] and f"at most {provision.LOCK_WAIT:g} s" in told[0]
    assert waiter.is_alive() and not waited  # it waits while the lock is held

    first = held.end()
    waiter.join(timeout=300)
    assert not waiter.is_alive(), "the waiter did not apply once the lock was free"
    assert first.error == "" and first.applied
    assert waited[0].error == "" and waited[0].applied, waited
    assert not locks()
    # Two updates, neither failed: the holder's, then the waiter's, begun after the holder's
    # had ended.
    history = updates(held.release.parent)
    assert [(u["kind"], u["result"]) for u in history] == [("update", "succeeded")] * 2, history
    assert history[1]["start"] >= history[0]["end"], history


def test_a_wait_for_a_lock_whose_holder_is_gone_ends_at_once_naming_recover(
        project: Path) -> None:
    provision.open_stack(ENV, provision.CORE)
    # A lock object the way the engine writes one, of a process of this machine that has ended.
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock = (project / "state" / ".pulumi" / "locks" / "organization" / "fellesdrift" / STACK
            / "killed-run.json")
    assert lock.parent.is_dir()  # the engine's folder for the stack's locks (made with it)
    lock.write_text(json.dumps({"pid": gone.pid, "username": "ops",
                                "hostname": socket.gethostname(),
                                "timestamp": "2026-12-01T18:00:00.123456789+01:00"}))
    result = provision.up(provision.CORE, project, settings(), wait=lambda _: None)
    who = f"ops@{socket.gethostname()} (pid {gone.pid})"
    assert result.error == (
        f"{STACK} is locked by {who} since 2026-12-01 17:00:00 UTC, which is no longer running "
        f"(a killed run's lock); nothing was applied. Clear it with `fellesdrift recover "
        f"--stack {STACK}`, then apply again"), result
    assert not updates(project) and lock.exists()  # nothing applied, nothing cleared


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan"])
def test_a_lock_wait_that_is_no_number_of_seconds_is_refused_with_one_line(
        value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(provision.LOCK_WAIT_VAR, value)
    with pytest.raises(provision.ProvisionError) as e:
        provision.lock_wait()
    assert str(e.value) == (f"{provision.LOCK_WAIT_VAR}={value!r}: not a number of seconds to "
                            "wait for another run's lock; give one such as 900 (or leave it "
                            "out) [lock-wait]")
    monkeypatch.setenv(provision.LOCK_WAIT_VAR, "120")
    assert provision.lock_wait() == 120.0
    monkeypatch.delenv(provision.LOCK_WAIT_VAR)
    assert provision.lock_wait() == provision.LOCK_WAIT
