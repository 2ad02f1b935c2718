"""The `fellesdrift` command."""

from __future__ import annotations

import fnmatch
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fellesdrift import environment
from fellesdrift.change import apply as changes
from fellesdrift.cli import invoice as invoice_cmd
from fellesdrift.cli import plan as plan_cmd
from fellesdrift.cli.common import (
    BaseOpt,
    EnvOpt,
    JsonOpt,
    MunicipalityOpt,
    OnlyChangedOpt,
    PathsArg,
    WorkersOpt,
)
from fellesdrift.cli.common import open_model as _open
from fellesdrift.cli.common import stack_lines as _stack_lines
from fellesdrift.cli.display import view
from fellesdrift.converge import run as converge
from fellesdrift.converge.idempotence import Idempotence, converge_again, load_waivers
from fellesdrift.errors import FellesdriftError
from fellesdrift.inventory import load as inventory
from fellesdrift.inventory import migrate as migration
from fellesdrift.inventory import scaffold
from fellesdrift.inventory import schema as schemas
from fellesdrift.inventory.model import SCHEMA_VERSION, Inventory
from fellesdrift.inventory.problems import Problem
from fellesdrift.paths import INVENTORIES
from fellesdrift.pipeline import doctor
from fellesdrift.pipeline import job as pipeline
from fellesdrift.provision import ci, drivers
from fellesdrift.provision import hosts as lab_hosts
from fellesdrift.provision import stacks as provision
from fellesdrift.report import report as reporting
from fellesdrift.report import status as statuses
from fellesdrift.verify import run as verify

app = typer.Typer(help="Infrastructure as code for an IT operations centre shared by "
                  "municipalities.", no_args_is_help=True, add_completion=False)
console = Console(stderr=True, highlight=False)
out = Console(highlight=False)



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


def _provisioned(model: Inventory, env: str) -> tuple[list[lab_hosts.Host], Path]:
    """The lab's hosts and its Ansible inventory; exit 2 when the lab has no host (nothing is
    written for a lab that does not exist)."""
    if not lab_hosts.load(env):
        console.print(f"error: lab {env!r} has no provisioned hosts; run `fellesdrift up "
                      f"--env {env}` first", markup=False)
        raise typer.Exit(2)
    return pipeline.inventory_for(model, env)


@inventory_app.command("ansible")
def ansible_cmd(paths: PathsArg = None, env: EnvOpt = "lab") -> None:
    """Write the lab's Ansible inventory (hosts as provisioned, with every role variable
    rendered from the model) and print its path, for ad-hoc ansible or ansible-playbook -i."""
    _, model = _open(env, paths)
    _, path = _provisioned(model, env)
    out.print(str(path), markup=False, soft_wrap=True)


