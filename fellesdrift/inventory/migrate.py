"""Upgrade inventory files from an older schema_version, keeping their comments and layout.

A migration edits the text of a file (it never re-dumps YAML), so comments, order and quoting
survive. Each step upgrades one version; :data:`STEPS` chains them up to the current
:data:`~fellesdrift.model.SCHEMA_VERSION`.

Schema 1 → 2 (the one step so far). Version 1 knew a municipality's code, name, slug and sites
(id, name, kind, LAN prefix), and the centre's address plan. Version 2 adds what a migration
cannot know: contacts, subscriptions and users per service area; each site's address, users and
broadband link; the centre's service levels, services and providers. The migration writes those
fields with ``TODO`` placeholders. A placeholder is an error (rule ``placeholder``), so after
migrating, ``fellesdrift validate`` lists every value still to fill in, at its line, with what
belongs there; nothing half-known reaches the pipeline. A site's router (``device``) is optional
in version 2 and is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fellesdrift.inventory import safeyaml
from fellesdrift.inventory.load import CENTRE_FILE, PLACEHOLDER, files
from fellesdrift.inventory.model import SCHEMA_VERSION
from fellesdrift.inventory.problems import Problem, ProblemsError
from fellesdrift.inventory.schema import MODELINE_PREFIX, modeline


class MigrationError(ProblemsError):
    """A file that cannot be migrated, with the problems that say why."""

    consequence = "nothing was written"


@dataclass(frozen=True)
class Migration:
    """The outcome for one file."""

    file: Path
    before: int
    after: int
    text: str
    placeholders: int

    @property
    def changed(self) -> bool:
        return self.before != self.after


class _Edits:
    """Insertions and replacements at (0-based) line and column positions of the original
    text, applied together."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        for i, c in enumerate(text):
            if c == "\n":
                self.starts.append(i + 1)
        self.edits: list[tuple[int, int, str]] = []  # (start, end, new text)

    def offset(self, line: int, column: int) -> int:
        if line >= len(self.starts):
            return len(self.text)
        return self.starts[line] + column

    def replace(self, node: Node, new: str) -> None:
        start = self.offset(node.start_mark.line, node.start_mark.column)
        end = self.offset(node.end_mark.line, node.end_mark.column)
        self.edits.append((start, end, new))

    def insert_lines(self, before_line: int, block: str) -> None:
        """Insert whole lines before ``before_line`` (past the end: at the end of the text)."""
        if before_line >= len(self.starts) or self.offset(before_line, 0) >= len(self.text):
            at = len(self.text)
            prefix = "" if self.text.endswith("\n") or not self.text else "\n"
            self.edits.append((at, at, prefix + block))
        else:
            at = self.offset(before_line, 0)
            self.edits.append((at, at, block))

    def apply(self) -> str:
        text = self.text
        for start, end, new in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            text = text[:start] + new + text[end:]
        return text


def _last_line(node: Node) -> int:
    """The last line (0-based) that holds part of ``node``. A block collection ends where the
    next token starts, so follow its last value down to a scalar or a flow collection."""
    while isinstance(node, MappingNode | SequenceNode) and node.value \
            and not node.flow_style:
        last = node.value[-1]
        node = last[1] if isinstance(node, MappingNode) else last
    end = node.end_mark
    return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line


def _key(mapping: MappingNode, name: str) -> tuple[ScalarNode, Node] | None:
    for k, v in mapping.value:
        if isinstance(k, ScalarNode) and k.value == name:
            return k, v
    return None


def _block(lines: list[str], indent: int) -> str:
    pad = " " * indent
    return "".join(f"{pad}{line}\n" for line in lines)


def _block_style(node: Node, file: str, what: str) -> None:
    if getattr(node, "flow_style", False):
        mark = node.start_mark
        raise MigrationError([Problem(file, mark.line + 1, mark.column + 1, what,
                                      "migrate edits block-style YAML only; write this "
                                      "{…}/[…] in block style first", "migrate-flow-style")])


_NOTE = "# added by `fellesdrift inventory migrate` (schema 1 → 2): fill in every TODO"

