"""The corpus of bad inventories: each case is reported at its file, line and rule, and only there.

A case is a folder under tests/unit/bad_inventories/ holding inventory files; every line that
must be reported ends with `# expect: <rule>`. The fixture centre is added unless the case has
its own operations-centre.yaml (or a .no-centre file). README says what the case is about.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from fellesdrift.inventory import load as inventory
from fellesdrift.inventory import rules
from fellesdrift.inventory.load import InventoryError

CORPUS = Path(__file__).parent / "bad_inventories"
CASES = sorted(p for p in CORPUS.iterdir() if p.is_dir())
EXPECT = re.compile(rb"# expect: ([a-z0-9-]+)")
PROBLEM = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?:(?P<field>[\w.-]+): )?"
                     r"(?P<message>.+) \[(?P<rule>[a-z0-9-]+)\]$", re.DOTALL)


def expected(case: Path) -> set[tuple[str, int, str]]:
    out = set()
    for f in case.iterdir():
        for number, line in enumerate(f.read_bytes().split(b"\n"), start=1):
            m = EXPECT.search(line)
            if m:
                out.add((f.name, number, m.group(1).decode()))
    return out


def test_the_corpus_is_large() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_inventory_is_reported_at_its_file_line_and_rule(
    case: Path, tmp_path: Path, fixture_inventories: Path
) -> None:
    folder = tmp_path / "inventories"
    shutil.copytree(case, folder)
    want = expected(case)
    if (case / ".no-centre").exists():
        want.add((folder.name, 1, "centre-missing"))
    elif not (case / "operations-centre.yaml").exists():
        shutil.copy(fixture_inventories / "operations-centre.yaml", folder)
    assert want, f"{case.name} marks no line with '# expect: <rule>'"

    with pytest.raises(InventoryError) as err:
        inventory.load([folder])

    found = {(Path(p.file).name, p.line, p.rule) for p in err.value.problems}
    assert found == want, "\n".join(str(p) for p in err.value.problems)
    for p in err.value.problems:
        m = PROBLEM.match(str(p))
        assert m, str(p)
        assert p.rule in rules.RULES
        assert len(p.message) > 10 and "Traceback" not in p.message


def test_every_rule_is_exercised() -> None:
    """Each rule id has a corpus case, or a test of its own named here."""
    hostile = Path(__file__).parent / "hostile"
    marked = re.compile(rb"# expect: ([a-z0-9-]+)@[0-9]+")
    covered = {rule for case in CASES for _, _, rule in expected(case)} | {"centre-missing"} | {
        m.group(1).decode() for f in hostile.glob("*/*.yaml")
        for m in marked.finditer(f.read_bytes())}
    elsewhere = {
        "io": "test_inventory.py::test_unreadable_file",
        "too-large": "test_inventory.py::test_too_large_file",
        "too-many-problems": "test_inventory.py::test_problems_per_file_are_capped",
        "unique-slug": "test_inventory.py::test_same_slug_in_two_folders",
        "centre-duplicate": "test_inventory.py::test_two_centres",
        "migrate-flow-style":
            "test_inventory_commands.py::test_migrate_refuses_what_it_cannot_edit",
        "invalid": "(fallback for model errors no rule names; none is known to reach it)",
    }
    assert set(rules.RULES) - covered == set(elsewhere)


def test_docs_list_every_rule() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "inventory.md").read_text()
    missing = [rule for rule in rules.RULES if f"| `{rule}` |" not in docs]
    assert missing == [], "add these to the rule table in docs/inventory.md"