@app.command()
def drift(paths: PathsArg = None, env: EnvOpt = "lab", workers: WorkersOpt = 3,
          as_json: JsonOpt = False) -> None:
    """Detect drift: refresh every stack in preview mode; exit 1 if anything moved behind
    Pulumi's back (a removed container, a lost link shaping …). Changes nothing."""
    environ, model = _open(env, paths)
    selection = pipeline.selection(model, env, [], False, "HEAD", [])
    settings = pipeline.stack_settings(environ, model, say=lambda _: None, build=False)
    console.rule("[bold]drift")
    results = pipeline.provision_all(selection, environ.folder, settings,
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
       workers: WorkersOpt = 3,
       plan_file: Annotated[Path | None, typer.Option(
           "--plan", help="Apply this plan (`plan --out FILE`) and its selection; refused when "
           "an input changed since.", dir_okay=False)] = None,
       emergency: Annotated[str | None, typer.Option(
           "--emergency", help="Change municipalities outside their maintenance window; the "
           "reason goes into the audit log.", metavar="REASON")] = None,
       converge_all: Annotated[bool, typer.Option(
           "--converge-all", help="Converge every selected host, also those whose inputs are "
           "unchanged since their last converge and verify, which passed (by default they are "
           "left out; the network phase and verify still check them).")] = False,
       as_json: JsonOpt = False) -> None:
    """Validate, provision with Pulumi, converge with Ansible, verify with testinfra.

    Converge leaves out a host whose inputs (its variables, its machine, the code) are
    unchanged since its last converge and verify, which both passed; --converge-all converges
    it anyway (to put right a file changed behind Ansible's back).

    A municipality whose inputs changed since its last apply is changed only inside its
    maintenance window (or with --emergency); every apply appends to the audit log
    (docs/changes.md)."""
    environ = environment.get(env, paths)
    plan = (changes.planned(plan_file, env, list(environ.inventory),
                            bool(municipality or only_changed)) if plan_file else None)
    if plan and not changes.targets(plan):
        out.print(f"{plan_file} selects no stack: nothing to apply", markup=False)
        return
    model = inventory.load(list(environ.inventory))
    selection = (pipeline.select(model, provision.stacks(env), changes.targets(plan), None,
                                 destroy_municipality or [], env) if plan else
                 pipeline.selection(model, env, municipality or [], only_changed, base,
                                    destroy_municipality or []))
    applying = changes.start(model, env, selection, list(environ.inventory), plan, emergency)
    say = console.print
    with view(console) as progress:
        outcome = pipeline.up(
            model, selection, environ,
            say=lambda line: say(f"  {line}", soft_wrap=True),
            progress=progress, workers=workers, done=applying.done, converge_all=converge_all)
    _stack_lines(outcome.stacks)
    if outcome.converge is not None:
        _print_converge(outcome.converge, outcome.idempotence)
    for r in outcome.network:
        console.print(f"  network {r.device}: {r.status}"
                      + (f" — {r.error}" if r.error else ""), soft_wrap=True, markup=False)
    for r in outcome.in_sync:
        if r.status != "unchanged":
            console.print(f"  [red]not in sync[/] {r.device}: running configuration differs "
                          f"from the intended one at the end{' — ' + r.error if r.error else ''}",
                          soft_wrap=True)
    for name, verdict in outcome.verdicts.items():
        for failure in verdict.failures:
            console.print(f"  {name}: {failure}", soft_wrap=True, markup=False)
    for difference in applying.unplanned:
        console.print(f"  [red]not as planned[/] {difference}", soft_wrap=True)
    summary = outcome.summary() | ({"unplanned": applying.unplanned} if plan else {})
    if as_json:
        out.print_json(data=summary)
    else:
        _print_tenancy(verify.tenancy(outcome.verdicts))
        _print_summary(summary)
        if outcome.report is not None:
            out.print(f"report: {outcome.report.html} (and {outcome.report.markdown.name}, "
                      f"{outcome.report.json.name})", markup=False, soft_wrap=True)
    if not outcome.ok or applying.unplanned:
        raise typer.Exit(1)


def _print_converge(result: converge.ConvergeResult,
                    idempotence: Idempotence | None) -> None:
    for task in result.changed_tasks:
        console.print(f"  changed {task}", soft_wrap=True, markup=False)
    for failure in result.failures:
        console.print(f"  [red]failed[/] {escape(failure)}", soft_wrap=True)
    if idempotence is not None:
        for task in idempotence.changed:
            console.print(f"  [red]not idempotent[/]: the second run changed {task}",
                          soft_wrap=True)
        for task, waiver in idempotence.waived:
            console.print(f"  waived: {task} — {waiver.reason}", soft_wrap=True, markup=False)
        for failure in idempotence.failures:
            console.print(f"  [red]second run failed[/] {failure}", soft_wrap=True,
                          markup=False)
        if idempotence.ok and result.recap:
            rerun = idempotence.rerun
            where = ("" if rerun is None else f" on the {len(rerun)} host(s) the first run "
                     "changed" if rerun else "; none was needed: the first changed nothing")
            console.print(f"  idempotent: the second run changed nothing{where}"
                          + (f" ({len(idempotence.waived)} waived)" if idempotence.waived
                             else ""))
    if result.recap:
        console.print(f"  ansible-runner artifacts: {result.artifacts}", markup=False)


