"""A plan kept in a file: what `plan --out FILE` previewed, with a digest of every input.

The inputs are the inventory files and everything of the checkout that decides what an apply
does (:func:`fellesdrift.checkout.inputs`). `up --plan FILE` recomputes them before it does
anything and refuses, naming each input that differs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fellesdrift.checkout import digest, inputs
from fellesdrift.errors import RefusedError
from fellesdrift.paths import ROOT

FILE_VERSION = 1


class PlanFileError(RefusedError, ValueError):
    """A plan file that cannot be read, or that no longer matches its inputs."""


def differences(planned: dict[str, str], now: dict[str, str]) -> list[str]:
    """Each input that differs, e.g. 'inventories/tokke.yaml changed'."""
    out = []
    for name in sorted(set(planned) | set(now)):
        if name not in now:
            out.append(f"{name} is gone")
        elif name not in planned:
            out.append(f"{name} is new")
        elif planned[name] != now[name]:
            out.append(f"{name} changed")
    return out


@dataclass(frozen=True)
class Plan:
    env: str
    core: bool
    municipalities: list[str]
    inputs: dict[str, str]
    created: str
    stacks: list[dict[str, Any]] = field(default_factory=list)
    #: Each municipality's invoice before and after (:meth:`.invoices.Delta.as_dict`).
    invoices: list[dict[str, Any]] = field(default_factory=list)
    #: The converge check (:meth:`.check.ConvergePlan.as_dict`); None in a plan without one.
    converge: dict[str, Any] | None = None
    #: Per router the commands planned (:meth:`.routers.RouterPlan.as_dict`).
    network: list[dict[str, Any]] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return digest(self.inputs)

    def as_dict(self) -> dict[str, Any]:
        return {"version": FILE_VERSION, "env": self.env, "created": self.created,
                "digest": self.digest,
                "selection": {"core": self.core, "municipalities": self.municipalities},
                "stacks": self.stacks, "invoices": self.invoices, "converge": self.converge,
                "network": self.network, "inputs": self.inputs}


def _moved(changes: dict[str, int]) -> dict[str, int]:
    return {op: n for op, n in sorted(changes.items()) if op != "same" and n}


def _words(changes: dict[str, int]) -> str:
    return ", ".join(f"{n} to {op}" for op, n in changes.items()) or "no changes"


def unplanned(plan: Plan, applied: dict[str, dict[str, int]]) -> list[str]:
    """Each stack whose applied changes differ from the plan's preview (``applied``: stack →
    Pulumi's change counts), e.g. 'lab.tokke: planned 1 to update, applied 2 to create'."""
    planned = {str(s["stack"]): _moved(s.get("changes") or {}) for s in plan.stacks}
    out = []
    for stack in sorted(set(planned) | set(applied)):
        want, got = planned.get(stack, {}), _moved(applied.get(stack, {}))
        if want != got:
            out.append(f"{stack}: planned {_words(want)}, applied {_words(got)}")
    return out


def write(path: Path, plan: Plan) -> None:
    path.write_text(json.dumps(plan.as_dict(), indent=2) + "\n", encoding="utf-8")


def load(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != FILE_VERSION:
            raise ValueError(f"version {data.get('version')!r}, this fellesdrift reads "
                             f"{FILE_VERSION}")
        plan = Plan(env=str(data["env"]), core=bool(data["selection"]["core"]),
                    municipalities=[str(s) for s in data["selection"]["municipalities"]],
                    inputs={str(k): str(v) for k, v in data["inputs"].items()},
                    created=str(data["created"]), stacks=list(data.get("stacks", [])),
                    invoices=list(data.get("invoices", [])),
                    converge=data.get("converge"), network=list(data.get("network") or []))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise PlanFileError(f"{path}: not a plan written by `fellesdrift plan --out` ({e})"
                            ) from None
    if plan.digest != data.get("digest"):
        raise PlanFileError(f"{path}: its digest does not match its inputs (the file was "
                            "edited); plan again")
    return plan


def check(path: Path, plan: Plan, env: str, inventory_files: Iterable[Path],
          root: Path = ROOT) -> None:
    """Refuse (:class:`PlanFileError`) a plan of another environment, or one whose inputs
    changed since it was made, naming each input that differs."""
    if plan.env != env:
        raise PlanFileError(f"{path} is a plan of environment {plan.env!r}, not {env!r}")
    changed = differences(plan.inputs, inputs(inventory_files, root))
    if changed:
        raise PlanFileError(f"{path} no longer matches its inputs ({len(changed)} differ since "
                            f"{plan.created}): " + "; ".join(changed)
                            + ". Plan again and review the new plan")
