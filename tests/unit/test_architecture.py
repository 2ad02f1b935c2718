"""The folders mean something: checked on the real import graph (the ast of every module of
fellesdrift/ and stacks/, imports inside functions and TYPE_CHECKING blocks included).

- Phases import only earlier phases (docs/architecture.md draws the order): inventory and plan
  import nothing from later phases, the pipeline and the CLI may import everything.
- Only the lab driver imports the lab (stacks/drivers/lab.py; on the platform's side the lab
  is reached through fellesdrift.lab.driver, which the driver registry imports by name).
- The shared base modules (paths, syntax, errors, files, environment, checkout, and the one result
  family, progress interface and thread fan-out: results, progress, fanout) import no phase.

The checker is shown to fail on a synthetic package that breaks each rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: The phases in pipeline order: a module may import its own phase and earlier ones only.
LAYERS = ("inventory", "plan", "access", "provision", "lab", "converge", "network", "verify",
          "report", "pipeline", "change", "cli")
#: Imports of a later phase that are the design: the validator checks the names and the link
#: ranges the plan derives from the inventory, so a bad inventory stops before anything runs;
#: the report shows each municipality's last applies from the change package's audit log.
ALLOWED = {("inventory.rules", "plan.naming"), ("inventory.rules", "plan.topology"),
           ("report.report", "change.audit")}
#: The only modules outside the lab package that may import it.
LAB_DRIVER = {"stacks.drivers.lab"}
#: The shared base: the modules of fellesdrift/ outside every phase (they import no phase).
BASE = {"paths", "syntax", "errors", "files", "environment", "results", "progress", "fanout",
        "checkout"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """{module: the modules of ``packages`` it imports} for every module under them. ``from
    P import name`` counts as importing P.name when that is a module, else P."""
    files = {module_name(root, p): p for pkg in packages for p in (root / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                for a in node.names:
                    found.add(f"{source}.{a.name}" if f"{source}.{a.name}" in files else source)
        graph[mod] = {m for m in found if m.split(".")[0] in packages}
    return graph


def layer(module: str, package: str) -> str | None:
    """The phase a module belongs to, None for the base. stacks/ is provision's program, but
    its lab driver is the lab's (like fellesdrift.lab.driver, it implements a driver
    interface of provision's); ``python -m`` is the CLI."""
    parts = module.split(".")
    if parts[0] == "stacks":
        return "lab" if module in LAB_DRIVER else "provision"
    if parts[0] != package or len(parts) < 2:
        return None
    if parts[1] == "__main__":
        return "cli"
    return parts[1] if parts[1] in LAYERS else None


def violations(graph: dict[str, set[str]], package: str) -> list[str]:
    """Every import that breaks a rule, as 'importer -> imported: why'."""
    found = []
    strip = len(package) + 1
    for importer, imported in sorted(graph.items()):
        for target in sorted(imported):
            mine, theirs = layer(importer, package), layer(target, package)
            pair = (importer[strip:], target[strip:])
            if mine is None and theirs is not None:
                found.append(f"{importer} -> {target}: a base module imports a phase")
            elif (mine is not None and theirs is not None and pair not in ALLOWED
                  and LAYERS.index(theirs) > LAYERS.index(mine)):
                found.append(f"{importer} -> {target}: {mine} imports the later phase {theirs}")
            if (theirs == "lab" and mine != "lab"
                    and importer not in LAB_DRIVER):
                found.append(f"{importer} -> {target}: only the lab driver imports the lab")
    return found


def test_the_package_keeps_its_layers() -> None:
    graph = import_graph(ROOT, ("fellesdrift", "stacks"))
    assert len(graph) > 60 and "fellesdrift.inventory.model" in graph  # it read the package
    # Positive controls: edges that exist are seen (a relative, an absolute, a nested import).
    assert "fellesdrift.inventory.model" in graph["fellesdrift.inventory.load"]
    assert "fellesdrift.lab.hosts" in graph["stacks.drivers.lab"]
    assert violations(graph, "fellesdrift") == []


def test_the_base_is_the_modules_named() -> None:
    graph = import_graph(ROOT, ("fellesdrift", "stacks"))
    base = {m.removeprefix("fellesdrift.") for m in graph
            if m.startswith("fellesdrift.") and layer(m, "fellesdrift") is None}
    assert base == BASE
    # the phases use it: the result family, the progress interface, the fan-out
    assert {"fellesdrift.results", "fellesdrift.fanout"} <= graph["fellesdrift.network.push"]
    assert "fellesdrift.progress" in graph["fellesdrift.converge.run"]


def test_only_the_lab_driver_imports_the_lab() -> None:
    graph = import_graph(ROOT, ("fellesdrift", "stacks"))
    importers = {m for m, imported in graph.items()
                 if not m.startswith("fellesdrift.lab")
                 and any(t.startswith("fellesdrift.lab") for t in imported)}
    assert importers == LAB_DRIVER


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


SYNTHETIC = {
    "pkg/__init__.py": "",
    "pkg/paths.py": "ROOT = '.'\n",
    "pkg/inventory/__init__.py": "",
    "pkg/inventory/model.py": "from pkg import paths\n",
    "pkg/plan/__init__.py": "",
    "pkg/plan/topology.py": "from ..inventory import model\n",
    "pkg/provision/__init__.py": "",
    "pkg/provision/stacks.py": "from pkg.plan import topology\n",
    "pkg/lab/__init__.py": "",
    "pkg/lab/hosts.py": "import pkg.paths\n",
    "pkg/lab/driver.py": "from . import hosts\n",
    "pkg/cli/__init__.py": "",
    "pkg/cli/app.py": "from pkg.provision import stacks\n",
}


def test_a_clean_synthetic_package_passes(tmp_path: Path) -> None:
    root = write(tmp_path, SYNTHETIC)
    graph = import_graph(root, ("pkg",))
    assert graph["pkg.plan.topology"] == {"pkg.inventory.model"}
    assert violations(graph, "pkg") == []


@pytest.mark.parametrize(("module", "text", "why"), [
    ("pkg/inventory/model.py", "from pkg.provision import stacks\n",
     "pkg.inventory.model -> pkg.provision.stacks: inventory imports the later phase provision"),
    ("pkg/plan/topology.py", "def f():\n    from ..cli import app\n",
     "pkg.plan.topology -> pkg.cli.app: plan imports the later phase cli"),
    ("pkg/inventory/model.py", "import pkg.plan.topology\n",
     "pkg.inventory.model -> pkg.plan.topology: inventory imports the later phase plan"),
    ("pkg/cli/app.py", "from pkg.lab import hosts\n",
     "pkg.cli.app -> pkg.lab.hosts: only the lab driver imports the lab"),
    ("pkg/paths.py", "from pkg.provision import stacks\n",
     "pkg.paths -> pkg.provision.stacks: a base module imports a phase"),
])
def test_the_checker_fails_on_a_violation(tmp_path: Path, module: str, text: str,
                                          why: str) -> None:
    root = write(tmp_path, {**SYNTHETIC, module: text})
    assert why in violations(import_graph(root, ("pkg",)), "pkg")