def _recap_table(result: converge.ConvergeResult) -> Table:
    table = Table(title="converge recap")
    for col in ("host", "ok", "changed", "failed", "unreachable", "skipped"):
        table.add_column(col)
    for host, r in sorted(result.recap.items()):
        table.add_row(host, str(r.ok), str(r.changed), f"[red]{r.failed}" if r.failed else "0",
                      f"[red]{r.unreachable}" if r.unreachable else "0", str(r.skipped))
    return table


def _converge_json(result: converge.ConvergeResult) -> dict[str, Any]:
    return {"ok": result.ok, "status": result.status, "artifacts": str(result.artifacts),
            "changed": result.changed, "changed_tasks": [t.__dict__ for t in result.changed_tasks],
            "failures": result.failures,
            "recap": {h: r.__dict__ for h, r in sorted(result.recap.items())}}


LimitOpt = Annotated[str | None, typer.Option(
    "--limit", help="Only these hosts: an Ansible host pattern, e.g. 'gis_hosting:vinje-*'.")]


@app.command("converge")
def converge_cmd(paths: PathsArg = None, env: EnvOpt = "lab", limit: LimitOpt = None,
                 check_idempotence: Annotated[bool, typer.Option(
                     "--check-idempotence", help="Run a second time right after, on the hosts the "
                     "first run changed (a host it changed nothing on needs none), and fail if "
                     "it changes anything not waived in playbooks/idempotence-waivers.yml."
                 )] = False,
                 as_json: JsonOpt = False) -> None:
    """Apply the roles to the provisioned hosts through ansible-runner, with live progress per
    host and task and a per-host recap. Each run's artifacts stay under .lab/<env>/ansible/."""
    _, model = _open(env, paths)
    waivers = load_waivers()
    hosts_, inventory_file = _provisioned(model, env)
    with view(console, "converge") as progress:
        first = converge.run(env, inventory_file, len(hosts_), progress=progress, limit=limit)
    names = [h.name for h in hosts_ if limit is None or h.name in _limit_names(limit, hosts_)]
    second, rerun = None, None
    if check_idempotence and first.ok:
        def again(chosen: list[str]) -> converge.ConvergeResult:
            with view(console, "converge again (idempotence)") as progress:
                return converge.run(env, inventory_file, len(chosen), progress=progress,
                                    limit=",".join(chosen))

        second, rerun = converge_again(names, first, waivers, again)
    idempotence = pipeline.record_converge(env, names, first, second, waivers, rerun=rerun)
    ok = first.ok and (idempotence is None or idempotence.ok)
    if as_json:
        data = {**_converge_json(first), "ok": ok}
        if idempotence is not None:
            data["idempotence"] = {
                "ok": idempotence.ok, "changed": [t.__dict__ for t in idempotence.changed],
                "waived": [{**t.__dict__, "reason": w.reason} for t, w in idempotence.waived],
                "failures": idempotence.failures}
        out.print_json(data=data)
    else:
        out.print(_recap_table(first))
        _print_converge(first, idempotence)
    if not ok:
        raise typer.Exit(1)