_MUNICIPALITY_V2 = [
    f"contacts:  {_NOTE}",
    f"  - name: {PLACEHOLDER} who the centre talks to, a person or a function",
    "    role: it",
    f"    email: {PLACEHOLDER} e-mail address",
    "services:",
    f"  - service: {PLACEHOLDER} a service id from the centre's catalogue",
    f"    tier: {PLACEHOLDER} a service level the service is priced at",
    "users:",
    *(f"  {area}: {PLACEHOLDER}" for area in ("administration", "education", "health_care",
                                              "technical", "culture")),
]
_SITE_V2 = [
    f"address: {PLACEHOLDER} street address, postcode and place",
    f"users: {PLACEHOLDER}",
    "link:",
    f"  access: {PLACEHOLDER} fibre, radio or dsl",
    f"  provider: {PLACEHOLDER} a provider id from the centre's providers",
    f"  down_mbps: {PLACEHOLDER}",
    f"  up_mbps: {PLACEHOLDER}",
    f"  vlan: {PLACEHOLDER}",
]
_CENTRE_V2 = [
    f"service_levels:  {_NOTE}",
    "  - id: standard",
    "    name: Standard",
    f"    support_hours: {PLACEHOLDER} when the service desk answers, e.g. weekdays 08-16",
    f"    response_hours: {PLACEHOLDER}",
    f"    availability_percent: {PLACEHOLDER}",
    "services:",
    f"  - id: {PLACEHOLDER} a service id, e.g. drift",
    f"    name: {PLACEHOLDER}",
    f"    billing: {PLACEHOLDER} per_user or per_site",
    "    prices:",
    f"      standard: {PLACEHOLDER}",
    "providers:",
    f"  - id: {PLACEHOLDER} a provider id, e.g. vtk",
    f"    name: {PLACEHOLDER}",
    f"    handoff: {PLACEHOLDER} where its links meet the centre",
]


def _v1_to_v2(doc: safeyaml.Document, file: Path) -> str:
    root = doc.root
    assert isinstance(root, MappingNode)
    _block_style(root, doc.file, "")
    edits = _Edits(doc.text)
    version = _key(root, "schema_version")
    assert version is not None
    edits.replace(version[1], "2")
    indent = root.start_mark.column
    if file.name == CENTRE_FILE:
        edits.insert_lines(_last_line(root) + 1, _block(_CENTRE_V2, indent))
        return edits.apply()
    sites = _key(root, "sites")
    before = sites[0].start_mark.line if sites else _last_line(root) + 1
    edits.insert_lines(before, _block(_MUNICIPALITY_V2, indent))
    if sites is not None and isinstance(sites[1], SequenceNode):
        _block_style(sites[1], doc.file, "sites")
        for i, site in enumerate(sites[1].value):
            if not isinstance(site, MappingNode) or not site.value:
                continue
            _block_style(site, doc.file, f"sites.{i}")
            edits.insert_lines(_last_line(site) + 1, _block(_SITE_V2, site.start_mark.column))
    return edits.apply()


#: From each version to the next.
STEPS: dict[int, Callable[[safeyaml.Document, Path], str]] = {1: _v1_to_v2}


def _read(text: str, file: Path) -> tuple[safeyaml.Document, int]:
    problems: list[Problem] = []
    doc = safeyaml.parse(text, str(file), problems)
    if doc is None or problems:
        raise MigrationError(problems)
    version = doc.data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or not (
            0 < version <= SCHEMA_VERSION):
        raise MigrationError([doc.at(("schema_version",), "schema_version",
                                     f"cannot migrate from schema_version {version!r}; this "
                                     f"fellesdrift migrates 1 … {SCHEMA_VERSION}",
                                     "schema-version")])
    return doc, version


def _with_modeline(text: str, file: Path) -> str:
    if any(line.startswith(MODELINE_PREFIX) for line in text.splitlines()):
        return text
    return f"{modeline(file)}\n{text}"


def migrate_text(text: str, file: Path) -> Migration:
    """The text of ``file`` upgraded to the current schema version (unchanged if current)."""
    doc, before = _read(text, file)
    version = before
    while version < SCHEMA_VERSION:
        text = STEPS[version](doc, file)
        version += 1
        if version < SCHEMA_VERSION:
            doc, _ = _read(text, file)
    if version != before:
        text = _with_modeline(text, file)
    placeholders = text.count(f": {PLACEHOLDER}") - doc.text.count(f": {PLACEHOLDER}") \
        if version != before else 0
    return Migration(file, before, version, text, placeholders)


def migrate(paths: Iterable[Path], write: bool = True) -> list[Migration]:
    """Migrate every inventory file under ``paths``; write the changed ones unless told not to.

    Every file is checked before any is written: either all can be migrated, or none is.
    """
    results: list[Migration] = []
    problems: list[Problem] = []
    for f in files(paths):
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(str(f), 1, 1, "", f"cannot read the file: {e}", "io"))
            continue
        try:
            results.append(migrate_text(text, f))
        except MigrationError as e:
            problems.extend(e.problems)
    if problems:
        raise MigrationError(problems)
    if write:
        for r in results:
            if r.changed:
                r.file.write_text(r.text, encoding="utf-8")
    return results
