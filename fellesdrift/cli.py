"""The `fellesdrift` command."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from . import doctor, inventory, lab, pipeline, provision, scaffold, topology
from . import migrate as migration
from . import schema as schemas
from .engine import EngineError
from .model import SCHEMA_VERSION, Inventory
from .paths import INVENTORIES
from .problems import Problem

app = typer.Typer(help="Infrastructure as code for an IT operations centre shared by "
                  "municipalities.", no_args_is_help=True, add_completion=False)
console = Console(stderr=True, highlight=False)
out = Console(highlight=False)

EnvOpt = Annotated[str, typer.Option("--env", help="Lab environment name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable result.")]
PathsArg = Annotated[list[Path] | None, typer.Argument(
    help="Inventory files or folders (default: inventories/).", show_default=False)]


def _load(paths: list[Path] | None) -> Inventory:
    return inventory.load(paths or [INVENTORIES])


def _inventories() -> Path:
    """inventories/ of the checkout, relative to the working folder when inside it (so problems
    read inventories/seljord.yaml:3:7, not an absolute path)."""
    try:
        return INVENTORIES.relative_to(Path.cwd())
    except ValueError:
        return INVENTORIES


def _problems(problems: list[Problem], what: str) -> None:
    for p in problems:
        console.print(str(p), markup=False, soft_wrap=True)
    files = len({p.file for p in problems})
    console.print(f"{len(problems)} problem(s) in {files} file(s); {what}.")


@app.command()
def validate(paths: PathsArg = None, as_json: JsonOpt = False) -> None:
    """Load and validate inventory files (exit 0 with a summary, or 1 with every problem).

    Each problem reads file:line:col: field: what is wrong and what is right \\[rule]; every
    problem of every file is listed in one run. --json gives the same for CI annotations.
    """
    started = time.perf_counter()
    result = inventory.check(paths or [_inventories()])
    model = result.inventory
    municipalities = model.municipalities if model else []
    summary = {
        "ok": model is not None,
        "files": len(result.files),
        "municipalities": len(municipalities),
        "sites": sum(len(m.sites) for m in municipalities),
        "seconds": round(time.perf_counter() - started, 3),
        "problems": [p.as_dict() | {"text": str(p)} for p in result.problems],
    }
    if as_json:
        out.print_json(data=summary)
    elif model is not None:
        out.print(f"ok: {summary['municipalities']} municipalities, {summary['sites']} sites in "
                  f"{summary['files']} files ({summary['seconds']} s)", soft_wrap=True)
    else:
        _problems(result.problems, "fix them and run validate again")
    if model is None:
        raise typer.Exit(1)


@app.command("new")
def new(
    slug: Annotated[str, typer.Argument(help="The municipality's slug and file name: lower-case "
                                         "ASCII, e.g. kragero for Kragerø.")],
    code: Annotated[str, typer.Option("--code", help='The official municipality number, e.g. '
                                      '"4024".')],
    name: Annotated[str, typer.Option("--name", help="The municipality's name, e.g. Hjartdal.")],
    site: Annotated[list[str] | None, typer.Option(
        "--site", help="A site of this kind (repeat for more): " + ", ".join(scaffold.KINDS)
        + ". Default: one town_hall.")] = None,
    provider: Annotated[str | None, typer.Option(
        "--provider", help="Provider id of the sites' links (default: the centre's first).")
    ] = None,
    service: Annotated[list[str] | None, typer.Option(
        "--service", help="Subscribe to a service: ID:TIER, e.g. drift:standard (repeat for "
        "more).")] = None,
    email: Annotated[str | None, typer.Option(
        "--email", help="The IT contact's e-mail (default: postmottak@<slug>.kommune.no).")
    ] = None,
    pool: Annotated[str | None, typer.Option(
        "--pool", help="Allocate the site LANs from this site pool of the address plan (default: "
        "the first with room).")] = None,
    folder: Annotated[Path | None, typer.Option(
        "--dir", help="The inventory folder (default: inventories/).", show_default=False)
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the file; write nothing.")
                       ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write the inventory file of a joining municipality; the join flow starts here.

    The file validates as written: its site LANs come from the address plan's free space and its
    VLANs are the first free ones on the provider's handoff. Defaults to confirm are marked
    `check` in the file.
    """
    subscriptions = []
    for item in service or []:
        service_id, sep, tier = item.partition(":")
        if not sep or not service_id or not tier:
            raise typer.BadParameter(f"{item!r}: write ID:TIER, e.g. drift:standard",
                                     param_hint="--service")
        subscriptions.append((service_id, tier))
    try:
        result = scaffold.plan(folder or _inventories(), slug, code, name, site or ["town_hall"],
                               provider=provider, email=email, services=subscriptions,
                               pool=pool)
    except scaffold.ScaffoldError as e:
        if not as_json:
            raise
        out.print_json(data={"ok": False, "problems": [p.as_dict() for p in e.problems]})
        raise typer.Exit(1) from None
    if not dry_run:
        scaffold.write(result)
    if as_json:
        out.print_json(data={"ok": True, "written": not dry_run, **result.summary()})
    elif dry_run:
        out.print(result.text, markup=False, highlight=False, end="")
    else:
        out.print(f"wrote {result.file}: {len(result.sites)} site(s), "
                  + ", ".join(f"{s.id} {s.lan_prefix} vlan {s.vlan}" for s in result.sites)
                  + ". Confirm the values marked `check`, then run `fellesdrift validate`.",
                  soft_wrap=True, markup=False)


