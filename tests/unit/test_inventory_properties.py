"""Properties: whatever a file holds, the loader answers with a model or its own error, and every
problem points at a line of the file."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fellesdrift import inventory
from fellesdrift.inventory import InventoryError
from fellesdrift.model import Inventory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inventories"
VINJE = yaml.safe_load((FIXTURES / "vinje.yaml").read_text())
CENTRE = yaml.safe_load((FIXTURES / "operations-centre.yaml").read_text())

# FD_EXAMPLES=5000 for a long run; 150 keeps the unit tier fast.
SETTINGS = settings(max_examples=int(os.environ.get("FD_EXAMPLES", "150")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def folder(files: dict[str, bytes]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        shutil.copy(FIXTURES / "operations-centre.yaml", path)
        for name, data in files.items():
            (path / name).write_bytes(data)
        yield path


def yaml_lines(data: bytes) -> int:
    """Lines as YAML counts them: besides \\n, also \\r, NEL, LS and PS end a line."""
    text = data.decode("utf-8", errors="replace")
    return len(re.split("\r\n|[\r\n\x85\u2028\u2029]", text))


def load_or_error(files: dict[str, bytes]) -> Inventory | InventoryError:
    """Load; any exception other than InventoryError fails the test."""
    with folder(files) as path:
        try:
            return inventory.load([path])
        except InventoryError as e:
            for p in e.problems:
                data = files.get(Path(p.file).name)
                if data is not None:
                    assert 1 <= p.line <= yaml_lines(data), str(p)
                    assert p.column >= 1
                assert p.rule and p.message, str(p)
            return e


# Text that looks a little like YAML is likelier to reach deep into the loader than noise.
yamlish = st.text(alphabet=st.sampled_from(
    list("abcyYnNo01789 \t\n:-[]{},&*!|>'\"#%@`?~._/+\\") + ["\u00e5", "\x00", "\ufeff", "\x85"]),
    max_size=300)


@SETTINGS
@given(st.one_of(st.text(max_size=300), yamlish))
def test_arbitrary_text(text: str) -> None:
    load_or_error({"vinje.yaml": text.encode("utf-8", "surrogatepass")})


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    load_or_error({"vinje.yaml": data})


@SETTINGS
@given(yamlish)
def test_arbitrary_centre(text: str) -> None:
    load_or_error({"operations-centre.yaml": text.encode("utf-8", "surrogatepass")})


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    st.sampled_from(["NO", "yes", "on", "0402", "1:30", "1_000", "0x1F", "1.10", "2024-02-30",
                     "2024-05-10", "TODO", "10.104.1.0/24", "~", "<<", "!!str", "*a", "&a"]),
    st.dates())
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


@SETTINGS
@given(values, st.booleans())
def test_arbitrary_yaml(value: Any, flow: bool) -> None:
    text = yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True)
    load_or_error({"vinje.yaml": text.encode()})


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = _replace(data[path[0]], path[1:], value)
    return copy


@SETTINGS
@given(st.data(), st.booleans())
def test_one_field_of_a_valid_file_replaced_by_anything(data: st.DataObject, quote: bool) -> None:
    """Changing one value anywhere in a valid file gives a model or problems at real lines."""
    path = data.draw(st.sampled_from(_paths(VINJE)[1:]))
    value = data.draw(values)
    changed = _replace(VINJE, path, value)
    text = yaml.safe_dump(changed, sort_keys=False, allow_unicode=True,
                          default_style='"' if quote else None)
    result = load_or_error({"vinje.yaml": text.encode()})
    if isinstance(result, InventoryError):
        assert result.problems


def test_the_untouched_file_loads() -> None:
    text = yaml.safe_dump(VINJE, sort_keys=False, allow_unicode=True)
    result = load_or_error({"vinje.yaml": text.encode(), "tokke.yaml":
                            (FIXTURES / "tokke.yaml").read_bytes()})
    assert isinstance(result, Inventory), result
    assert CENTRE["schema_version"] == 2
