"""Provision: one Pulumi stack per municipality, `<env>.<slug>`, through the Automation API.

The stacks' outputs are the only way hosts become known to the phases after this one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from . import engine
from .paths import ROOT


@dataclass(frozen=True)
class LabSettings:
    """What the lab driver needs from the machine it runs on."""

    env: str
    image: str
    authorized_key: str


@dataclass
class StackResult:
    stack: str
    changes: dict[str, int]
    hosts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(n for op, n in self.changes.items() if op != "same")


def stack_name(env: str, slug: str) -> str:
    return f"{env}.{slug}"


def open_stack(env: str, slug: str) -> auto.Stack:
    opts = auto.LocalWorkspaceOptions(
        work_dir=str(ROOT),
        env_vars=engine.env(),
        secrets_provider="passphrase",
        pulumi_command=auto.PulumiCommand(root=str(engine.bin_dir().parent)),
    )
    return auto.create_or_select_stack(stack_name(env, slug), work_dir=str(ROOT), opts=opts)


def _configure(stack: auto.Stack, slug: str, inventory: Path, lab: LabSettings) -> None:
    stack.set_all_config({
        "fellesdrift:env": auto.ConfigValue(lab.env),
        "fellesdrift:municipality": auto.ConfigValue(slug),
        "fellesdrift:inventory": auto.ConfigValue(str(inventory.resolve())),
        "fellesdrift:image": auto.ConfigValue(lab.image),
        "fellesdrift:authorizedKey": auto.ConfigValue(lab.authorized_key),
    })


def _hosts(outputs: dict[str, auto.OutputValue]) -> list[dict[str, Any]]:
    hosts = outputs.get("hosts")
    return list(hosts.value) if hosts is not None else []


def up(slug: str, inventory: Path, lab: LabSettings,
       on_output: Callable[[str], Any] | None = None) -> StackResult:
    """Apply one municipality's stack and return what changed and its hosts."""
    stack = open_stack(lab.env, slug)
    _configure(stack, slug, inventory, lab)
    result = stack.up(on_output=on_output, color="never", suppress_progress=True)
    changes = {str(op): n for op, n in (result.summary.resource_changes or {}).items()}
    return StackResult(stack.name, changes, _hosts(dict(result.outputs)))


def destroy(env: str, slug: str, on_output: Callable[[str], Any] | None = None) -> None:
    stack = open_stack(env, slug)
    stack.destroy(on_output=on_output, color="never", suppress_progress=True, remove=True)


def stacks(env: str) -> list[str]:
    """The municipality slugs that have a stack in this environment."""
    ws = auto.LocalWorkspace(
        work_dir=str(ROOT), env_vars=engine.env(),
        pulumi_command=auto.PulumiCommand(root=str(engine.bin_dir().parent)))
    prefix = f"{env}."
    return sorted(s.name.removeprefix(prefix) for s in ws.list_stacks()
                  if s.name.startswith(prefix))
