"""What `up` does before and after the pipeline for issue 12: the plan file's check, the
window gate and the audit record. The CLI calls :func:`planned` first, then :func:`start`, and
passes :meth:`Apply.done` to :func:`fellesdrift.pipeline.up`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fellesdrift import checkout
from fellesdrift.change import audit, check, gate, invoices, planfile, routers
from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import Inventory
from fellesdrift.pipeline import job as pipeline
from fellesdrift.report import invoice as invoicing


def planned(path: Path, env: str, paths: list[Path], selected: bool) -> planfile.Plan:
    """The plan of `up --plan PATH`, refused (:class:`planfile.PlanFileError`) before anything
    is read further when an input changed since, or when a selection is given as well."""
    plan = planfile.load(path)
    if selected:
        raise planfile.PlanFileError(f"{path} carries its selection; leave out -m and "
                                     "--only-changed with --plan")
    planfile.check(path, plan, env, inventory.files(paths))
    return plan


def targets(plan: planfile.Plan) -> list[str]:
    """The plan's selection as `-m` would name it (`core` for the centre's stack)."""
    return (["core"] if plan.core else []) + plan.municipalities


@dataclass
class Apply:
    env: str
    selection: pipeline.Selection
    digest: str
    municipalities: dict[str, str]
    emergency: str | None
    plan: planfile.Plan | None
    #: Each municipality's monthly invoice as this apply leaves it (the next plan's "before").
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: After `up --plan`: each stack whose applied changes differ from the plan's.
    unplanned: list[str] = field(default_factory=list)

    def done(self, outcome: pipeline.Outcome | None, error: BaseException | None) -> None:
        """The pipeline's hook: compare with the plan, then one audit record per apply (a
        preflight refusal made nothing and is no apply)."""
        if isinstance(error, pipeline.PreflightError):
            return
        if self.plan is not None and outcome is not None and not any(
                s.error for s in outcome.stacks):
            self.unplanned = planfile.unplanned(
                self.plan, {s.stack: s.changes for s in outcome.stacks})
            if outcome.converge is not None:
                self.unplanned += [f"converge {d}" for d in check.unplanned(
                    self.plan.converge, outcome.converge.changed_tasks)]
            self.unplanned += routers.unplanned(self.plan.network, outcome.network)
        record = audit.entry(
            self.env, "up", digest=self.digest, core=self.selection.core,
            municipalities=self.municipalities, destroyed=list(self.selection.destroy),
            outcome=outcome, error=None if error is None else f"{type(error).__name__}: {error}",
            emergency=self.emergency, planned=self.plan is not None)
        record["invoices"] = self.invoices
        if self.unplanned:
            record |= {"outcome": "failed: not as planned", "unplanned": self.unplanned}
        audit.append(self.env, record)


def start(model: Inventory, env: str, selection: pipeline.Selection, paths: list[Path],
          plan: planfile.Plan | None, emergency: str | None, at: datetime | None = None
          ) -> Apply:
    """Refuse (:class:`gate.GateError`) a change outside its window unless ``emergency``
    names a reason; else what the audit record of this apply needs."""
    if emergency is not None and not emergency.strip():
        raise gate.GateError("--emergency needs a reason, e.g. --emergency \"INC-1234: core "
                             "router down\"")
    held = gate.held(model, env, selection.municipalities, at or datetime.now(UTC))
    if held and emergency is None:
        raise gate.refuse(held)
    digest = plan.digest if plan else checkout.digest(checkout.inputs(inventory.files(paths)))
    return Apply(env, selection, digest,
                 {s: gate.inputs(model.centre, model.municipality(s))
                  for s in selection.municipalities}, emergency, plan,
                 invoices={s: invoicing.invoice(model.centre, model.municipality(s)).as_dict()
                           for s in selection.municipalities})


def invoice_deltas(model: Inventory, env: str, slugs: list[str]) -> list[invoices.Delta]:
    """The plan's invoice part: each municipality's invoice as last applied and as planned."""
    before = audit.invoices(env)
    return [invoices.delta(before.get(s), invoicing.invoice(model.centre, model.municipality(s)))
            for s in slugs]


def record_down(env: str, stacks: list[str], failed: list[str]) -> None:
    """`down`: the lab is gone, so the next `up` is a first deployment again."""
    audit.append(env, {**audit.entry(env, "down", digest=None, core=True, municipalities={},
                                     destroyed=stacks, outcome=None, error=None,
                                     emergency=None, planned=False),
                       "outcome": "ok" if not failed else f"failed for {', '.join(failed)}"})
