"""What the commands share: their options, the environment and model they open, the lines of
Pulumi's changes per stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fellesdrift import environment
from fellesdrift.change.review import changes_text
from fellesdrift.environment import Environment
from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import Inventory
from fellesdrift.plan import naming
from fellesdrift.provision import stacks as provision

console = Console(stderr=True, highlight=False)


def _env(value: str) -> str:
    problem = naming.env_problem(value)
    if problem:
        raise typer.BadParameter(problem)
    return value


EnvOpt = Annotated[str, typer.Option("--env", callback=_env, help="Environment name (it becomes "
                                     "part of stack, host and DNS names).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable result.")]
PathsArg = Annotated[list[Path] | None, typer.Argument(
    help="Inventory files or folders (default: inventories/).", show_default=False)]
MunicipalityOpt = Annotated[list[str] | None, typer.Option(
    "--municipality", "-m", help="Only this municipality's stack (repeatable; `core` names the "
    "centre's); `up` then converges, pushes and verifies its hosts and the centre hosts rendered "
    "from it.")]
OnlyChangedOpt = Annotated[bool, typer.Option(
    "--only-changed", help="Only the stacks whose inventory files (or code) changed in git "
    "since --base; a change to the centre file or the code selects every stack.")]
BaseOpt = Annotated[str, typer.Option("--base", help="The git revision --only-changed compares "
                                      "against.")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, max=16,
                                         help="Stacks worked on at once.")]


def open_model(env: str, paths: list[Path] | None) -> tuple[Environment, Inventory]:
    """The environment (its driver, and its inventory: ``paths`` if given, else what its last
    `up` was given, else environments.yaml's, else inventories/) and its validated model."""
    environ = environment.get(env, paths)
    return environ, inventory.load(list(environ.inventory))


def stack_lines(results: list[provision.StackResult]) -> bool:
    """Print each stack's changes (or its error); whether none failed."""
    for r in results:
        if r.error:
            # The error names the stack (provision.explain).
            console.print(f"  [red]FAILED[/] {r.error}", soft_wrap=True, highlight=False)
        else:
            console.print(f"  {r.stack}: {changes_text(r.changes)}")
            for typ, name in r.declared:  # a preview under mocks: what it would create
                if not typ.startswith("fellesdrift:"):
                    console.print(f"    + {typ} {name}", markup=False, soft_wrap=True)
    return not any(r.error for r in results)
