"""Read YAML safely: plain data only, within limits, and every value traceable to its line.

How a file becomes data, in one parse:

1. The bytes are read under a size limit and decoded as UTF-8.
2. libyaml (PyYAML's C parser; the pure-Python one if libyaml is missing) composes the node tree.
   No tag is resolved or constructed there: the builder below decides what each scalar is.
   Before composing, a cheap count bounds the nesting depth; only a file whose bound is high is
   checked exactly (libyaml's composer recurses in C and would crash on thousands of levels).
3. The builder walks the node tree once into dicts, lists and scalars. It accepts only plain
   data: no tag but ``!!str`` (and ``!!map``/``!!seq``), no merge keys, scalar keys only, no
   duplicate keys, at most :data:`MAX_DEPTH` levels and :data:`MAX_NODES` values after alias
   expansion. It types plain scalars the YAML 1.1 way (as PyYAML, Ansible and most tools do) but
   never lets a YAML 1.1 pitfall through silently: ``NO``, ``yes``, ``on``, ``0402``, ``1:30``,
   ``1_000``, ``0x1F``, ``1.0e5`` become :class:`Flagged` values that the model rejects whatever
   type it wants there, and the loader reports them at their line with what to write instead.
   Numbers with a fraction are read exactly (``Decimal``), so ``95.50`` stays 95.50.
4. The node tree is kept, so any problem found later (by the model or a cross-file rule) is
   located by walking it along the problem's field path: no second parse.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from yaml.events import CollectionEndEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fellesdrift.inventory.problems import Problem

#: Largest inventory file read, in bytes (a municipality of 25 sites is about 15 KiB).
MAX_BYTES = 1024 * 1024
#: Deepest nesting of mappings and lists (the model needs 5).
MAX_DEPTH = 64
#: Most values in one file after every alias is expanded (a 25-site file has about 1,700).
MAX_NODES = 200_000
#: Longest plain scalar read as a number, in characters. The largest number a field takes is an
#: AS number (10 digits); a longer one is refused before Python converts it (converting a
#: 5,000-digit number raises, a huge base-60 number overflows).
MAX_NUMBER_LENGTH = 32
#: Most problems reported for one file; the rest are summed up in one line.
MAX_PROBLEMS_PER_FILE = 100
#: A file whose count of nesting characters is at most this is composed without the exact depth
#: check. libyaml's composer survives about 20,000 levels; this leaves a wide margin.
_CHEAP_DEPTH_BOUND = 2000

STR_TAG = "tag:yaml.org,2002:str"
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})

Loc = tuple[str | int, ...]


class Flagged:
    """A scalar that may not reach the model as a value. The model rejects it at whatever type it
    expects, and the loader reports the rule with the scalar's line and what to write instead."""

    __slots__ = ("text", "rule", "reading")

    def __init__(self, text: str, rule: str, reading: str) -> None:
        self.text = text
        self.rule = rule
        self.reading = reading

    def __repr__(self) -> str:
        return self.text


#: A value whose problem the builder has reported already.
REPORTED = Flagged("", "", "")


def short_tag(tag: str) -> str:
    """tag:yaml.org,2002:int as !!int, the way it is written."""
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") \
        else tag


def _composer_class() -> type[Any]:
    base: Any = getattr(yaml, "CSafeLoader", None) if yaml.__with_libyaml__ else yaml.SafeLoader

    class Composer(base):  # type: ignore[misc]
        """A loader that composes nodes and leaves every implicit tag unresolved (None)."""

        def resolve(self, kind: Any, value: Any, implicit: Any) -> None:
            return None

        # Called for every node, and there is no path resolver to maintain: C built-ins that
        # take the same arguments and do nothing useful cost less than Python no-ops.
        descend_resolver = staticmethod(operator.is_)
        ascend_resolver = staticmethod(tuple)

    return Composer


_Composer = _composer_class()

# --- Typing plain scalars ---------------------------------------------------------------------

