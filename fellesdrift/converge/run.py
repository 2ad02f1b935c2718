"""Converge: apply the playbooks to the provisioned hosts through ansible-runner.

Results are judged from ansible-runner's events, never from its text output.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_mitogen
import ansible_runner

from fellesdrift import environment
from fellesdrift.access import credentials
from fellesdrift.converge import nodes as remote
from fellesdrift.environment import ExecutionNode
from fellesdrift.paths import PLAYBOOKS, ROOT, lab_dir
from fellesdrift.progress import START, Progress, silent


@dataclass(frozen=True)
class ChangedTask:
    host: str
    role: str
    task: str
    handler: bool
    diff: str = ""
    """What the task changed (or, in check mode, would change) as a unified diff, when the
    run asked for diffs (``--diff``) and the module reports one; "" otherwise."""

    def __str__(self) -> str:
        kind = "handler" if self.handler else "task"
        return f"{self.host}: {self.role or '-'} : {self.task} ({kind})"


@dataclass
class HostRecap:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0


@dataclass
class ConvergeResult:
    status: str
    rc: int
    artifacts: Path
    recap: dict[str, HostRecap] = field(default_factory=dict)
    changed_tasks: list[ChangedTask] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    check: bool = False
    """A check-mode run (``--check --diff``): nothing was applied; changed_tasks are the tasks
    that would change, each with its diff."""
    may_change: list[ChangedTask] = field(default_factory=list)
    """In a check-mode run, the commands Ansible skipped because it cannot tell what they would
    do (:data:`WOULD_HAVE_RUN`): they may change when applied."""
    shards: list[Path] = field(default_factory=list)
    """The artifacts of each shard of the run: this machine's, then each execution node's
    (one, ``artifacts``, for a run that used no node)."""

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not any(r.failed or r.unreachable for r in self.recap.values())

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.recap.values())

    @property
    def host_tasks(self) -> int:
        """Tasks run, host by host (ok, failed, skipped, unreachable): what a benchmark counts."""
        return sum(r.ok + r.failed + r.skipped + r.unreachable for r in self.recap.values())


PHASE = "converge"
def diff_text(diff: object) -> str:
    """A module's ``diff`` result as text, the way Ansible's own callbacks show it without
    colour: each before/after pair as a unified diff (mappings as sorted JSON), each
    ``prepared`` text as it is, and a note where Ansible skipped a binary or large file.
    ``diff`` is one such mapping or a list of them; anything else gives ""."""
    parts: list[str] = []
    for one in diff if isinstance(diff, list) else [diff]:
        if not isinstance(one, Mapping):
            continue
        for key, what in (("dst_binary", "destination file appears to be binary"),
                          ("src_binary", "source file appears to be binary")):
            if key in one:
                parts.append(f"diff skipped: {what}\n")
        for key, what in (("dst_larger", "destination"), ("src_larger", "source")):
            if key in one:
                parts.append(f"diff skipped: {what} file size is greater than {one[key]}\n")
        if "before" in one and "after" in one:
            sides = []
            for side in ("before", "after"):
                value = one[side]
                if isinstance(value, Mapping | list):
                    value = json.dumps(value, indent=4, sort_keys=True) + "\n"
                sides.append("" if value is None else str(value))
            before, after = (text.splitlines(True) for text in sides)
            for lines in (before, after):
                if lines and not lines[-1].endswith("\n"):
                    lines[-1] += "\n\\ No newline at end of file\n"
            parts.extend(difflib.unified_diff(
                before, after,
                fromfile=f"before: {one['before_header']}" if "before_header" in one
                else "before",
                tofile=f"after: {one['after_header']}" if "after_header" in one else "after"))
        if one.get("prepared"):
            prepared = str(one["prepared"])
            parts.append(prepared if prepared.endswith("\n") else prepared + "\n")
    return "".join(parts)


def _changed_diff(res: Mapping[str, Any]) -> str:
    """The diff of a changed task's result: its own, or its changed loop items' in order."""
    if isinstance(res.get("results"), list):
        return "".join(diff_text(item.get("diff")) for item in res["results"]
                       if isinstance(item, Mapping) and item.get("changed"))
    return diff_text(res.get("diff"))


#: What the command and shell modules say in check mode of a command they skip because they
#: cannot tell whether it would change anything (ansible/modules/command.py).
WOULD_HAVE_RUN = "Command would have run if not in check mode"


def _would_have_run(res: Mapping[str, Any]) -> bool:
    items = res["results"] if isinstance(res.get("results"), list) else [res]
    return any(isinstance(i, Mapping) and i.get("msg") == WOULD_HAVE_RUN for i in items)


_OUTCOMES = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_skipped": "skipped",
             "runner_on_unreachable": "unreachable"}


class _Events:
    """Collects what a run did, from its events."""

    def __init__(self, progress: Progress = silent) -> None:
        self.progress = progress
        self.handlers: set[str] = set()
        self.changed: list[ChangedTask] = []
        self.may_change: list[ChangedTask] = []
        self.failures: list[str] = []
        self.recap: dict[str, HostRecap] = {}

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        host, task = data.get("host", ""), data.get("task", "")
        if kind == "playbook_on_handler_task_start":
            self.handlers.add(data.get("task_uuid", ""))
        elif kind == "runner_on_start":
            self.progress(PHASE, host, START, task)
        elif kind in _OUTCOMES:
            state = _OUTCOMES[kind]
            res = data.get("res") or {}
            if kind == "runner_on_ok" and res.get("changed"):
                state = "changed"
                self.changed.append(ChangedTask(host, data.get("role", ""), task,
                                                data.get("task_uuid") in self.handlers,
                                                _changed_diff(res)))
            elif kind == "runner_on_skipped" and _would_have_run(res):
                self.may_change.append(ChangedTask(host, data.get("role", ""), task,
                                                   data.get("task_uuid") in self.handlers))
            elif state in ("failed", "unreachable") and not data.get("ignore_errors"):
                msg = res.get("msg", "")
                self.failures.append(f"{host}: {task}: {msg}".strip())
            self.progress(PHASE, host, state, task)
        elif kind == "playbook_on_stats":
            for name in set().union(*(data.get(k) or {} for k in
                                      ("ok", "changed", "failures", "dark", "skipped"))):
                self.recap[name] = HostRecap(
                    ok=(data.get("ok") or {}).get(name, 0),
                    changed=(data.get("changed") or {}).get(name, 0),
                    failed=(data.get("failures") or {}).get(name, 0),
                    unreachable=(data.get("dark") or {}).get(name, 0),
                    skipped=(data.get("skipped") or {}).get(name, 0))
        return True


def _playbook_processes() -> list[int]:
    """The ansible-playbook processes this process started and every process below them
    (Linux /proc). Ansible's workers each call setsid, so a kill of the playbook's process
    group would leave them working on the hosts."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    found = []
    for pid in children.get(os.getpid(), []):
        with suppress(OSError):
            if b"ansible-playbook" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    queue = list(found)
    while queue:
        below = children.get(queue.pop(), [])
        found += below
        queue += below
    return found