@app.command("schema")
def schema_cmd(
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Where to write the schema files (default: schema/).", show_default=False)
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 when the files "
                                        "differ from the model.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Generate the JSON Schema of inventory files from the model, for editors.

    Every inventory file's yaml-language-server modeline points at these files.
    """
    directory = out_dir or schemas.SCHEMA_DIR
    changed = schemas.stale(directory) if check else schemas.write(directory)
    if as_json:
        out.print_json(data={"ok": not (check and changed), "directory": str(directory),
                             "stale" if check else "written": [str(p) for p in changed]})
    elif check and changed:
        console.print("stale: " + ", ".join(str(p) for p in changed)
                      + "; run `fellesdrift schema`", soft_wrap=True, markup=False)
    else:
        out.print(("wrote " + ", ".join(str(p) for p in changed)) if changed
                  else f"{directory}: up to date", soft_wrap=True, markup=False)
    if check and changed:
        raise typer.Exit(1)


inventory_app = typer.Typer(help="Maintain inventory files.", no_args_is_help=True)
app.add_typer(inventory_app, name="inventory")


@inventory_app.command("migrate")
def migrate_cmd(
    paths: PathsArg = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 when a file "
                                        "needs migrating.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Upgrade inventory files from an older schema_version, keeping comments and layout.

    Fields the old version lacked are written as TODO placeholders; `fellesdrift validate`
    lists each one, at its line, until it is filled in. Either every file migrates or none.
    """
    try:
        results = migration.migrate(paths or [_inventories()], write=not check)
    except migration.MigrationError as e:
        if not as_json:
            raise
        out.print_json(data={"ok": False, "problems": [p.as_dict() for p in e.problems]})
        raise typer.Exit(1) from None
    pending = [r for r in results if r.changed]
    if as_json:
        out.print_json(data={"ok": not (check and pending), "written": not check, "files": [
            {"file": str(r.file), "from": r.before, "to": r.after, "changed": r.changed,
             "placeholders": r.placeholders} for r in results]})
    else:
        for r in pending:
            verb = "needs migrating" if check else "migrated"
            out.print(f"{r.file}: {verb}, schema_version {r.before} → {r.after}"
                      + (f", {r.placeholders} placeholder(s) to fill" if r.placeholders else ""),
                      soft_wrap=True, markup=False)
        if not pending:
            out.print(f"all {len(results)} files are at schema_version {SCHEMA_VERSION}")
        elif not check and any(r.placeholders for r in pending):
            out.print("next: `fellesdrift validate` lists every placeholder, at its line, with "
                      "what belongs there", soft_wrap=True)
    if check and pending:
        raise typer.Exit(1)


MunicipalityOpt = Annotated[list[str] | None, typer.Option(
    "--municipality", "-m", help="Only this municipality's stack (repeatable).")]
OnlyChangedOpt = Annotated[bool, typer.Option(
    "--only-changed", help="Only the stacks whose inventory files (or code) changed in git "
    "since --base; a change to the centre file or the code selects every stack.")]
BaseOpt = Annotated[str, typer.Option("--base", help="The git revision --only-changed compares "
                                      "against.")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, max=16,
                                         help="Stacks worked on at once.")]


