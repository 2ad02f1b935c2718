"""Every component of stacks/components/ is written the way Pulumi's component examples are:
one per module, ``__init__(self, name, args: <Component>Args, opts)`` with a frozen dataclass
of its inputs, and ``self.register_outputs({...})`` as the last statement of ``__init__``.

Read from the ast of each module (what the source says), with the dataclasses checked on the
imported classes; the checker is shown to catch each way of breaking the rule."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pulumi
import pytest

import stacks.components

PACKAGE = Path(stacks.components.__file__).parent
MODULES = sorted(p for p in PACKAGE.glob("*.py") if p.name != "__init__.py")


def _is_component(cls: ast.ClassDef) -> bool:
    return any(ast.unparse(base) in ("pulumi.ComponentResource", "ComponentResource")
               for base in cls.bases)


def problems(source: str) -> list[str]:
    """What breaks the rule in one module's source (components: classes deriving directly
    from pulumi.ComponentResource)."""
    found = []
    components = [c for c in ast.parse(source).body
                  if isinstance(c, ast.ClassDef) and _is_component(c)]
    if len(components) > 1:
        found.append(f"{len(components)} components in one module: "
                     f"{', '.join(c.name for c in components)}")
    for cls in components:
        init = next((f for f in cls.body if isinstance(f, ast.FunctionDef)
                     and f.name == "__init__"), None)
        if init is None:
            found.append(f"{cls.name} has no __init__")
            continue
        params = [(a.arg, a.annotation and ast.unparse(a.annotation)) for a in init.args.args]
        if params[1:3] != [("name", "str"), ("args", f"{cls.name}Args")] or \
                [a for a, _ in params[3:]] != ["opts"]:
            found.append(f"{cls.name}.__init__ takes {params[1:]}, not (name: str, "
                         f"args: {cls.name}Args, opts)")
        last = init.body[-1]
        if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
                and ast.unparse(last.value.func) == "self.register_outputs"
                and len(last.value.args) == 1 and isinstance(last.value.args[0], ast.Dict)):
            found.append(f"{cls.name}.__init__ ends with `{ast.unparse(last)}`, not "
                         "self.register_outputs({...})")
    return found


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_each_component_registers_its_outputs_last_and_takes_typed_args(module: Path) -> None:
    source = module.read_text(encoding="utf-8")
    assert problems(source) == []
    imported = importlib.import_module(f"stacks.components.{module.stem}")
    for cls in ast.parse(source).body:
        if isinstance(cls, ast.ClassDef) and _is_component(cls):
            args = getattr(imported, f"{cls.name}Args")
            assert dataclasses.is_dataclass(args), f"{cls.name}Args is not a dataclass"
            assert args.__dataclass_params__.frozen, f"{cls.name}Args is not frozen"
            assert getattr(stacks.components, cls.name) is getattr(imported, cls.name)


def test_every_component_the_package_exports_is_checked() -> None:
    checked = {c.name for m in MODULES for c in ast.parse(m.read_text()).body
               if isinstance(c, ast.ClassDef) and _is_component(c)}
    exported = {name for name in stacks.components.__all__
                if isinstance(cls := getattr(stacks.components, name), type)
                and issubclass(cls, pulumi.ComponentResource)}
    assert exported and checked == exported


GOOD = '''
class Site(pulumi.ComponentResource):
    def __init__(self, name: str, args: SiteArgs, opts: Options = None) -> None:
        super().__init__("t:index:Site", name, None, opts)
        self.register_outputs({"hosts": []})
'''


@pytest.mark.parametrize(("source", "message"), [
    (GOOD.replace('        self.register_outputs({"hosts": []})\n',
                  '        self.register_outputs({"hosts": []})\n        self.more = 1\n'),
     "ends with `self.more = 1`"),
    (GOOD.replace('        self.register_outputs({"hosts": []})\n', ''),
     "ends with `super().__init__("),
    (GOOD.replace("args: SiteArgs", "args: dict"), "not (name: str, args: SiteArgs, opts)"),
    (GOOD.replace("args: SiteArgs, ", "inventory: Inventory, driver: Driver, "),
     "not (name: str, args: SiteArgs, opts)"),
    (GOOD + GOOD.replace("Site", "Link"), "2 components in one module: Site, Link"),
])
def test_the_checker_catches_each_break(source: str, message: str) -> None:
    assert problems(GOOD) == []
    assert any(message in p for p in problems(source)), problems(source)