@app.command("verify")
def verify_cmd(paths: PathsArg = None, env: EnvOpt = "lab", limit: LimitOpt = None,
               workers: Annotated[int, typer.Option(
                   "--workers", min=1, max=32, help="pytest-xdist workers.")
               ] = verify.DEFAULT_WORKERS,
               as_json: JsonOpt = False) -> None:
    """Run the testinfra suites (fellesdrift/verify/suites) against every host of the lab's
    inventory, in parallel; each host's checks, failures named. JUnit report:
    .lab/<env>/verify/junit.xml."""
    _, model = _open(env, paths)
    hosts_, inventory_file = _provisioned(model, env)
    chosen = [h for h in hosts_ if limit is None or h.name in _limit_names(limit, hosts_)]
    with view(console, f"verifying {len(chosen)} hosts") as progress:
        verdicts = verify.run(env, inventory_file, chosen, workers=workers, progress=progress)
    pipeline.record_verify(env, verdicts)
    ok = all(v.ok for v in verdicts.values())
    if as_json:
        out.print_json(data={"ok": ok, "hosts": {
            name: {"ok": v.ok, "passed": v.passed, "failed": v.failed, "skipped": v.skipped,
                   "failures": v.failures} for name, v in verdicts.items()},
            "tenancy": verify.tenancy(verdicts)})
    else:
        table = Table(title="verify")
        for col in ("host", "passed", "failed", "skipped", ""):
            table.add_column(col)
        for name, v in verdicts.items():
            table.add_row(name, str(v.passed), str(v.failed), str(v.skipped),
                          "[green]ok" if v.ok else "[red]FAILED")
        out.print(table)
        for name, v in verdicts.items():
            for failure in v.failures:
                console.print(f"  {name}: {failure}", soft_wrap=True, markup=False)
        _print_tenancy(verify.tenancy(verdicts))
    if not ok:
        raise typer.Exit(1)


def _print_tenancy(matrices: dict[str, dict[str, dict[str, bool]]]) -> None:
    """One table per kind: rows reach columns; only the diagonal may say yes."""
    for kind, rows in sorted(matrices.items()):
        names = sorted(set(rows) | {t for r in rows.values() for t in r})
        table = Table(title=f"tenancy: {kind} (row reaches column?)")
        table.add_column("from \\ to")
        for n in names:
            table.add_column(n)
        for a in names:
            cells = []
            for b in names:
                reached = rows.get(a, {}).get(b)
                if reached is None:
                    cells.append("·")
                elif a == b:
                    cells.append("[green]yes" if reached else "[red]no")
                else:
                    cells.append("[red]YES" if reached else "[green]no")
            table.add_row(a, *cells)
        out.print(table)


def _limit_names(limit: str, hosts_: list[Any]) -> set[str]:
    """Host names matching an Ansible-style pattern list (names, groups, shell globs)."""
    names: set[str] = set()
    for part in filter(None, limit.replace(",", ":").split(":")):
        names |= {h.name for h in hosts_ if fnmatch.fnmatch(h.name, part) or part in h.groups}
    return names


def _print_summary(summary: dict[str, Any]) -> None:
    if not summary["hosts"]:
        out.print(_summary_line(summary), soft_wrap=True, markup=False)
        return
    table = Table(title="fellesdrift up", show_lines=False)
    for col in ("host", "address", "converge ok/changed/failed", "verify passed/failed", ""):
        table.add_column(col)
    for r in summary["hosts"]:
        c, v = r["converge"], r["verify"]
        table.add_row(r["host"], r["address"], "unchanged" if c["unchanged"] else
                      f"{c['ok']}/{c['changed']}/{c['failed'] + c['unreachable']}",
                      f"{v['passed']}/{v['failed']}",
                      "[green]ok" if r["ok"] else "[red]FAILED")
    out.print(table)
    out.print(_summary_line(summary), soft_wrap=True, markup=False)


def _summary_line(summary: dict[str, Any]) -> str:
    """The run's last word: failed (in which phase) or done, what changed, how long."""
    verdict = (f"up FAILED in {summary['failed']}" if summary["failed"] else "up ok")
    scope = (f"{summary['hosts_worked_on']} of {summary['hosts_in_lab']} hosts"
             if summary["hosts_worked_on"] != summary["hosts_in_lab"] else
             f"{summary['hosts_in_lab']} hosts")
    unchanged = len(summary.get("unchanged_hosts", []))
    left_out = f" ({unchanged} unchanged, not converged)" if unchanged else ""
    return (f"{verdict}: {scope}; Pulumi changes: {summary['pulumi_changes']}; Ansible "
            f"changed: {summary['ansible_changed']}{left_out}; {summary['seconds']} s")