def _stack_lines(results: list[provision.StackResult]) -> bool:
    for r in results:
        if r.error:
            console.print(f"  [red]{r.stack}: FAILED[/] {r.error}", soft_wrap=True)
        else:
            console.print(f"  {r.stack}: {_changes(r.changes)}")
    return not any(r.error for r in results)


def _changes(changes: dict[str, int]) -> str:
    moved = {op: n for op, n in changes.items() if op != "same"}
    same = changes.get("same", 0)
    if not moved:
        return f"no changes ({same} unchanged)"
    return ", ".join(f"{n} to {op}" for op, n in sorted(moved.items())) + f", {same} unchanged"


@app.command()
def plan(paths: PathsArg = None, env: EnvOpt = "lab", municipality: MunicipalityOpt = None,
         only_changed: OnlyChangedOpt = False, base: BaseOpt = "HEAD", workers: WorkersOpt = 3,
         as_json: JsonOpt = False) -> None:
    """Preview what `up` would change, stack by stack (concurrently); changes nothing."""
    model = _load(paths)
    selection = pipeline.selection(model, env, municipality or [], only_changed, base, [])
    settings = pipeline.lab_settings(model, env, say=lambda _: None, build=False)
    console.rule("[bold]plan")
    results = pipeline.provision_all(selection, pipeline.inventory_dir(paths), settings,
                                     say=lambda line: console.print(f"  {line}"),
                                     workers=workers, preview=True)
    ok = _stack_lines(results)
    if as_json:
        out.print_json(data={"ok": ok, "stacks": [
            {"stack": r.stack, "changes": r.changes, "changed": r.changed, "error": r.error}
            for r in results]})
    if not ok:
        raise typer.Exit(1)


@app.command()
def drift(paths: PathsArg = None, env: EnvOpt = "lab", workers: WorkersOpt = 3,
          as_json: JsonOpt = False) -> None:
    """Detect drift: refresh every stack in preview mode; exit 1 if anything moved behind
    Pulumi's back (a removed container, a lost link shaping …). Changes nothing."""
    model = _load(paths)
    selection = pipeline.selection(model, env, [], False, "HEAD", [])
    settings = pipeline.lab_settings(model, env, say=lambda _: None, build=False)
    console.rule("[bold]drift")
    results = pipeline.provision_all(selection, pipeline.inventory_dir(paths), settings,
                                     say=lambda line: console.print(f"  {line}"),
                                     workers=workers, act=provision.drift)
    ok = _stack_lines(results)
    drifted = [r.stack for r in results if r.changed]
    if as_json:
        out.print_json(data={"ok": ok and not drifted, "drifted": drifted, "stacks": [
            {"stack": r.stack, "changes": r.changes, "error": r.error} for r in results]})
    elif drifted:
        out.print(f"drift in {', '.join(drifted)}: run `fellesdrift up` to put it right")
    else:
        out.print("no drift")
    if not ok or drifted:
        raise typer.Exit(1)


@app.command()
def up(paths: PathsArg = None, env: EnvOpt = "lab", municipality: MunicipalityOpt = None,
       only_changed: OnlyChangedOpt = False, base: BaseOpt = "HEAD",
       destroy_municipality: Annotated[list[str] | None, typer.Option(
           "--destroy-municipality", help="Allow destroying this municipality's stack, whose "
           "inventory file was removed (repeatable).")] = None,
       workers: WorkersOpt = 3, as_json: JsonOpt = False) -> None:
    """Validate, provision with Pulumi, converge with Ansible, verify with testinfra."""
    model = _load(paths)
    selection = pipeline.selection(model, env, municipality or [], only_changed, base,
                                destroy_municipality or [])
    say = console.print
    with console.status("working …") as status:
        outcome = pipeline.up(
            model, selection, pipeline.inventory_dir(paths), env,
            say=lambda line: say(f"  {line}", soft_wrap=True),
            progress=lambda host, task: status.update(f"converge {host}: {task}"),
            workers=workers)
    _stack_lines(outcome.stacks)
    if outcome.converge is not None:
        for task in outcome.converge.changed_tasks:
            console.print(f"  changed {task}", soft_wrap=True)
        for failure in outcome.converge.failures:
            console.print(f"  [red]failed[/] {failure}", soft_wrap=True, markup=False)
        console.print(f"  ansible-runner artifacts: {outcome.converge.artifacts}")
    for name, verdict in outcome.verdicts.items():
        for failure in verdict.failures:
            console.print(f"  {name}: {failure}", soft_wrap=True, markup=False)
    summary = outcome.summary()
    if as_json:
        out.print_json(data=summary)
    else:
        _print_summary(summary)
    if not outcome.ok:
        raise typer.Exit(1)


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title="fellesdrift up", show_lines=False)
    for col in ("host", "address", "converge ok/changed/failed", "verify passed/failed", ""):
        table.add_column(col)
    for r in summary["hosts"]:
        c, v = r["converge"], r["verify"]
        table.add_row(r["host"], r["address"],
                      f"{c['ok']}/{c['changed']}/{c['failed'] + c['unreachable']}",
                      f"{v['passed']}/{v['failed']}",
                      "[green]ok" if r["ok"] else "[red]FAILED")
    out.print(table)
    out.print(f"Pulumi changes: {summary['pulumi_changes']}; Ansible changed: "
              f"{summary['ansible_changed']}; {summary['seconds']} s")


