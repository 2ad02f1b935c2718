"""Idempotence: a converge is proved when a run right after it changes nothing not waived.

A host the first run reached and changed nothing on (beyond waived tasks) is at a fixed point
already: that run was its own second run. So the second run goes only to the hosts the first
run changed and those another phase touched since (the routers the network phase pushed to):
:func:`to_rerun`, and :func:`second_run` joins its result with the first run's for the others.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from fellesdrift.converge.run import ChangedTask, ConvergeResult, HostRecap
from fellesdrift.errors import RefusedError
from fellesdrift.paths import PLAYBOOKS
from fellesdrift.results import Result

WAIVERS = PLAYBOOKS / "idempotence-waivers.yml"


class WaiverError(RefusedError, ValueError):
    """The waiver file is malformed (one message naming the file, the entry and the field)."""


@dataclass(frozen=True)
class Waiver:
    role: str
    task: str
    reason: str

    def covers(self, task: ChangedTask) -> bool:
        return task.role == self.role and task.task == self.task


def load_waivers(path: Path = WAIVERS) -> list[Waiver]:
    """The tasks allowed to report changed on a second run, each with its reason."""
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("waivers") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise WaiverError(f"{path}: expected a mapping with a list `waivers:`")
    found = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise WaiverError(f"{path}: waiver {i}: expected a mapping with role, task, reason")
        for key in ("role", "task", "reason"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise WaiverError(f"{path}: waiver {i}: field {key}: missing or empty; every "
                                  "waiver names the role, the task and why it may change")
        extra = set(entry) - {"role", "task", "reason"}
        if extra:
            raise WaiverError(f"{path}: waiver {i}: unknown field(s) {', '.join(sorted(extra))}"
                              "; a waiver has role, task and reason")
        found.append(Waiver(entry["role"], entry["task"], entry["reason"]))
    return found


def _waived(task: ChangedTask, waivers: list[Waiver]) -> Waiver | None:
    return next((w for w in waivers if w.covers(task)), None)


def to_rerun(names: list[str], first: ConvergeResult, waivers: list[Waiver],
             touched: Collection[str] = ()) -> list[str]:
    """Of ``names``, the hosts a second run must go to: those the first run changed (a change
    no waiver covers), those it did not reach or failed on, and those in ``touched`` (changed
    since by another phase). The others' first run changed nothing, so it shows their
    idempotence itself."""
    waived: dict[str, int] = {}
    for task in first.changed_tasks:
        if _waived(task, waivers) is not None:
            waived[task.host] = waived.get(task.host, 0) + 1
    found = []
    for name in names:
        recap = first.recap.get(name)
        if (recap is None or recap.failed or recap.unreachable or name in touched
                or recap.changed > waived.get(name, 0)):
            found.append(name)
    return found


def second_run(first: ConvergeResult, again: ConvergeResult | None, rerun: list[str]
               ) -> ConvergeResult:
    """The second run over every host of ``first``: ``again`` (the run on ``rerun``, None when
    it was empty) for those, the first run itself for the others (their changes, waived ones
    only, are judged again as such)."""
    stay = {h: r for h, r in first.recap.items() if h not in rerun}
    kept = [t for t in first.changed_tasks if t.host in stay]
    if again is None:
        return replace(first, recap=stay, changed_tasks=kept, failures=[])
    return replace(again, recap={**stay, **again.recap},
                   changed_tasks=kept + again.changed_tasks)


def converge_again(names: list[str], first: ConvergeResult, waivers: list[Waiver],
                   run_on: Callable[[list[str]], ConvergeResult], touched: Collection[str] = ()
                   ) -> tuple[ConvergeResult, list[str]]:
    """The second run after ``first``: ``run_on`` the hosts :func:`to_rerun` names (not at all
    when there are none), joined with the first run for the others (:func:`second_run`).
    Returns it and the hosts it ran on."""
    rerun = to_rerun(names, first, waivers, touched)
    return second_run(first, run_on(rerun) if rerun else None, rerun), rerun


@dataclass
class Idempotence:
    """What a second run right after the first changed: waived and not waived."""

    changed: list[ChangedTask]
    waived: list[tuple[ChangedTask, Waiver]]
    failures: list[str] = field(default_factory=list)
    #: The hosts the second run went to (None: every host of the first).
    rerun: list[str] | None = None

    @property
    def ok(self) -> bool:
        return not self.changed and not self.failures


def judge(second: ConvergeResult, waivers: list[Waiver], rerun: list[str] | None = None
          ) -> Idempotence:
    """Judge a second run from its events: every changed task not covered by a waiver."""
    changed, waived = [], []
    for task in second.changed_tasks:
        waiver = _waived(task, waivers)
        if waiver is None:
            changed.append(task)
        else:
            waived.append((task, waiver))
    failures = list(second.failures) if not second.ok else []
    if not second.ok and not failures:
        failures.append(f"the second run ended {second.status} (rc {second.rc})")
    return Idempotence(changed, waived, failures, rerun)


@dataclass
class HostConverge(Result):
    """Whether one host converged: a run and the run right after it both reached it without a
    failure, and the second changed nothing that no waiver covers."""

    first: HostRecap | None = None
    second: HostRecap | None = None
    #: The second run's changed tasks on this host that no waiver covers (None: every change
    #: of the second run counts).
    unwaived: int | None = None
    #: The second run went to this host; False: its first run changed nothing, and was its own
    #: second run (:func:`to_rerun`).
    rerun: bool = True

    @property
    def error(self) -> str:
        if self.first is None:
            return "missing from the first run"
        bad = [f"{n} run: {r.failed} failed, {r.unreachable} unreachable"
               for n, r in (("first", self.first), ("second", self.second))
               if r is not None and (r.failed or r.unreachable)]
        if bad:
            return "; ".join(bad)
        if self.second is None:
            return "missing from the second run"
        again = self.second.changed if self.unwaived is None else self.unwaived
        return f"not idempotent: the second run changed {again}" if again else ""

    @property
    def changed(self) -> int:
        return self.first.changed if self.first is not None else 0

    @property
    def detail(self) -> str:
        if self.error:
            return self.error
        return f"changed {self.changed}, then 0" if self.rerun else "changed nothing"


def per_host(names: list[str], first: ConvergeResult, second: ConvergeResult | None = None,
             idempotence: Idempotence | None = None) -> list[HostConverge]:
    """Each host's converge over ``first`` and the ``second`` run right after it (without one,
    no host can have converged: one run cannot show idempotence); ``idempotence``, the second
    run's judgement, decides which of its changes count."""
    unwaived: dict[str, int] | None = None
    if idempotence is not None:
        unwaived = {name: 0 for name in names}
        for task in idempotence.changed:
            unwaived[task.host] = unwaived.get(task.host, 0) + 1
    rerun = idempotence.rerun if idempotence is not None else None
    return [HostConverge(name, first.recap.get(name),
                         second.recap.get(name) if second is not None else None,
                         None if unwaived is None else unwaived.get(name, 0),
                         rerun is None or name in rerun)
            for name in names]