@app.command()
def network(paths: PathsArg = None, env: EnvOpt = "lab",
            municipality: Annotated[list[str] | None, typer.Option(
                "--municipality", "-m", help="Only this municipality's site routers (and the "
                "core router); repeatable.")] = None,
            dry_run: Annotated[bool, typer.Option(
                "--dry-run", help="Print every diff; change nothing.")] = False,
            workers: Annotated[int, typer.Option("--workers", min=1, max=64,
                                                 help="Devices worked on at once.")] = 8,
            as_json: JsonOpt = False) -> None:
    """Configure the lab's routers through netmiko: archive, diff, push, verify, roll back.

    Every device's running configuration is archived to backups/<env>/<device>/ first; a
    device is pushed only when it differs from the intended configuration, read back and
    compared, then saved. On any error it goes back to its archived configuration and counts
    as failed (exit 1); the other devices carry on.
    """
    from fellesdrift.network import push  # netmiko is slow to import: only for this command

    _, model = _open(env, paths)
    hosts = lab_hosts.load(env)
    if not push.routers(hosts):
        console.print(f"error: lab {env} has no routers (run `fellesdrift up` first)")
        raise typer.Exit(2)
    with view(console) as progress:
        results = push.run(model, env, hosts, dry_run=dry_run, municipalities=municipality,
                           workers=workers, progress=progress)
    pipeline.record_network(env, results)
    failed = [r for r in results if r.status == "failed"]
    if as_json:
        out.print_json(data={"ok": not failed, "dry_run": dry_run,
                             "devices": [r.as_dict() for r in results]})
    else:
        for r in results:
            if r.diff and (dry_run or r.status != "unchanged"):
                out.print(r.diff, markup=False, highlight=False, end="")
        table = Table(title=f"fellesdrift network{' (dry run)' if dry_run else ''}")
        for col in ("device", "status", "seconds", "backup / error"):
            table.add_column(col)
        for r in results:
            colour = {"failed": "red", "changed": "yellow", "would-change": "yellow"}.get(
                r.status, "green")
            note = r.error + (" (archived configuration restored)" if r.rolled_back else "")
            table.add_row(r.device, f"[{colour}]{r.status}", str(r.seconds),
                          note or r.backup)
        out.print(table)
    if failed:
        raise typer.Exit(1)


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
    # whatever a stack could not destroy goes by its label; the driver knows what else it made
    removed = drivers.driver(environment.get(env)).teardown(env)
    if targets or any(removed.values()):
        changes.record_down(env, destroyed, failed)
    for target in failed:  # its resources are gone now: drop the stack's state too
        provision.forget(env, target)
        console.print(f"  removed {provision.stack_name(env, target)} after tearing its lab down")
    if as_json:
        out.print_json(data={"stacks": destroyed, "removed": removed})
    else:
        out.print(f"destroyed {len(destroyed)} stacks; removed "
                  + ", ".join(f"{n} {what}" for what, n in removed.items()))


@app.command("doctor")
def doctor_cmd(env: EnvOpt = "lab", as_json: JsonOpt = False) -> None:
    """Check the tools fellesdrift needs, the environment's state backend (reachable?) and
    whether the lab can start a host."""
    checks = doctor.run(env)
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


_STATE_STYLE = {"ok": "[green]ok[/]", "failed": "[red]FAILED[/]", "unknown": "[yellow]unknown[/]"}


