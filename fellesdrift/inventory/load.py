"""Load and validate inventory files into the model, with errors that point at file:line.

Each file is read once (:mod:`.safeyaml`), validated against the model, checked by its own
rules, and then all files are checked against each other (:mod:`.rules`). Every problem of every
file is collected and reported at once as an :class:`InventoryError`; nothing downstream runs on
a bad inventory. A problem names file:line:col, the field path, what is wrong and what would be
right, and a stable rule id (:data:`fellesdrift.rules.RULES`).
"""

from __future__ import annotations

import difflib
import gc
import types
import typing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from fellesdrift.inventory import rules, safeyaml
from fellesdrift.inventory.model import SCHEMA_VERSION, Inventory, Municipality, OperationsCentre
from fellesdrift.inventory.problems import InventoryError, Problem
from fellesdrift.inventory.safeyaml import Document, Flagged

__all__ = ["CENTRE_FILE", "Checked", "InventoryError", "Problem", "check", "files", "load"]

CENTRE_FILE = "operations-centre.yaml"
#: Text values starting with this are placeholders (written by `fellesdrift inventory migrate`)
#: and are reported until they are filled in.
PLACEHOLDER = "TODO"


@dataclass
class Checked:
    """The outcome of checking inventory files: the model when there is no problem."""

    inventory: Inventory | None
    problems: list[Problem]
    files: list[Path] = field(default_factory=list)


def files(paths: Iterable[Path]) -> list[Path]:
    """The inventory files under ``paths`` (files, or folders holding ``*.yaml``)."""
    paths = list(paths)
    if len(paths) == 1 and paths[0].is_dir():
        return sorted(paths[0].glob("*.yaml"))
    out: list[Path] = []
    seen: set[Path] = set()
    for p in paths:
        for f in sorted(p.glob("*.yaml")) if p.is_dir() else [p]:
            key = f.resolve()  # the same file named twice is read once
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def load(paths: Iterable[Path]) -> Inventory:
    """Load the centre file and municipality files under ``paths`` (files or folders)."""
    result = check(paths)
    if result.inventory is None:
        raise InventoryError(result.problems)
    return result.inventory


def check(paths: Iterable[Path]) -> Checked:
    """Check every file under ``paths``; never raises for a bad file."""
    paths = list(paths)
    found = files(paths)
    # Reading builds hundreds of thousands of small acyclic objects; the cyclic collector
    # would walk them again and again for nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _check(paths, found)
    finally:
        if collecting:
            gc.enable()


def _check(paths: list[Path], found: list[Path]) -> Checked:
    problems: list[Problem] = []
    centre: tuple[Document, OperationsCentre] | None = None
    munis: list[tuple[Document, Municipality]] = []
    centres = [f for f in found if f.name == CENTRE_FILE]
    if not centres:
        where = ", ".join(str(p) for p in paths) or "(no path)"
        problems.append(Problem(where, 1, 1, "", f"no {CENTRE_FILE} found; the centre's address "
                                "plan and catalogue are needed to check municipalities",
                                "centre-missing"))
    for extra in centres[1:]:
        problems.append(Problem(str(extra), 1, 1, "", f"a second {CENTRE_FILE} (the first is "
                                f"{centres[0]}); check one centre at a time", "centre-duplicate"))
    for f in found:
        is_centre = f.name == CENTRE_FILE
        if is_centre and f != centres[0]:
            continue
        doc = safeyaml.read(f, problems)
        if doc is None:
            continue
        model_type: type[BaseModel] = OperationsCentre if is_centre else Municipality
        model, file_problems = _validate(doc, model_type)
        doc.release()
        if model is not None and doc.clean and not file_problems:
            if isinstance(model, OperationsCentre):
                file_problems = list(rules.centre(doc, model))
                if not file_problems:
                    centre = (doc, model)
            elif isinstance(model, Municipality):
                file_problems = list(rules.municipality(doc, model))
                if not file_problems:
                    munis.append((doc, model))
        problems.extend(_capped(sorted(file_problems, key=lambda p: (p.line, p.column))))
    problems.extend(rules.across(centre[0] if centre else None, centre[1] if centre else None,
                                 munis))
    if problems or centre is None:
        return Checked(None, problems, found)
    inventory = Inventory.model_construct(centre=centre[1], municipalities=[m for _, m in munis])
    return Checked(inventory, [], found)


def _capped(problems: list[Problem]) -> list[Problem]:
    """At most MAX_PROBLEMS_PER_FILE problems, the last one saying how many more there are."""
    most = safeyaml.MAX_PROBLEMS_PER_FILE
    if len(problems) <= most:
        return problems
    last = problems[most - 1]
    return problems[:most - 1] + [Problem(last.file, last.line, last.column, "",
                                          f"… and {len(problems) - most + 1} more problems in "
                                          "this file", "too-many-problems")]


