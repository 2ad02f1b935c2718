"""``fellesdrift plan``: what `up` would change, part by part (provision, converge, network,
invoice); changes nothing (:mod:`fellesdrift.change.review`).

The CLI calls :func:`register` to add the command to its app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from fellesdrift import checkout
from fellesdrift.change import planfile, review
from fellesdrift.cli.common import (
    BaseOpt,
    EnvOpt,
    JsonOpt,
    MunicipalityOpt,
    OnlyChangedOpt,
    PathsArg,
    WorkersOpt,
    open_model,
)
from fellesdrift.files import write_atomic
from fellesdrift.inventory import load as inventory
from fellesdrift.pipeline import job as pipeline
from fellesdrift.report import status as statuses

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)


def plan(paths: PathsArg = None, env: EnvOpt = "lab", municipality: MunicipalityOpt = None,
         only_changed: OnlyChangedOpt = False, base: BaseOpt = "HEAD", workers: WorkersOpt = 3,
         plan_out: Annotated[Path | None, typer.Option(
             "--out", help="Keep the plan in this file with a digest of every input, for "
             "`up --plan FILE` (docs/changes.md).", dir_okay=False)] = None,
         markdown_out: Annotated[Path | None, typer.Option(
             "--markdown", help="Also write the plan as Markdown for a change request's "
             "comment to this file.", dir_okay=False)] = None,
         output: Annotated[Literal["terminal", "markdown"], typer.Option(
             "--format", help="How to print the plan: for a terminal, or as Markdown.")
         ] = "terminal",
         as_json: JsonOpt = False) -> None:
    """Show what `up` would change, part by part: Pulumi's preview per stack and resource;
    Ansible's check mode (--check --diff) on the hosts the change touches; per router the
    commands that would be pushed; each municipality's invoice before and after. Changes
    nothing."""
    environ, model = open_model(env, paths)
    selection = pipeline.selection(model, env, municipality or [], only_changed, base, [],
                                   mocks=environ.mocks)
    console.rule("[bold]plan")
    found = review.gather(model, environ, selection, workers,
                          say=lambda line: console.print(f"  {line}", markup=False,
                                                         soft_wrap=True))
    if plan_out is not None and found.ok:
        planfile.write(plan_out, planfile.Plan(
            env, selection.core, selection.municipalities,
            checkout.inputs(inventory.files(list(environ.inventory))), statuses.now(),
            [{"stack": r.stack, "changes": r.changes} for r in found.stacks],
            [d.as_dict() for d in found.invoices], found.converge.as_dict(),
            [r.as_dict() for r in found.network]))
        console.print(f"  plan kept in {plan_out}: apply it with `fellesdrift up --plan "
                      f"{plan_out}`", markup=False, soft_wrap=True)
    if markdown_out is not None:
        write_atomic(markdown_out, review.markdown(found))
    if as_json:
        out.print_json(data=found.as_dict())
    elif output == "markdown":
        out.print(review.markdown(found), markup=False, highlight=False, soft_wrap=True,
                  end="")
    else:
        for line in review.terminal(found):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    if not found.ok:
        raise typer.Exit(1)