#: Plain scalars starting with one of these may be numbers or dates.
_NUMERIC_FIRST = frozenset("0123456789-+.")
_NUMERIC = re.compile(r"""
   (?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})\Z
 | (?P<int>[-+]?(?:0|[1-9][0-9]*))\Z
 | (?P<zero>[-+]?0[0-9_]+)\Z
 | (?P<other>[-+]?(?:0b[01_]+|0x[0-9a-fA-F_]+|0o[0-7_]+|[1-9][0-9_]*))\Z
 | (?P<sexagesimal>[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?)\Z
 # YAML 1.1 floats need a dot and a signed exponent; YAML 1.2 also reads 1e5 and 1.0e5.
 | (?P<float>[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+][0-9]+)?)\Z
 | (?P<float12>[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+)\Z
 | (?P<infnan>[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z
 | (?P<timestamp>[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}
     (?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?)\Z
""", re.VERBOSE)


def _bool_word(word: str, meaning: bool) -> Flagged:
    return Flagged(word, "yaml-boolean-word",
                   f"YAML 1.1 reads {word} as the boolean {str(meaning).lower()}")


#: Plain words that are not text in YAML 1.1; every other word starting with a letter is text.
_WORDS: dict[str, Any] = {
    **dict.fromkeys(("~", "null", "Null", "NULL")),
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **{w: _bool_word(w, True) for w in ("yes", "Yes", "YES", "on", "On", "ON", "y", "Y")},
    **{w: _bool_word(w, False) for w in ("no", "No", "NO", "off", "Off", "OFF", "n", "N")},
}


def plain_scalar(v: str) -> Any:
    """The value of a plain (unquoted) scalar: YAML 1.1 typing, with every pitfall flagged."""
    if not v:
        return None
    if v[0] in _NUMERIC_FIRST:
        return _numeric(v)
    return _WORDS.get(v, v)


#: The kinds of numeric scalar whose length :data:`MAX_NUMBER_LENGTH` bounds.
_SIZED = frozenset({"int", "zero", "other", "sexagesimal", "float", "float12"})


def _too_large(v: str, kind: str | None) -> Flagged:
    what = "base-60 number" if kind == "sexagesimal" else "number"
    return Flagged(v, "number-too-large", f"a {what} of {len(v)} characters, more than any "
                   f"field takes (at most {MAX_NUMBER_LENGTH})")


def _numeric(v: str) -> Any:
    if v.isdigit() and v.isascii():
        if len(v) > MAX_NUMBER_LENGTH:
            return _too_large(v, "int")
        return int(v) if v[0] != "0" or len(v) == 1 else _leading_zero(v)
    m = _NUMERIC.match(v)
    if m is None:
        return v
    kind = m.lastgroup
    if kind in _SIZED and len(v) > MAX_NUMBER_LENGTH and v.strip("+-") != ".":
        return _too_large(v, kind)
    if kind == "date":
        try:
            return date.fromisoformat(v)
        except ValueError:
            return Flagged(v, "format", f"{v} looks like a date but is not a real one")
    if kind == "int":
        return int(v)
    if kind == "zero":
        return _leading_zero(v)
    if kind == "other":
        return Flagged(v, "yaml-number-format", _other_reading(v))
    if kind == "sexagesimal":
        return Flagged(v, "yaml-sexagesimal",
                       f"YAML 1.1 reads {v} as a base-60 number ({_sexagesimal(v)})")
    if kind == "float":
        if v.strip("+-") == ".":
            return v
        if "_" in v:
            return Flagged(v, "yaml-number-format",
                           f"YAML 1.1 reads {v} as a number without its underscores")
        try:
            number = Decimal(v)
        except InvalidOperation:  # an exponent beyond what Decimal holds
            return _too_large(v, kind)
        if number and number.adjusted() > MAX_NUMBER_LENGTH:
            return Flagged(v, "number-too-large", f"YAML reads {v} as a number with "
                           f"{number.adjusted() + 1} digits before the point, more than any "
                           "field takes")
        return number
    if kind == "float12":
        return Flagged(v, "yaml-number-format",
                       f"YAML 1.2 reads {v} as a number but YAML 1.1 as text")
    if kind == "infnan":
        meaning = "not a number" if "n" in v.lower().replace("inf", "") else "infinity"
        return Flagged(v, "number-not-finite", f"YAML 1.1 reads {v} as {meaning}, which no "
                       "field takes")
    return Flagged(v, "wrong-type", f"YAML reads {v} as a date and time")