def _validate(doc: Document, model_type: type[BaseModel]
              ) -> tuple[BaseModel | None, list[Problem]]:
    version = doc.data.get("schema_version")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        return None, [_version_problem(doc, version)]
    model: BaseModel | None = None
    problems: list[Problem] = []
    try:
        model = model_type.model_validate(doc.data)
    except ValidationError as e:
        for error in e.errors(include_url=False):
            problem = _explain(doc, model_type, error)
            if problem is not None:
                problems.append(problem)
    if PLACEHOLDER in doc.text:
        problems.extend(_placeholders(doc, model_type, doc.data, ()))
    return model, problems


def _version_problem(doc: Document, version: Any) -> Problem:
    if version is None:
        return doc.at((), "schema_version", f"missing; add schema_version: {SCHEMA_VERSION} at "
                      "the top (an older file: run `fellesdrift inventory migrate`)",
                      "schema-version")
    loc = ("schema_version",)
    if isinstance(version, int) and not isinstance(version, bool) and 0 < version < SCHEMA_VERSION:
        return doc.at(loc, "schema_version", f"this file is schema_version {version}; upgrade it "
                      f"to {SCHEMA_VERSION} with `fellesdrift inventory migrate`",
                      "schema-version")
    return doc.at(loc, "schema_version", f"unknown schema_version {version!r}; this "
                  f"fellesdrift reads schema_version {SCHEMA_VERSION}", "schema-version")


def _placeholders(doc: Document, model_type: type[BaseModel], value: Any,
                  loc: tuple[str | int, ...]) -> Iterator[Problem]:
    if isinstance(value, str):
        if value.startswith(PLACEHOLDER):
            info = _expectation(model_type, _shape(loc))
            what = info.description or "its real value"
            example = f" (e.g. {_yaml(info.examples[0])})" if info.examples else ""
            yield doc.at(loc, _field(loc), f"a placeholder; fill in {_lower(what)}{example}",
                         "placeholder")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _placeholders(doc, model_type, v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _placeholders(doc, model_type, v, (*loc, i))


# --- Explaining the model's errors ------------------------------------------------------------

_RULE_OF_TYPE = {
    "missing": "missing-field",
    "extra_forbidden": "unknown-field",
    "literal_error": "not-allowed",
    "enum": "not-allowed",
    "string_pattern_mismatch": "format",
    "date_parsing": "format",
    "date_from_datetime_parsing": "format",
    "greater_than": "out-of-range",
    "greater_than_equal": "out-of-range",
    "less_than": "out-of-range",
    "less_than_equal": "out-of-range",
    "decimal_max_places": "out-of-range",
    "decimal_max_digits": "out-of-range",
    "decimal_whole_digits": "out-of-range",
    "finite_number": "out-of-range",
    "too_short": "length",
    "too_long": "length",
    "string_too_short": "length",
    "string_too_long": "length",
}

#: What a value of each expected type is, in words, by the model's error type.
_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "date_type": "a date, YYYY-MM-DD",
    "is_instance_of": "a number",
    "dict_type": "a mapping of fields",
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
    "list_type": "a list",
    "none_required": "nothing",
    "literal_error": "one of the allowed words",
    "string_pattern_mismatch": "text",
}


@dataclass(frozen=True)
class _Expectation:
    description: str | None
    examples: list[Any]
    fields: tuple[str, ...]  # the fields allowed where the value is a model


