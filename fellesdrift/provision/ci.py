"""CI fan-out: one job per changed stack, generated from `fellesdrift plan --only-changed --json`.

The GitLab pipeline runs a child pipeline made here (the core's job first, then one job per
changed municipality, in parallel); GitHub Actions runs the same jobs as a matrix. Each job
acts on one stack (`-m SLUG`, or `-m core`), so a change to one municipality costs one job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fellesdrift.errors import FellesdriftError
from fellesdrift.provision.stacks import CORE, stack_name

#: The image-less shell runner that hosts the lab (rootful Podman on Debian).
RUNNER_TAGS = ["podman"]


class PlanError(FellesdriftError, ValueError):
    """The plan JSON is not what `fellesdrift plan --json` prints."""


@dataclass(frozen=True)
class Targets:
    """What a plan touches: the core's stack or not, and the municipalities' stacks."""

    core: bool
    municipalities: tuple[str, ...]

    @property
    def all(self) -> list[str]:
        return ([CORE] if self.core else []) + list(self.municipalities)


def targets(plan: Any, env: str) -> Targets:
    """The stacks of ``env`` in a plan, as targets (``core`` and municipality slugs)."""
    if not isinstance(plan, dict) or not isinstance(plan.get("stacks"), list):
        raise PlanError("expected the output of `fellesdrift plan --json`: a mapping with a "
                        "list `stacks`")
    found: list[str] = []
    for i, entry in enumerate(plan["stacks"], 1):
        name = entry.get("stack") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.startswith(f"{env}."):
            raise PlanError(f"stacks[{i}]: expected a stack named {stack_name(env, 'SLUG')}, "
                            f"got {name!r}")
        found.append(name.removeprefix(f"{env}."))
    return Targets(CORE in found, tuple(sorted(set(found) - {CORE})))


def _job(command: str, env: str, target: str, artifact: str, needs: list[str]) -> dict[str, Any]:
    return {
        "stage": "core" if target == CORE else "municipalities",
        "tags": list(RUNNER_TAGS),
        # One job at a time per stack across pipelines; different stacks run in parallel.
        "resource_group": stack_name(env, target),
        "needs": needs,
        "script": ["make setup",
                   f".venv/bin/fellesdrift {command} -m {target} --env {env} --json "
                   f"> {artifact}"],
        "artifacts": {"when": "always", "paths": [artifact]},
    }


def gitlab_child(plan: Any, env: str, command: str = "up") -> dict[str, Any]:
    """The child pipeline: ``command`` (``plan`` or ``up``) once per target of the plan, the
    core's job before the municipalities' (which wait for it only when it exists)."""
    if command not in ("plan", "up"):
        raise PlanError(f"command {command!r}: expected plan or up")
    t = targets(plan, env)
    pipeline: dict[str, Any] = {"stages": ["core", "municipalities"]}
    core_job = f"{command}:{CORE}"
    for target in t.all:
        needs = [core_job] if t.core and target != CORE else []
        pipeline[f"{command}:{target}"] = _job(command, env, target,
                                               f"{command}-{target}.json", needs)
    if not t.all:
        # A pipeline needs at least one job: say that nothing changed.
        pipeline["nothing-changed"] = {"stage": "core", "tags": list(RUNNER_TAGS),
                                       "script": ["echo 'no stack changed: nothing to do'"]}
    return pipeline


def github_outputs(plan: Any, env: str) -> dict[str, str]:
    """The GitHub Actions step outputs (``key=value`` lines for $GITHUB_OUTPUT): ``core``
    (``true``/``false``) and ``slugs``, the changed municipalities as a JSON list the
    workflow's matrix reads with ``fromJSON``."""
    t = targets(plan, env)
    return {"core": "true" if t.core else "false", "slugs": json.dumps(list(t.municipalities))}