@app.command("status")
def status_cmd(paths: PathsArg = None, env: EnvOpt = "lab", as_json: JsonOpt = False) -> None:
    """Show, per municipality and site, whether it converged: provisioned (no pending stack
    changes), converged (a second Ansible run changed nothing), network in sync (the router's
    running config is the intended one) and verified (testinfra passed), as last recorded by
    the pipeline. A check that never ran is unknown. Exit 1 unless every site converged."""
    _, model = _open(env, paths)
    rows = statuses.site_status(model, env, lab_hosts.load(env))
    summary = statuses.summary(env, rows)
    if as_json:
        out.print_json(data=summary)
    else:
        table = Table(title=f"fellesdrift status ({env})")
        table.add_column("municipality")
        table.add_column("site")
        for col in ("provisioned", "converged", "network", "verified", "site\nconverged"):
            table.add_column(col, no_wrap=True)
        for i, r in enumerate(rows):
            if i and r.municipality != rows[i - 1].municipality:
                table.add_section()
            first = not i or r.municipality != rows[i - 1].municipality
            table.add_row(r.municipality_name if first else "", r.site,
                          *(_STATE_STYLE[c.state] for c in r.checks.values()),
                          "[green]yes" if r.ok else "[red]no")
        out.print(table)
        for r in rows:
            for name, c in r.checks.items():
                if c.state == "failed":
                    out.print(f"  {r.municipality}/{r.site} {name} failed: {c.detail}",
                              markup=False, soft_wrap=True)
        unknown = sum(c.state == "unknown" for r in rows for c in r.checks.values())
        if unknown:
            out.print(f"  {unknown} check(s) unknown: the phase never ran for those hosts "
                      "(--json names them)", markup=False, soft_wrap=True)
        out.print(f"{summary['converged']} of {summary['sites']} sites (the centre counted) "
                  f"converged; record: {statuses.path(env)}", soft_wrap=True, markup=False)
    if not summary["ok"]:
        raise typer.Exit(1)


@app.command("report")
def report_cmd(paths: PathsArg = None, env: EnvOpt = "lab", out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write the report (default: "
                                  "reports/<env>/).", show_default=False)] = None,
               as_json: JsonOpt = False) -> None:
    """Write the report: report.html (one self-contained file), report.md (its Markdown twin,
    with topology.svg) and report.json (machine-readable): the topology, each municipality's
    equipment, services, users and monthly invoice, and every site's convergence."""
    _, model = _open(env, paths)
    folder = out_dir or reporting.default_folder(env)
    written = reporting.write(model, env, folder, lab_hosts.load(env))
    if as_json:
        out.print_json(data={"ok": written.ok, "html": str(written.html),
                             "markdown": str(written.markdown), "json": str(written.json),
                             "svg": str(written.svg)})
        return
    out.print(f"wrote {written.markdown} (with {written.svg.name}) and {written.json}",
              soft_wrap=True, markup=False)
    out.print("every site converged" if written.ok else
              f"not every site converged: see `fellesdrift status --env {env}`",
              soft_wrap=True, markup=False)
    out.print(f"report: {written.html}", soft_wrap=True, markup=False)


invoice_cmd.register(app)
plan_cmd.register(app)

ci_app = typer.Typer(help="CI fan-out: one job per changed stack, from a plan's JSON.",
                     no_args_is_help=True)
app.add_typer(ci_app, name="ci")
PlanArg = Annotated[Path, typer.Argument(help="The output of `fellesdrift plan --only-changed "
                                         "--json`.", exists=True, dir_okay=False)]


def _plan_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ci.PlanError(f"{path}: not a plan's JSON ({e})") from e


@ci_app.command("gitlab")
def ci_gitlab(plan_file: PlanArg, env: EnvOpt = "lab", command: Annotated[str, typer.Option(
        "--command", help="What each job runs: plan (change requests) or up (main).")] = "up"
              ) -> None:
    """Print the GitLab child pipeline: the core's job first, then one job per changed
    municipality, in parallel."""
    out.print(yaml.safe_dump(ci.gitlab_child(_plan_json(plan_file), env, command),
                             sort_keys=False), end="", markup=False, highlight=False)


@ci_app.command("github")
def ci_github(plan_file: PlanArg, env: EnvOpt = "lab") -> None:
    """Print the GitHub Actions step outputs (key=value lines for $GITHUB_OUTPUT): `core` and
    `slugs`, the matrix of changed municipalities."""
    for key, value in ci.github_outputs(_plan_json(plan_file), env).items():
        out.print(f"{key}={value}", markup=False, highlight=False)


def main() -> None:
    """Entry point: user errors become one clear message and a non-zero exit."""
    try:
        app()
    except FellesdriftError as e:  # every error of the platform's: its lines, its exit status
        for line in e.lines():
            console.print(line, markup=False, soft_wrap=True)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