def _explain(doc: Document, model_type: type[BaseModel], error: ErrorDetails) -> Problem | None:
    kind = error["type"]
    loc = tuple(p for p in error["loc"] if p != "[key]")
    on_key = "[key]" in error["loc"]
    field = _field(loc)
    value = error.get("input")
    info = _expectation(model_type, _shape(loc))
    if isinstance(value, Flagged):
        if not value.rule:
            return None  # reported when the file was read
        advice = _advice(value.rule if kind == "int_type" else kind, value.text, info)
        return doc.at(loc, field, f"{value.reading}; {advice}", value.rule)
    if isinstance(value, str) and value.startswith(PLACEHOLDER):
        return None  # reported by _placeholders with what to fill in
    rule = _RULE_OF_TYPE.get(kind)
    if rule is None:
        if kind.endswith("_type") or kind in ("is_instance_of", "int_from_float"):
            rule = "wrong-type"
        else:
            rule = kind if kind in rules.RULES else "invalid"
    if kind == "missing":
        return doc.at(loc, field, f"missing; add {loc[-1]}: {_describe(info)}", rule)
    if kind == "extra_forbidden":
        parent = _expectation(model_type, _shape(loc[:-1]))
        name = str(loc[-1])
        close = difflib.get_close_matches(name, parent.fields, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        allowed = ", ".join(parent.fields)
        return doc.at(loc, field, f"unknown field; {hint}the fields here are: {allowed}", rule,
                      key=True)
    if rule == "wrong-type":
        expected = _EXPECTED.get(kind, "another type")
        source = doc.source(loc)
        got = _reading(value, source)
        hint = ""
        if expected == "text" and source is not None and not isinstance(value, (dict, list)):
            hint = f'; write it in quotes: "{source}"'
        elif expected in ("a number", "a whole number") and isinstance(value, str):
            bare = value.strip().replace(",", ".")
            if bare.replace(".", "", 1).isdigit():
                point = ", with a decimal point" if "," in value else ""
                hint = f"; write it without quotes{point}: {bare}"
        return doc.at(loc, field, f"got {got} where {expected} is expected{hint} "
                      f"({_describe(info)})", rule)
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        close = difflib.get_close_matches(str(value), _choices(expected), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        return doc.at(loc, field, f"{_reading(value, doc.source(loc))} is not allowed; "
                      f"expected one of {expected}{hint}", rule)
    if kind == "string_pattern_mismatch":
        return doc.at(loc, field, f"{_reading(value)} is not in the right format; expected "
                      f"{_describe(info)}", rule, key=on_key)
    message = error["msg"].replace("Input should be", "must be").replace("Value should", "must")
    ctx = error.get("ctx", {})
    if kind == "too_short" and isinstance(value, list):
        return doc.at(loc, field, f"has {len(value)} items; it needs at least "
                      f"{ctx.get('min_length', 1)} ({_describe(info)})", rule)
    if rule in ("out-of-range", "length"):
        shown = value if isinstance(value, int | Decimal) else _reading(value)
        return doc.at(loc, field, f"{shown} is out of range; {_lower(message)} "
                      f"({_describe(info)})", rule)
    return doc.at(loc, field, message, rule, key=on_key)


def _advice(kind: str, text: str, info: _Expectation) -> str:
    if kind in ("number-too-large", "number-not-finite"):
        return f"write a number within the field's range ({_describe(info)})"
    expected = _EXPECTED.get(kind, "a whole number" if kind.startswith("yaml-") else "")
    if expected in ("text", "one of the allowed words") or kind == "string_pattern_mismatch":
        shown = text if len(text) <= 40 else f"{text[:20]}…"
        return f'write it in quotes if you mean the text: "{shown}"'
    if expected == "true or false":
        return "write true or false"
    if expected == "a whole number":
        return "write a plain decimal number" + (
            " without leading zeros" if kind == "yaml-octal" else ", like 40")
    if expected.startswith("a date"):
        return "write a date as YYYY-MM-DD"
    return f"write {_describe(info)}"


def _describe(info: _Expectation) -> str:
    what = _lower(info.description) if info.description else "see the schema"
    if info.examples and "e.g." not in what:
        what += f", e.g. {_yaml(info.examples[0])}"
    return what


def _reading(value: Any, source: str | None = None) -> str:
    """How YAML read a value, in words."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, int):
        return f"the number {value}"
    if isinstance(value, Decimal | float):
        shown = str(float(value)) if isinstance(value, Decimal) else str(value)
        if source is not None and source != shown:
            return f"the number {source} (YAML 1.1 reads it as {shown})"
        return f"the number {source or shown}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _yaml(example: Any) -> str:
    """An example as it is written in YAML: text in quotes when YAML would read it otherwise."""
    if isinstance(example, str) and safeyaml.plain_scalar(example) != example:
        return f'"{example}"'
    return str(example)


def _lower(text: str) -> str:
    """Lower-case the first letter of a sentence, not of an acronym like IPv4."""
    return text[:1].lower() + text[1:] if text[1:2].islower() or text[1:2] == " " else text


def _choices(expected: str) -> list[str]:
    return [c.strip(" '") for c in expected.replace(" or ", ",").split(",") if c.strip(" '")]


def _field(loc: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in loc)


def _shape(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """A location with list indices set to 0, so one lookup serves every list item."""
    return tuple(0 if isinstance(p, int) else p for p in loc)


@lru_cache(maxsize=1024)
def _expectation(model_type: type[BaseModel], loc: tuple[str | int, ...]) -> _Expectation:
    """The description, examples and allowed fields of the value at ``loc`` in the model."""
    tp: Any = model_type
    info: FieldInfo | None = None
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            info = tp.model_fields.get(part)
            if info is None:
                return _Expectation(None, [], ())
            tp = info.annotation
            inner = _annotated_info(_unwrap_optional(tp))
            if inner is not None and info.description is None:
                info = inner  # e.g. `phone: Phone | None`: the description is Phone's
            continue
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is list and args:
            tp, info = args[0], _annotated_info(args[0])
        elif origin is dict and len(args) == 2:
            tp, info = args[1], _annotated_info(args[1])
        else:
            return _Expectation(None, [], ())
    tp = _unwrap(tp)
    fields = tuple(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else ()
    if info is None:
        return _Expectation(None, [], fields)
    description = info.description
    if description is None and isinstance(tp, type) and issubclass(tp, BaseModel):
        description = (tp.__doc__ or "").strip().splitlines()[0] if tp.__doc__ else None
    return _Expectation(description, list(info.examples or []), fields)


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _annotated_info(tp: Any) -> FieldInfo | None:
    if typing.get_origin(tp) is typing.Annotated:
        infos = [m for m in typing.get_args(tp)[1:] if isinstance(m, FieldInfo)]
        if infos:
            return FieldInfo.merge_field_infos(*infos)
    return None