@app.command()
def recover(env: EnvOpt = "lab", stack: Annotated[str | None, typer.Option(
        "--stack", help="The stack, e.g. lab.seljord (default: every stack of --env).")] = None
            ) -> None:
    """After a killed `up`: clear stale locks and pending operations, then refresh.

    A lock whose process still runs is left alone. Run `fellesdrift up` afterwards: hosts the
    killed run made are adopted, so nothing is orphaned.
    """
    targets = [stack.split(".", 1)[1]] if stack else provision.stacks(env)
    for target in targets:
        cleared = provision.recover(env, target)
        out.print(f"{provision.stack_name(env, target)}: refreshed"
                  + (f", cleared {len(cleared)} stale lock(s)" if cleared else ""))


@app.command()
def down(env: EnvOpt = "lab", as_json: JsonOpt = False) -> None:
    """Destroy every stack of the lab (municipalities, then the core, protection lifted) and
    remove all it made: containers, networks, routes, keys."""
    destroyed, failed = [], []
    targets = provision.stacks(env)
    for target in sorted(targets, key=lambda t: t == provision.CORE):
        console.print(f"destroying {provision.stack_name(env, target)} …")
        try:
            provision.destroy(env, target)
            destroyed.append(provision.stack_name(env, target))
        except provision.ProvisionError as e:
            console.print(f"  {e}", markup=False, soft_wrap=True)
            failed.append(target)
    removed = lab.teardown(env)  # whatever a stack could not destroy goes by its lab label
    for target in failed:  # its resources are gone now: drop the stack's state too
        provision.forget(env, target)
        console.print(f"  removed {provision.stack_name(env, target)} after tearing its lab down")
    if as_json:
        out.print_json(data={"stacks": destroyed, "removed": removed})
    else:
        out.print(f"destroyed {len(destroyed)} stacks; removed "
                  + ", ".join(f"{n} {what}" for what, n in removed.items()))


@app.command("doctor")
def doctor_cmd(as_json: JsonOpt = False) -> None:
    """Check the tools fellesdrift needs and whether the lab can start a host."""
    checks = doctor.run()
    if as_json:
        out.print_json(data={"ok": all(c.ok for c in checks),
                             "checks": [c.__dict__ for c in checks]})
    else:
        for c in checks:
            mark = "[green]ok  " if c.ok else "[red]FAIL"
            out.print(f"{mark}[/] {c.name:24} {c.version}"
                      + ("" if c.ok else f"\n       → {c.fix}"))
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def main() -> None:
    """Entry point: user errors become one clear message and a non-zero exit."""
    try:
        app()
    except inventory.InventoryError as e:
        for p in e.problems:
            console.print(str(p), markup=False, soft_wrap=True)
        console.print(f"{len(e.problems)} problem(s); nothing was applied.")
        sys.exit(1)
    except (scaffold.ScaffoldError, migration.MigrationError) as e:
        _problems(e.problems, "nothing was written")
        sys.exit(1)
    except pipeline.SelectionError as e:
        console.print(f"error: {e}; nothing was applied.", markup=False, soft_wrap=True)
        sys.exit(1)
    except (EngineError, lab.LabError, provision.ProvisionError, topology.TopologyError) as e:
        console.print(f"error: {e}", markup=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