@contextmanager
def _cancelled_by_signal() -> Iterator[Callable[[], bool]]:
    """While a run lasts, Ctrl-C or SIGTERM cancels it: ansible-runner asks the yielded
    callback between reads of the playbook's output, and once a signal came, the callback
    kills the playbook and its workers (pexpect starts ansible-playbook in a session of its
    own, so the terminal's Ctrl-C never reaches it). Signals can only be caught in the main
    thread; elsewhere the callback never cancels."""
    stop = threading.Event()

    def cancelled() -> bool:
        if stop.is_set():
            for pid in _playbook_processes():
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return stop.is_set()

    if threading.current_thread() is not threading.main_thread():
        yield cancelled
        return

    def interrupt(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield cancelled
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(env: str, inventory: Path, hosts: int, playbook: str = "site.yml",
        progress: Progress = silent, limit: str | None = None,
        settings: dict[str, str] | None = None, forks: int | None = None,
        check: bool = False, nodes: Sequence[ExecutionNode] | None = None) -> ConvergeResult:
    """Run one playbook against the inventory of ``hosts`` hosts (forks sized to them), or
    the ``limit`` pattern of it; the last 20 runs' artifacts stay under .lab/<env>/ansible.
    ``settings``/``forks`` replace the project's Ansible settings (the benchmark compares).
    ``check`` runs it in check mode with diffs (``--check --diff``): nothing is applied, and
    the result's changed_tasks are what would change, each with its diff.

    The hosts of the municipalities an execution node serves (``nodes``; by default the
    environment's, none with ``settings``) are converged from that node, each node's shard at
    the same time as this machine's (:mod:`fellesdrift.converge.nodes`); the shards' events
    make one result, as one run's would (:func:`merge`)."""
    if nodes is None:
        nodes = environment.get(env).execution_nodes if settings is None else ()
    shards = remote.split(remote.inventory_groups(inventory, limit), nodes) if nodes else []
    if not any(shard.node for shard in shards):
        return _run_here(env, inventory, hosts, playbook, progress, limit, settings, forks,
                         check)
    ident = uuid.uuid4().hex
    data_dir = lab_dir(env) / "ansible"
    data_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, ConvergeResult] = {}
    procs: list[subprocess.Popen[bytes]] = []

    def on_node(shard: remote.Shard) -> None:
        assert shard.node is not None
        events = _Events(progress)
        try:
            out = remote.run_remote(env, shard.node, inventory, ROOT, playbook, data_dir,
                                    f"{ident}.{shard.node.name}", shard.hosts, events,
                                    forks or max(5, min(50, len(shard.hosts))),
                                    "--check --diff" if check else None, procs=procs)
        except Exception as e:  # the node's own trouble fails its shard, never the others
            out = remote.Outcome("error", 1, data_dir / "artifacts" / f"{ident}."
                                 f"{shard.node.name}", f"execution node {shard.node.name} "
                                 f"({shard.node.destination}, {shard.node.at}): {e}")
        if out.problem:
            events.failures.append(out.problem)
        for host in shard.hosts if out.problem else ():
            progress(PHASE, host, "unreachable", out.problem)
        results[shard.name] = _result(events, out.status, out.rc, out.artifacts, check)

    threads = [threading.Thread(target=on_node, args=(shard,), daemon=True)
               for shard in shards if shard.node]
    for thread in threads:
        thread.start()
    try:
        here = next((shard for shard in shards if shard.node is None), None)
        if here is not None:
            results[here.name] = _run_here(env, inventory, len(here.hosts), playbook, progress,
                                           ",".join(here.hosts), settings, forks, check,
                                           ident)
        for thread in threads:
            thread.join()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
    return merge([results[shard.name] for shard in shards])


