"""Provision: Pulumi stacks through the Automation API.

One stack for the operations centre, `<env>.core`, and one per municipality, `<env>.<slug>`.
The stacks' outputs are the only way hosts become known to the phases after this one.
"""

from __future__ import annotations

import os
import random
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from fellesdrift.errors import FellesdriftError
from fellesdrift.fanout import fan_out
from fellesdrift.paths import ROOT
from fellesdrift.progress import Progress, silent
from fellesdrift.provision import backend, engine
from fellesdrift.results import Result

CORE = "core"
#: How long an apply that waits for another run's lock (the core applied only for sizing) waits
#: at most, in seconds: this variable, else :data:`LOCK_WAIT`.
LOCK_WAIT_VAR = "FELLESDRIFT_LOCK_WAIT"
LOCK_WAIT = 900.0
#: How often a wait asks the backend whether the lock is free, and how often it says so.
_POLL, _TELL = 1.0, 30.0

Say = Callable[[str], object]


@dataclass(frozen=True)
class StackSettings:
    """What every stack of an environment is configured with: its driver, and the driver's
    stack configuration (``Driver.prepare``, fellesdrift.provision.drivers)."""

    env: str
    driver: str
    config: dict[str, str] = field(default_factory=dict)
    #: Preview under Pulumi's mocks, in this process (no engine, no cluster).
    mocks: bool = False


@dataclass
class StackResult(Result):
    """A stack's result (``name``: ``<env>.<target>``): what an up applied, or what a preview
    or a refresh found pending. Ok when nothing failed and nothing is left pending."""

    changes: dict[str, int] = field(default_factory=dict)
    hosts: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    #: What a preview under mocks declared: (type, name) of every resource.
    declared: list[tuple[str, str]] = field(default_factory=list)
    #: An up applied the changes (else they are pending: a preview's, a refresh's).
    applied: bool = False

    @property
    def stack(self) -> str:
        return self.name

    @property
    def changed(self) -> int:
        return sum(n for op, n in self.changes.items() if op != "same")

    @property
    def ok(self) -> bool:
        return not self.error and (self.applied or not self.changed)

    @property
    def detail(self) -> str:
        if self.error:
            return self.error
        if self.applied:
            return f"applied {self.changed} change(s)"
        return f"{self.changed} pending change(s)" if self.changed else "no pending changes"


class ProvisionError(FellesdriftError, RuntimeError):
    pass


def stack_name(env: str, target: str) -> str:
    return f"{env}.{target}"


def _workspace_opts(env: str) -> auto.LocalWorkspaceOptions:
    return auto.LocalWorkspaceOptions(
        work_dir=str(ROOT), env_vars=engine.env(backend.for_environment(env)),
        secrets_provider="passphrase",
        pulumi_command=auto.PulumiCommand(root=str(engine.bin_dir().parent)))


def open_stack(env: str, target: str) -> auto.Stack:
    return auto.create_or_select_stack(stack_name(env, target), work_dir=str(ROOT),
                                       opts=_workspace_opts(env))


def stack_config(settings: StackSettings, target: str, inventory: Path) -> dict[str, str]:
    """The configuration of one stack (stacks/__main__.py reads it): the environment, the
    target, the driver, the inventory folder and the driver's own keys."""
    config = {"fellesdrift:env": settings.env, "fellesdrift:target": target,
              "fellesdrift:driver": settings.driver,
              "fellesdrift:inventory": str(inventory.resolve())}
    for key, value in settings.config.items():
        config[key if ":" in key else f"fellesdrift:{key}"] = value
    return config


def _configure(stack: auto.Stack, target: str, inventory: Path, settings: StackSettings
               ) -> None:
    stack.set_all_config({k: auto.ConfigValue(v)
                          for k, v in stack_config(settings, target, inventory).items()})


def explain(stack: str, err: Exception) -> str:
    """One clear line for what went wrong with a stack, with what to do where we know it (a
    backend URL in the engine's words without its password)."""
    text = backend.redact(str(err))
    if "locked by" in text or "currently locked" in text:
        holder = re.search(r"([\w.-]+@[\w.-]+[^\n]*?\(pid \d+\))", text)
        return _locked(stack, holder.group(1) if holder else "another process")
    if "pending operations" in text or "interrupted" in text:
        return (f"{stack} has operations a killed run left pending; run "
                f"`fellesdrift recover --stack {stack}`, then `fellesdrift up` again")
    return f"{stack}: {_error_lines(text) or text.strip()[-600:]}"


def _locked(stack: str, who: str, waited: str = "") -> str:
    return (f"{stack} is {'still ' if waited else ''}locked by {who}{waited}: another "
            f"`fellesdrift up` is applying it{'; nothing was applied' if waited else ''}. Wait "
            f"for it; if that process is gone, clear the stale lock with "
            f"`fellesdrift recover --stack {stack}`")


