"""``fellesdrift plan``: what `up` would change, stack by stack; changes nothing.

The CLI calls :func:`register` to add the command to its app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fellesdrift.change import apply as changes
from fellesdrift.change import planfile
from fellesdrift.cli.common import (
    BaseOpt,
    EnvOpt,
    JsonOpt,
    MunicipalityOpt,
    OnlyChangedOpt,
    PathsArg,
    WorkersOpt,
    open_model,
    stack_lines,
)
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
         as_json: JsonOpt = False) -> None:
    """Preview what `up` would change, stack by stack (concurrently); changes nothing."""
    environ, model = open_model(env, paths)
    selection = pipeline.selection(model, env, municipality or [], only_changed, base, [],
                                   mocks=environ.mocks)
    settings = pipeline.stack_settings(environ, model, say=lambda _: None, build=False)
    console.rule("[bold]plan")
    results = pipeline.provision_all(selection, environ.folder, settings,
                                     say=lambda line: console.print(f"  {line}"),
                                     workers=workers, preview=True)
    ok = stack_lines(results)
    deltas = changes.invoice_deltas(model, env, selection.municipalities)
    for delta in deltas:
        console.print(f"  {delta.summary()}", markup=False, soft_wrap=True)
        for line in delta.lines:
            console.print(f"    {line}", markup=False, soft_wrap=True)
    if plan_out is not None and ok:
        planfile.write(plan_out, planfile.Plan(
            env, selection.core, selection.municipalities,
            planfile.inputs(inventory.files(list(environ.inventory))), statuses.now(),
            [{"stack": r.stack, "changes": r.changes} for r in results],
            [d.as_dict() for d in deltas]))
        console.print(f"  plan kept in {plan_out}: apply it with `fellesdrift up --plan "
                      f"{plan_out}`", markup=False, soft_wrap=True)
    if as_json:
        out.print_json(data={"ok": ok, "stacks": [
            {"stack": r.stack, "changes": r.changes, "changed": r.changed, "error": r.error}
            | ({"declared": [{"type": t, "name": n} for t, n in r.declared]}
               if r.declared else {})
            for r in results], "invoices": [d.as_dict() for d in deltas]})
    if not ok:
        raise typer.Exit(1)
