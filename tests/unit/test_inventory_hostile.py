"""The corpus of hostile inventories: files written to reach beyond their own data (issue 11).

A case is a folder under tests/unit/hostile/ holding inventory files, like the corpus of bad
inventories (tests/unit/bad_inventories/): every line that must be reported ends with
`# expect: <rule>@<column>`, and exactly those problems (file, line, column, rule) are reported,
each as `file:line:col: field: what is wrong; what is right [rule]`, with no traceback. The
fixture centre (and the fixture municipalities, unless the case has a file of that name) is
added, so each case differs from a valid inventory in what it marks. README says what the case
tries.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from unittest.mock import patch

import pytest

from fellesdrift.cli import app as cli
from fellesdrift.inventory import load as inventory
from fellesdrift.inventory import rules
from fellesdrift.inventory.load import InventoryError

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "hostile"
CASES = sorted(p for p in CORPUS.iterdir() if p.is_dir())
EXPECT = re.compile(rb"# expect: ([a-z0-9-]+)@([0-9]+)")
PROBLEM = re.compile(r"^(?P<file>[^\n]+):(?P<line>\d+):(?P<col>\d+): (?P<field>[\w.-]+): "
                     r"(?P<message>[^\n]+) \[(?P<rule>[a-z0-9-]+)\]$")


def expected(case: Path) -> set[tuple[str, int, int, str]]:
    out = set()
    for f in case.glob("*.yaml"):
        for number, line in enumerate(f.read_bytes().split(b"\n"), start=1):
            m = EXPECT.search(line)
            if m:
                out.add((f.name, number, int(m.group(2)), m.group(1).decode()))
    return out


def folder_of(case: Path, tmp_path: Path, fixtures: Path) -> Path:
    folder = tmp_path / "inventories"
    shutil.copytree(case, folder, ignore=shutil.ignore_patterns("README"))
    for f in fixtures.glob("*.yaml"):
        if not (folder / f.name).exists():
            shutil.copy(f, folder)
    return folder


def test_the_corpus_covers_issue_11() -> None:
    names = {c.name for c in CASES}
    # Every line break str.splitlines() knows, and each kind of derived-name collision.
    for tag in ("lf", "cr", "vt", "ff", "fs", "gs", "rs", "nel", "ls", "ps"):
        assert f"text-line-break-{tag}" in names
    assert {"text-template-lookup-pipe", "text-template-raw", "text-line-break-pg-hba",
            "reserved-slug-core", "shared-host-named-like-a-router", "reserved-host-gis",
            "link-collision-two-municipalities", "address-of-the-core-router",
            "name-too-long-site", "centre-range-missing-backbone", "link-space-too-small",
            "name-too-long-ca-subject", "number-huge-integer", "number-huge-sexagesimal",
            "number-nan", "duplicate-area"} <= names
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_inventory_is_rejected_at_its_file_line_column_and_rule(
    case: Path, tmp_path: Path, fixture_inventories: Path
) -> None:
    want = expected(case)
    assert want, f"{case.name} marks no line with '# expect: <rule>@<column>'"
    folder = folder_of(case, tmp_path, fixture_inventories)

    with pytest.raises(InventoryError) as err:
        inventory.load([folder])

    found = {(Path(p.file).name, p.line, p.column, p.rule) for p in err.value.problems}
    assert found == want, "\n".join(str(p) for p in err.value.problems)
    for p in err.value.problems:
        shown = str(p)
        assert PROBLEM.match(shown), shown  # one line, with the field path
        assert p.rule in rules.RULES
        assert "; " in p.message  # what is wrong; what would be right


#: Through the real entry point in a process of its own (slow to start: a few cases).
CLI_CASES = ["text-template-lookup-pipe", "text-line-break-pg-hba", "number-huge-sexagesimal"]


@pytest.mark.parametrize("name", CLI_CASES)
def test_validate_exits_1_with_the_rule_and_no_traceback(
    name: str, tmp_path: Path, fixture_inventories: Path
) -> None:
    case = CORPUS / name
    folder = folder_of(case, tmp_path, fixture_inventories)
    done = subprocess.run([sys.executable, "-m", "fellesdrift", "validate", str(folder)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    for file, line, column, rule in expected(case):
        assert f"{folder / file}:{line}:{column}: " in done.stderr
        assert f"[{rule}]" in done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith("fix them and run validate again.")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_validate_json_names_every_problem(
    case: Path, tmp_path: Path, fixture_inventories: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fellesdrift validate --json`, as CI reads it: exit 1, each problem with its place."""
    folder = folder_of(case, tmp_path, fixture_inventories)
    with patch.object(sys, "argv", ["fellesdrift", "validate", "--json", str(folder)]), \
            pytest.raises(SystemExit) as exit_:
        cli.main()
    out = capsys.readouterr()
    assert exit_.value.code == 1 and "Traceback" not in out.err
    problems = json.loads(out.out)["problems"]
    assert {(Path(p["file"]).name, p["line"], p["column"], p["rule"]) for p in problems} == \
        expected(case)
