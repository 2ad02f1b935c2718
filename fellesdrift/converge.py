"""Converge: apply the playbooks to the provisioned hosts through ansible-runner.

Results are judged from ansible-runner's events, never from its text output.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from .paths import PLAYBOOKS, ROOT, lab_dir


@dataclass(frozen=True)
class ChangedTask:
    host: str
    role: str
    task: str
    handler: bool

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

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not any(r.failed or r.unreachable for r in self.recap.values())

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.recap.values())


class _Events:
    """Collects what a run did, from its events."""

    def __init__(self, progress: Callable[[str, str], Any] | None) -> None:
        self.progress = progress
        self.handlers: set[str] = set()
        self.changed: list[ChangedTask] = []
        self.failures: list[str] = []
        self.recap: dict[str, HostRecap] = {}

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind == "playbook_on_handler_task_start":
            self.handlers.add(data.get("task_uuid", ""))
        elif kind in ("runner_on_start",) and self.progress:
            self.progress(data.get("host", ""), data.get("task", ""))
        elif kind == "runner_on_ok" and data.get("res", {}).get("changed"):
            self.changed.append(ChangedTask(data.get("host", ""), data.get("role", ""),
                                            data.get("task", ""),
                                            data.get("task_uuid") in self.handlers))
        elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get(
                "ignore_errors"):
            msg = data.get("res", {}).get("msg", "")
            self.failures.append(f"{data.get('host')}: {data.get('task')}: {msg}".strip())
        elif kind == "playbook_on_stats":
            for host in set().union(*(data.get(k) or {} for k in
                                      ("ok", "changed", "failures", "dark", "skipped"))):
                self.recap[host] = HostRecap(
                    ok=(data.get("ok") or {}).get(host, 0),
                    changed=(data.get("changed") or {}).get(host, 0),
                    failed=(data.get("failures") or {}).get(host, 0),
                    unreachable=(data.get("dark") or {}).get(host, 0),
                    skipped=(data.get("skipped") or {}).get(host, 0))
        return True


def run(env: str, inventory: Path, hosts: int, playbook: str = "site.yml",
        progress: Callable[[str, str], Any] | None = None) -> ConvergeResult:
    """Run one playbook against the inventory of ``hosts`` hosts (forks sized to them);
    artifacts stay under .lab/<env>/ansible."""
    data_dir = lab_dir(env) / "ansible"
    data_dir.mkdir(parents=True, exist_ok=True)
    # ansible-runner never overwrites the inputs it dumped into env/ on an earlier run.
    shutil.rmtree(data_dir / "env", ignore_errors=True)
    events = _Events(progress)
    # ansible-runner looks up ansible-playbook on this process's PATH: use the venv's.
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([venv_bin, os.environ.get("PATH", "")])
    runner = ansible_runner.run(
        private_data_dir=str(data_dir),
        project_dir=str(ROOT),
        playbook=str(PLAYBOOKS / playbook),
        inventory=str(inventory),
        envvars={
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(lab_dir(env) / "facts"),
            "ANSIBLE_FORCE_COLOR": "0",
            # SSH connections are shared within a run, never across runs: a host made again at
            # the same address must not be reached through a master connection to its
            # predecessor.
            "ANSIBLE_SSH_CONTROL_PATH_DIR": tempfile.mkdtemp(prefix="fd-ssh-"),
        },
        forks=max(5, min(50, hosts)),
        quiet=True,
        event_handler=events,
        rotate_artifacts=20,
    )
    if runner.rc and not events.failures:
        tail = (Path(runner.config.artifact_dir) / "stdout").read_text(errors="replace")
        events.failures.append(f"ansible-playbook exited {runner.rc}: {tail.strip()[-500:]}")
    return ConvergeResult(
        status=runner.status, rc=runner.rc or 0,
        artifacts=Path(runner.config.artifact_dir),
        recap=events.recap, changed_tasks=events.changed, failures=events.failures)