#: What the engine wraps a program's own error in, and its generic closing lines.
_WRAPPERS = re.compile(r"^(error:\s*|Exception calling application:\s*|Exception:\s*)+")
_GENERIC = {"update failed", "preview failed", "refresh failed", "destroy failed"}


def _error_lines(text: str) -> str:
    """The engine's error lines without their wrappers, each said once."""
    found: list[str] = []
    for line in text.splitlines():
        if "error" not in line.lower():
            continue
        # A progress line ("<resource> running error: …") says it after its resource.
        said = line.rsplit("error:", 1)[-1] if "error:" in line else line
        clean = _WRAPPERS.sub("", said.strip()).strip()
        if clean and clean.lower() not in _GENERIC and clean not in found \
                and not clean.lower().startswith(("code:", "stderr:", "stdout:")):
            found.append(clean)
    return " / ".join(found[-3:])


def lock_wait() -> float:
    """How long a waiting apply waits for another run's lock (:data:`LOCK_WAIT_VAR`)."""
    value = os.environ.get(LOCK_WAIT_VAR, "").strip()
    try:
        seconds = float(value) if value else LOCK_WAIT
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ProvisionError(f"{LOCK_WAIT_VAR}={value!r}: not a number of seconds to wait for "
                             f"another run's lock; give one such as {LOCK_WAIT:.0f} (or leave "
                             "it out) [lock-wait]")
    return seconds


@dataclass
class _Wait:
    """An apply waiting for the other runs' locks on its stack to go (pkg/backend/diy/lock.go:
    the engine refuses a stack while a lock object of another run exists)."""

    stack: str
    store: backend.Backend
    say: Say
    limit: float
    started: float | None = None
    told: float = float("-inf")

    def until_free(self) -> str:
        """Return "" once no other run holds the stack; or, applying nothing, why the wait
        ended without that: its holder is a run of this machine that is gone, or the wait
        reached its limit."""
        while locks := self.store.locks(self.stack):
            lock = locks[0]
            since = _since(lock.holder.get("timestamp"))
            if lock.holder and not _alive(lock.holder):
                return (f"{self.stack} is locked by {lock.who}{since}, which is no longer "
                        f"running (a killed run's lock); nothing was applied. Clear it with "
                        f"`fellesdrift recover --stack {self.stack}`, then apply again")
            now = time.monotonic()
            self.started = now if self.started is None else self.started
            waited = now - self.started
            if waited >= self.limit:
                return _locked(self.stack, lock.who, f"{since} after a wait of "
                               f"{self.limit:g} s ({LOCK_WAIT_VAR})")
            if now - self.told >= _TELL:
                self.say(f"waiting for {self.stack}, held by {lock.who}{since}: "
                         f"{waited:.0f} s so far, at most {self.limit:g} s")
                self.told = now
            time.sleep(_POLL)
        return ""


def _since(timestamp: object) -> str:
    """' since <when, UTC>' of a lock's timestamp (Go's RFC 3339), or "" if it has none."""
    try:
        when = datetime.fromisoformat(str(timestamp)).astimezone(UTC)
    except ValueError:
        return ""
    return f" since {when:%Y-%m-%d %H:%M:%S} UTC"


def up(target: str, inventory: Path, settings: StackSettings, wait: Say | None = None
       ) -> StackResult:
    """Apply one stack and return what changed and its hosts.

    A stack another run holds (its lock in the backend) fails at once, naming the holder.
    With ``wait`` (the core applied only for sizing, ``pipeline.job.Selection.sizes_core``) it
    is waited for instead, said through ``wait`` every 30 s (who holds it, since when, how long
    so far), and applied once free; a wait that reaches :func:`lock_wait` seconds, or whose
    holder is a run of this machine that is gone, fails the stack naming the holder and
    applies nothing."""
    if settings.mocks:
        raise ProvisionError(f"environment {settings.env} is declared under Pulumi's mocks "
                             "only (environments.yaml: mocks): `plan` it; `up` needs its "
                             f"{settings.driver} driver's real target")
    name = stack_name(settings.env, target)
    waiting = None if wait is None else _Wait(name, backend.for_environment(settings.env), wait,
                                              lock_wait())
    if waiting and (ended := waiting.until_free()):  # before the engine starts
        return StackResult(name, error=ended)
    stack = open_stack(settings.env, target)
    _configure(stack, target, inventory, settings)
    while True:
        try:
            # refresh first: a host removed or changed behind our back is made right.
            result = stack.up(color="never", suppress_progress=True, refresh=True)
            break
        except auto.errors.ConcurrentUpdateError:
            if not waiting:
                raise
            # Taken since we looked (or by a run that started in the same instant: both back
            # off): wait again, not in step with the other.
            time.sleep(random.uniform(0, _POLL))
            if ended := waiting.until_free():
                return StackResult(name, error=ended)
    changes = {str(op): n for op, n in (result.summary.resource_changes or {}).items()}
    hosts = result.outputs.get("hosts")
    return StackResult(stack.name, changes, list(hosts.value) if hosts is not None else [],
                       applied=True)