def merge(parts: Sequence[ConvergeResult]) -> ConvergeResult:
    """The shards' results as one run's: every host's recap, the changed tasks and failures in
    shard order, the first failed status and rc; its artifacts are the first shard's, and
    ``shards`` names every shard's."""
    worst = next((p for p in parts if p.status != "successful" or p.rc), parts[0])
    recap: dict[str, HostRecap] = {}
    for part in parts:
        recap.update(part.recap)
    return ConvergeResult(
        status=worst.status, rc=worst.rc, artifacts=parts[0].artifacts, recap=recap,
        changed_tasks=[t for p in parts for t in p.changed_tasks],
        failures=[f for p in parts for f in p.failures], check=any(p.check for p in parts),
        may_change=[t for p in parts for t in p.may_change], shards=[p.artifacts for p in parts])


def _result(events: _Events, status: str, rc: int, artifacts: Path,
            check: bool) -> ConvergeResult:
    if rc and not events.failures:
        stdout = artifacts / "stdout"
        tail = stdout.read_text(errors="replace") if stdout.exists() else ""
        events.failures.append(f"ansible-playbook exited {rc}: {tail.strip()[-500:]}")
    return ConvergeResult(status=status, rc=rc, artifacts=artifacts, recap=events.recap,
                          changed_tasks=events.changed, failures=events.failures, check=check,
                          may_change=events.may_change, shards=[artifacts])


def _run_here(env: str, inventory: Path, hosts: int, playbook: str, progress: Progress,
              limit: str | None, settings: dict[str, str] | None, forks: int | None,
              check: bool, ident: str | None = None) -> ConvergeResult:
    """Run the playbook from this machine (see :func:`run`)."""
    data_dir = lab_dir(env) / "ansible"
    data_dir.mkdir(parents=True, exist_ok=True)
    # ansible-runner never overwrites the inputs it dumped into env/ on an earlier run.
    shutil.rmtree(data_dir / "env", ignore_errors=True)
    events = _Events(progress)
    # ansible-runner looks up ansible-playbook on this process's PATH: use the venv's.
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([venv_bin, os.environ.get("PATH", "")])
    # SSH connections are shared within a run, never across runs: a host made again at the same
    # address must not be reached through a master connection to its predecessor.
    with tempfile.TemporaryDirectory(prefix="fd-ssh-") as control_dir:
        # The roles' secrets are !vault values in the inventory; ansible.cfg's vault password
        # script prints the centre's passphrase. ansible-runner writes the run's environment
        # into its artifacts (`command`): the passphrase never travels in it
        # (credentials.passphrase_service).
        runner = ansible_runner.interface.init_runner(
            private_data_dir=str(data_dir),
            project_dir=str(ROOT),
            playbook=str(PLAYBOOKS / playbook),
            inventory=str(inventory),
            envvars=settings if settings is not None else {
                "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                # Mitogen: one interpreter per host for the whole run, modules sent over it.
                "ANSIBLE_STRATEGY_PLUGINS": str(Path(ansible_mitogen.__file__).parent / "plugins"
                                                / "strategy"),
                "ANSIBLE_STRATEGY": "mitogen_free",
                "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(lab_dir(env) / "facts"),
                "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_SSH_CONTROL_PATH_DIR": control_dir,
            },
            forks=forks or max(5, min(50, hosts)),
            limit=limit,
            cmdline="--check --diff" if check else None,
            quiet=True,
            event_handler=events,
            rotate_artifacts=20,
            ident=ident,
        )
        with credentials.passphrase_service() as (withheld, channel), \
                _cancelled_by_signal() as cancelled:
            for name in withheld:
                runner.config.env.pop(name, None)
            runner.config.env.update(channel)
            runner.cancel_callback = cancelled
            runner.run()
        if runner.canceled:
            raise KeyboardInterrupt(f"converge cancelled; ansible-playbook stopped "
                                    f"(artifacts: {runner.config.artifact_dir})")
        return _result(events, runner.status, runner.rc or 0,
                       Path(runner.config.artifact_dir), check)