def _other_reading(v: str) -> str:
    body = v.lstrip("+-").replace("_", "")
    sign = "-" if v.startswith("-") else ""
    if body.startswith("0o"):
        return f"YAML 1.2 reads {v} as the octal number {sign}{int(body[2:] or '0', 8)}, " \
            "YAML 1.1 as text"
    base = {"0x": (16, "hexadecimal"), "0b": (2, "binary")}.get(body[:2])
    if base is not None:
        return f"YAML 1.1 reads {v} as the {base[1]} number {sign}{int(body[2:] or '0', base[0])}"
    return f"YAML 1.1 reads {v} as the number {sign}{body}, YAML 1.2 as text"


def _leading_zero(v: str) -> Flagged:
    digits = v.lstrip("+-").replace("_", "")
    if all(c in "01234567" for c in digits):
        reading = (f"YAML 1.1 reads {v} as the octal number {int(digits, 8)}, "
                   f"YAML 1.2 as {int(digits)}")
    else:
        reading = f"YAML 1.1 reads {v} as text, YAML 1.2 as the number {int(digits)}"
    return Flagged(v, "yaml-octal", reading)


def _sexagesimal(v: str) -> str:
    sign = -1 if v.startswith("-") else 1
    total = 0.0
    for part in v.lstrip("+-").replace("_", "").split(":"):
        total = total * 60 + float(part)
    value = sign * total
    return str(int(value)) if value == int(value) else str(value)


# --- The document -----------------------------------------------------------------------------


@dataclass
class Document:
    """A file read into plain data, with its node tree to locate any value by field path.

    Once a file has passed its own checks, :meth:`release` drops the node tree (most files never
    need it again, and freeing it early keeps memory and time down); a later problem, such as a
    cross-file one, composes it again from the text. The text already passed the limits."""

    file: str
    text: str
    tree: Node | None
    data: Any
    #: False when reading found problems already (duplicate keys, tags): the data may be
    #: validated for more problems, but never used.
    clean: bool = True

    @property
    def root(self) -> Node:
        if self.tree is None:
            loader = _Composer(self.text)
            try:
                self.tree = loader.get_single_node()
            finally:
                loader.dispose()
            assert self.tree is not None
        return self.tree

    def release(self) -> None:
        self.tree = None

    def node(self, loc: Sequence[str | int], key: bool = False) -> tuple[Node, bool]:
        """The node at ``loc`` (its key node if ``key``), or the deepest node on the way there and
        False."""
        node = self.root
        last = len(loc) - 1
        for i, part in enumerate(loc):
            if isinstance(node, MappingNode):
                for k, v in node.value:
                    if isinstance(k, ScalarNode) and k.value == str(part):
                        node = k if key and i == last else v
                        break
                else:
                    return node, False
            elif isinstance(node, SequenceNode) and isinstance(part, int) \
                    and 0 <= part < len(node.value):
                node = node.value[part]
            else:
                return node, False
        return node, True

    def at(self, loc: Sequence[str | int], field: str, message: str, rule: str,
           key: bool = False) -> Problem:
        """A problem located at the node on ``loc`` (or the deepest node on the way there)."""
        node, _ = self.node(loc, key)
        mark = node.start_mark
        return Problem(self.file, mark.line + 1, mark.column + 1, field, message, rule)

    def source(self, loc: Sequence[str | int]) -> str | None:
        """The text of the scalar at ``loc`` as written, if there is one."""
        node, found = self.node(loc)
        return node.value if found and isinstance(node, ScalarNode) else None


class _Rejected(Exception):
    """A file that cannot be read further: where (0-based line and column), what, which rule."""

    def __init__(self, where: Node | tuple[int, int], message: str, rule: str) -> None:
        super().__init__(message)
        self.line, self.column = (where if isinstance(where, tuple)
                                  else (where.start_mark.line, where.start_mark.column))
        self.message = message
        self.rule = rule