def preview(target: str, inventory: Path, settings: StackSettings) -> StackResult:
    """What `up` would change in one stack, changing nothing."""
    if settings.mocks:
        from fellesdrift.provision import mocks

        declared = mocks.declare(stack_config(settings, target, inventory))
        return StackResult(stack_name(settings.env, target), {"create": len(declared)},
                           declared=declared)
    stack = open_stack(settings.env, target)
    _configure(stack, target, inventory, settings)
    result = stack.preview(color="never", suppress_progress=True)
    return StackResult(stack.name, {str(op): n for op, n in result.change_summary.items()})


def drift(target: str, inventory: Path, settings: StackSettings) -> StackResult:
    """What a refresh would change: resources that moved behind Pulumi's back (changes
    nothing; an empty result means no drift)."""
    stack = open_stack(settings.env, target)
    _configure(stack, target, inventory, settings)
    changes: dict[str, int] = {}

    def summary(event: auto.EngineEvent) -> None:
        # A preview-only refresh records no update: its summary comes as an event.
        if event.summary_event is not None:
            changes.update({str(op): n for op, n in event.summary_event.resource_changes.items()})

    stack.refresh(on_event=summary, color="never", suppress_progress=True, preview_only=True)
    return StackResult(stack.name, changes)


def many(fn: Callable[[str], StackResult], targets: Sequence[str], env: str,
         workers: int = 3, progress: Progress = silent) -> list[StackResult]:
    """Run ``fn`` on each target, at most ``workers`` at once; the engine's failure is
    reported, not raised, so one stack does not stop the others."""
    def failed(target: str, e: Exception) -> StackResult:
        return StackResult(stack_name(env, target), error=explain(stack_name(env, target), e))

    return fan_out(fn, targets, phase="provision", name=lambda t: stack_name(env, t),
                   failed=failed, workers=workers, progress=progress,
                   catch=(auto.CommandError, auto.errors.StackNotFoundError))


def destroy(env: str, target: str) -> None:
    """Destroy a stack, protected resources included, and remove it."""
    stack = open_stack(env, target)
    try:
        stack._run_pulumi_cmd_sync(["state", "unprotect", "--all", "--yes"])
        stack.destroy(color="never", suppress_progress=True, remove=True)
    except auto.CommandError as e:
        raise ProvisionError(explain(stack.name, e)) from None


def _alive(holder: dict[str, Any]) -> bool:
    if holder.get("hostname") not in (None, socket.gethostname()):
        return True  # another machine's: cannot tell, so never break it
    try:
        os.kill(int(holder.get("pid", 0)), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return int(holder.get("pid", 0)) > 0


def forget(env: str, target: str) -> None:
    """Drop a stack and its state without touching resources (after the lab is torn down)."""
    store = backend.for_environment(env)
    for lock in store.locks(stack_name(env, target)):
        store.unlock(lock)
    open_stack(env, target).workspace.remove_stack(stack_name(env, target), force=True)


def recover(env: str, target: str) -> list[str]:
    """After a killed run: clear its stale lock, forget the creates it left pending (a host it
    made is adopted by the next `up`, since lab hosts with the same spec are reused), and
    refresh the stack. Refuses while the lock's holder is still running."""
    cleared = []
    store = backend.for_environment(env)
    for lock in store.locks(stack_name(env, target)):
        if _alive(lock.holder):
            raise ProvisionError(f"{stack_name(env, target)} is locked by {lock.who}, which is "
                                 f"still running (backend {store.display})")
        store.unlock(lock)
        cleared.append(lock.key)
    stack = open_stack(env, target)
    stack.refresh(color="never", suppress_progress=True, clear_pending_creates=True)
    return cleared


def stacks(env: str) -> list[str]:
    """The targets (`core` and municipality slugs) that have a stack in this environment."""
    ws = auto.LocalWorkspace(work_dir=str(ROOT), env_vars=engine.env(backend.for_environment(env)),
                             pulumi_command=auto.PulumiCommand(root=str(engine.bin_dir().parent)))
    prefix = f"{env}."
    return sorted(s.name.removeprefix(prefix) for s in ws.list_stacks()
                  if s.name.startswith(prefix))
