"""Load and validate inventory files into the model, with errors that point at file:line.

Only plain YAML data is accepted (the safe loader builds no objects). Every problem of every file
is collected and reported at once as an :class:`InventoryError`; nothing downstream runs on a bad
inventory.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .model import Inventory, Municipality, OperationsCentre

CENTRE_FILE = "operations-centre.yaml"


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    field: str
    message: str
    rule: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message} [{self.rule}]"


class InventoryError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


Path_ = tuple[str | int, ...]


def _marks(node: yaml.Node, path: Path_, out: dict[Path_, yaml.Mark], file: str,
           problems: list[Problem]) -> None:
    """Record where each value starts, and report duplicate keys."""
    out[path] = node.start_mark
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            name = key.value
            if name in seen:
                problems.append(Problem(file, key.start_mark.line + 1, key.start_mark.column + 1,
                                        ".".join(map(str, (*path, name))),
                                        f"duplicate key (first at line {seen[name]}); keep one",
                                        "duplicate-key"))
            seen[name] = key.start_mark.line + 1
            out[(*path, name, "<key>")] = key.start_mark
            _marks(value, (*path, name), out, file, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _marks(item, (*path, i), out, file, problems)


@dataclass
class Document:
    file: str
    data: Any
    marks: dict[Path_, yaml.Mark]

    def at(self, path: Iterable[str | int], field: str, message: str, rule: str) -> Problem:
        """A problem located at the deepest known node on ``path``."""
        loc = tuple(path)
        while loc not in self.marks and loc:
            loc = loc[:-1]
        mark = self.marks.get(loc)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return Problem(self.file, line, col, field, message, rule)


def read_document(path: Path, problems: list[Problem]) -> Document | None:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506 - SafeLoader
    except OSError as e:
        problems.append(Problem(file, 1, 1, "", f"cannot read the file: {e.strerror}", "io"))
        return None
    except UnicodeDecodeError:
        problems.append(Problem(file, 1, 1, "", "not UTF-8 text; save it as UTF-8", "encoding"))
        return None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(Problem(file, line, col, "", f"not valid YAML: {e.problem}", "yaml-syntax"))
        return None
    except yaml.YAMLError as e:
        problems.append(Problem(file, 1, 1, "", f"not valid YAML: {e}", "yaml-syntax"))
        return None
    marks: dict[Path_, yaml.Mark] = {}
    if node is not None:
        _marks(node, (), marks, file, problems)
    if not isinstance(data, dict):
        problems.append(Problem(file, 1, 1, "", "expected a mapping of fields at the top",
                                "schema"))
        return None
    return Document(file, data, marks)


def _schema_problems(doc: Document, err: ValidationError) -> Iterator[Problem]:
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        field = ".".join(str(p) for p in loc)
        message = e["msg"]
        if e["type"] == "extra_forbidden":
            message = "unknown field; check the spelling against the schema"
            yield doc.at((*loc, "<key>"), field, message, "unknown-field")
            continue
        if e["type"] == "missing":
            message = "required field is missing"
        elif "input" in e and e["type"] != "missing":
            message = f"{message} (got {e['input']!r})"
        yield doc.at(loc, field, message, "schema")


def _cross_file(centre: OperationsCentre, munis: list[tuple[Document, Municipality]]
                ) -> Iterator[Problem]:
    aggregates = [ipaddress.IPv4Network(a) for a in centre.address_plan.aggregates]
    owners: list[tuple[ipaddress.IPv4Network, str, Document, Path_]] = []
    codes: dict[str, str] = {}
    for doc, m in munis:
        stem = Path(doc.file).stem
        if m.slug != stem:
            yield doc.at(("slug",), "slug", f"must equal the file name {stem!r}", "slug-file-name")
        if m.code in codes:
            yield doc.at(("code",), "code", f"code {m.code} is also used by {codes[m.code]}",
                         "unique-code")
        codes.setdefault(m.code, doc.file)
        for i, site in enumerate(m.sites):
            loc: Path_ = ("sites", i, "lan_prefix")
            field = f"sites.{i}.lan_prefix"
            if not any(site.lan.subnet_of(a) for a in aggregates):
                plan = ", ".join(map(str, aggregates))
                yield doc.at(loc, field, f"{site.lan} lies outside the address plan ({plan})",
                             "prefix-in-plan")
            for net, who, other, _ in owners:
                if net.overlaps(site.lan):
                    yield doc.at(loc, field, f"{site.lan} overlaps {net} of {who} ({other.file})",
                                 "prefix-overlap")
            owners.append((site.lan, f"{m.slug}/{site.id}", doc, loc))


def load(paths: Iterable[Path]) -> Inventory:
    """Load the centre file and municipality files under ``paths`` (files or folders)."""
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(p.glob("*.yaml")) if p.is_dir() else [p])
    problems: list[Problem] = []
    centre: OperationsCentre | None = None
    munis: list[tuple[Document, Municipality]] = []
    centre_files = [f for f in files if f.name == CENTRE_FILE]
    if not centre_files:
        where = ", ".join(str(p) for p in paths)
        problems.append(Problem(where, 1, 1, "", f"no {CENTRE_FILE} found; the centre's "
                                "address plan is needed to validate municipalities",
                                "centre-missing"))
    for f in files:
        doc = read_document(f, problems)
        if doc is None:
            continue
        try:
            if f.name == CENTRE_FILE:
                centre = OperationsCentre.model_validate(doc.data)
            else:
                munis.append((doc, Municipality.model_validate(doc.data)))
        except ValidationError as e:
            problems.extend(_schema_problems(doc, e))
    if centre is not None:
        problems.extend(_cross_file(centre, munis))
    if problems or centre is None:
        raise InventoryError(problems)
    return Inventory(centre=centre, municipalities=[m for _, m in munis])