class _Builder:
    """Walks a node tree into plain data (see the module documentation)."""

    def __init__(self, file: str, problems: list[Problem], aliases: bool) -> None:
        self.file = file
        self.problems = problems
        # Without a '*' in the text there is no alias, and every node is visited once.
        self.aliases = aliases
        self.count = 0
        self.done: dict[int, tuple[Any, int]] = {}
        self.busy: set[int] = set()

    def problem(self, node: Node, field: Loc, message: str, rule: str) -> None:
        mark = node.start_mark
        self.problems.append(Problem(self.file, mark.line + 1, mark.column + 1,
                                     ".".join(map(str, field)), message, rule))

    def build(self, node: Node, loc: Loc) -> Any:
        if node.__class__ is ScalarNode:
            self.count += 1
            if node.tag is not None:
                return self.tagged(node, loc)
            return node.value if node.style else plain_scalar(node.value)
        if len(loc) >= MAX_DEPTH:
            raise _Rejected(node, f"nested deeper than {MAX_DEPTH} levels", "yaml-too-deep")
        if node.tag is not None and node.tag not in _COLLECTION_TAGS:
            return self.reject(node, loc, f"the tag {short_tag(node.tag)} is not allowed; "
                               "inventories hold plain data only", "yaml-tag")
        if self.aliases:
            return self.shared(node, loc)
        return self.collection(node, loc)

    def collection(self, node: Node, loc: Loc) -> Any:
        self.count += 1 + len(node.value) if node.__class__ is MappingNode else 1
        if node.__class__ is not MappingNode:
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        out: dict[str, Any] = {}
        for key, value in node.value:
            if key.__class__ is not ScalarNode:
                self.reject(key, loc, "a key must be a plain name, not a list or mapping",
                            "yaml-key")
                continue
            name = key.value
            if name in out or (name == "<<" and not key.style):
                self.bad_key(node, key, (*loc, name))
                continue
            # Most values are untagged scalars: type them here, without a call to build().
            if value.__class__ is ScalarNode and value.tag is None:
                v = value.value
                if value.style:
                    out[name] = v
                elif v and v[0] not in _NUMERIC_FIRST:  # plain_scalar, inlined for words
                    out[name] = _WORDS.get(v, v)
                else:
                    out[name] = plain_scalar(v)
            else:
                out[name] = self.build(value, (*loc, name))
        return out

    def bad_key(self, node: MappingNode, key: ScalarNode, loc: Loc) -> None:
        if key.value == "<<" and not key.style:
            self.reject(key, loc, "merge keys (<<) are not allowed; write the fields out",
                        "yaml-merge-key")
            return
        first = next(k for k, _ in node.value if isinstance(k, ScalarNode) and k.value == key.value)
        self.problem(key, loc, f"duplicate key (first at line {first.start_mark.line + 1}); "
                     "keep one of them", "duplicate-key")

    def shared(self, node: Node, loc: Loc) -> Any:
        """Build a collection that an alias may refer to again: built once, counted each time."""
        ident = id(node)
        if ident in self.done:
            value, size = self.done[ident]
            self.count += size
            if self.count > MAX_NODES:
                raise _Rejected(node, f"aliases expand this file beyond {MAX_NODES} values",
                                "yaml-alias-expansion")
            return value
        if ident in self.busy:
            raise _Rejected(node, "an alias refers to a mapping or list that contains it",
                            "yaml-alias-expansion")
        self.busy.add(ident)
        before = self.count
        value = self.collection(node, loc)
        self.busy.discard(ident)
        self.done[ident] = (value, self.count - before)
        if self.count > MAX_NODES:
            raise _Rejected(node, f"aliases expand this file beyond {MAX_NODES} values",
                            "yaml-alias-expansion")
        return value

    def tagged(self, node: ScalarNode, loc: Loc) -> Any:
        if node.tag == STR_TAG:
            return node.value
        return self.reject(node, loc, f"the tag {short_tag(node.tag)} is not allowed; "
                           "inventories hold plain data only (quote the value, or write !!str, "
                           "to force text)", "yaml-tag")

    def reject(self, node: Node, loc: Loc, message: str, rule: str) -> Flagged:
        """Report a node now; the model will see a value it rejects, reported already."""
        self.problem(node, loc, message, rule)
        return REPORTED


