"""The `fellesdrift` command."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from . import converge, doctor, hosts, inventory, lab, provision, verify
from .engine import EngineError
from .model import Inventory
from .paths import INVENTORIES

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


@app.command()
def validate(paths: PathsArg = None, as_json: JsonOpt = False) -> None:
    """Load and validate inventory files; exit 1 listing every problem."""
    model = _load(paths)
    sites = sum(len(m.sites) for m in model.municipalities)
    if as_json:
        out.print_json(data={"ok": True, "municipalities": len(model.municipalities),
                             "sites": sites, "problems": []})
    else:
        out.print(f"ok: {len(model.municipalities)} municipalities, {sites} sites")


def _phase(name: str) -> None:
    console.rule(f"[bold]{name}")


@app.command()
def up(paths: PathsArg = None, env: EnvOpt = "lab", as_json: JsonOpt = False) -> None:
    """Validate, provision with Pulumi, converge with Ansible, verify with testinfra."""
    started = time.monotonic()
    model = _load(paths)
    inventory_dir = (paths or [INVENTORIES])[0]
    inventory_dir = inventory_dir if inventory_dir.is_dir() else inventory_dir.parent

    _phase("lab")
    lab.configure_podman()
    image = lab.golden_image(progress=lambda line: console.print(f"  {line}"))
    _, public_key = lab.lab_keypair(env)
    lab.add_unreachable_routes(list(model.centre.address_plan.aggregates), env=env)
    console.print(f"  image {image}; aggregates {', '.join(model.centre.address_plan.aggregates)}"
                  " routed unreachable")

    _phase("provision")
    settings = provision.LabSettings(env=env, image=image, authorized_key=public_key)
    stacks: list[provision.StackResult] = []
    for m in model.municipalities:
        console.print(f"  stack {provision.stack_name(env, m.slug)} …")
        result = provision.up(m.slug, inventory_dir, settings,
                              on_output=lambda line: console.print(f"    [dim]{line.rstrip()}"))
        console.print(f"  stack {result.stack}: {_changes(result.changes)}")
        stacks.append(result)
    provisioned = [hosts.Host.from_output(h) for s in stacks for h in s.hosts]
    hosts.trust(env, provisioned)
    hosts.save(env, provisioned)
    ansible_inventory = hosts.ansible_inventory(env, provisioned)

    _phase("converge")
    with console.status("converging …") as status:
        conv = converge.run(env, ansible_inventory,
                            progress=lambda h, t: status.update(f"converge {h}: {t}"))
    for task in conv.changed_tasks:
        console.print(f"  changed {task}")
    for failure in conv.failures:
        console.print(f"  [red]failed {failure}")
    console.print(f"  artifacts: {conv.artifacts}")

    _phase("verify")
    with console.status("verifying …"):
        verdicts = verify.run(env, provisioned)
    for name, verdict in verdicts.items():
        for failure in verdict.failures:
            console.print(f"  [red]{name}: {failure}")

    summary = _summary(stacks, provisioned, conv, verdicts, time.monotonic() - started)
    if as_json:
        out.print_json(data=summary)
    else:
        _print_summary(summary)
    if not summary["ok"]:
        raise typer.Exit(1)


def _changes(changes: dict[str, int]) -> str:
    moved = {op: n for op, n in changes.items() if op != "same"}
    same = changes.get("same", 0)
    if not moved:
        return f"no changes ({same} unchanged)"
    return ", ".join(f"{n} {op}" for op, n in sorted(moved.items())) + f", {same} unchanged"


def _summary(stacks: list[provision.StackResult], provisioned: list[hosts.Host],
             conv: converge.ConvergeResult, verdicts: dict[str, verify.HostVerdict],
             seconds: float) -> dict[str, Any]:
    rows = []
    for h in provisioned:
        recap = conv.recap.get(h.name, converge.HostRecap())
        verdict = verdicts.get(h.name, verify.HostVerdict())
        rows.append({
            "host": h.name, "address": h.address, "groups": list(h.groups),
            "converge": {"ok": recap.ok, "changed": recap.changed, "failed": recap.failed,
                         "unreachable": recap.unreachable},
            "verify": {"passed": verdict.passed, "failed": verdict.failed,
                       "skipped": verdict.skipped},
            "ok": recap.failed == 0 and recap.unreachable == 0 and verdict.ok,
        })
    return {
        "ok": conv.ok and all(r["ok"] for r in rows) and bool(rows),
        "seconds": round(seconds, 1),
        "stacks": [{"stack": s.stack, "changes": s.changes, "changed": s.changed}
                   for s in stacks],
        "pulumi_changes": sum(s.changed for s in stacks),
        "ansible_changed": conv.changed,
        "changed_tasks": [str(t) for t in conv.changed_tasks],
        "hosts": rows,
    }


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
def down(env: EnvOpt = "lab", as_json: JsonOpt = False) -> None:
    """Destroy every stack of the lab and remove all it made (containers, networks, routes,
    keys)."""
    destroyed = []
    for slug in provision.stacks(env):
        console.print(f"destroying stack {provision.stack_name(env, slug)} …")
        provision.destroy(env, slug,
                          on_output=lambda line: console.print(f"  [dim]{line.rstrip()}"))
        destroyed.append(provision.stack_name(env, slug))
    removed = lab.teardown(env)
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
    except (EngineError, lab.LabError) as e:
        console.print(f"error: {e}", markup=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