def _nesting_bound(text: str) -> int:
    """An upper bound of the nesting depth: every nested collection needs one of these."""
    return sum(text.count(c) for c in "[{:-?")


def _too_deep(text: str) -> tuple[int, int] | None:
    """Where the document first nests deeper than MAX_DEPTH, by libyaml's event parser (which
    keeps its own stack and does not recurse)."""
    loader = _Composer(text)
    try:
        depth = 0
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, CollectionStartEvent):
                depth += 1
                mark = event.start_mark
                if depth > MAX_DEPTH and mark is not None:
                    return mark.line, mark.column
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
        return None
    finally:
        loader.dispose()


def _within(text: str, line: int, column: int) -> tuple[int, int]:
    """A position at the end of the stream is put at the end of the last line."""
    lines = text.split("\n")
    if line <= len(lines):
        return line, column
    return len(lines), len(lines[-1]) + 1


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - start + 1


def read(path: Path, problems: list[Problem]) -> Document | None:
    """Read one file; on failure append its problems and return None."""
    file = str(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        problems.append(Problem(file, 1, 1, "", f"cannot read the file: {e.strerror}", "io"))
        return None
    if len(raw) > MAX_BYTES:
        problems.append(Problem(file, 1, 1, "", f"larger than {MAX_BYTES // 1024} KiB; an "
                                "inventory file is a few KiB per site", "too-large"))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line, col = _line_col(raw, e.start)
        problems.append(Problem(file, line, col, "", "not UTF-8 text; save the file as UTF-8",
                                "encoding"))
        return None
    return parse(text, file, problems)


def parse(text: str, file: str, problems: list[Problem]) -> Document | None:
    """Parse YAML text into a :class:`Document`; on failure append problems and return None."""
    text = text.removeprefix("\ufeff")
    before = len(problems)
    try:
        if (_nesting_bound(text) > (_CHEAP_DEPTH_BOUND if yaml.__with_libyaml__ else MAX_DEPTH)
                and (deep := _too_deep(text)) is not None):
            raise _Rejected(deep, f"nested deeper than {MAX_DEPTH} levels", "yaml-too-deep")
        loader = _Composer(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
        if root is None:
            problems.append(Problem(file, 1, 1, "", "the file is empty; it needs the fields of "
                                    "an inventory file", "not-a-mapping"))
            return None
        builder = _Builder(file, problems, aliases="*" in text)
        data = builder.build(root, ())
    except _Rejected as e:
        problems.append(Problem(file, e.line + 1, e.column + 1, "", e.message, e.rule))
        return None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = _within(text, mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(str(s) for s in (e.context, e.problem) if s)
        problems.append(Problem(file, line, col, "", f"not valid YAML: {what}", "yaml-syntax"))
        return None
    except yaml.YAMLError as e:
        # Reader errors (control characters and the like) carry a character position.
        position = getattr(e, "position", None)
        line, col = (1, 1)
        if isinstance(position, int):
            line = text.count("\n", 0, position) + 1
            col = position - (text.rfind("\n", 0, position) + 1) + 1
        reason = getattr(e, "reason", None) or str(e).splitlines()[0]
        problems.append(Problem(file, line, col, "", f"not valid YAML: {reason}", "yaml-syntax"))
        return None
    except RecursionError:
        problems.append(Problem(file, 1, 1, "", f"nested deeper than {MAX_DEPTH} levels",
                                "yaml-too-deep"))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(file, 1, 1, "", "expected a mapping of fields at the top "
                                "(name: value lines)", "not-a-mapping"))
        return None
    return Document(file, text, root, data, clean=len(problems) == before)
