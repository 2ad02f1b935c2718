"""The inventory commands as a user runs them: validate, new, schema, inventory migrate."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from unittest.mock import patch

import pytest

from fellesdrift.cli import app as cli
from fellesdrift.inventory import load as inventory
from fellesdrift.inventory import migrate, schema
from fellesdrift.inventory.model import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2]
V1 = Path(__file__).parent / "v1_inventories"
CORPUS = Path(__file__).parent / "bad_inventories"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `fellesdrift ARGS` in this process, as the entry point does."""
    with patch.object(sys, "argv", ["fellesdrift", *args]):
        try:
            cli.main()
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    folder = tmp_path / "inventories"
    shutil.copytree(ROOT / "inventories", folder)
    return folder


# --- validate ---------------------------------------------------------------------------------

def test_validate_says_ok_in_one_line(capsys: pytest.CaptureFixture[str], samples: Path) -> None:
    code, out, _ = run(capsys, "validate", str(samples))
    assert code == 0
    assert re.fullmatch(r"ok: 13 municipalities, 20 sites in 14 files \([0-9.]+ s\)\n", out)


def test_validate_lists_every_problem_and_exits_1(capsys: pytest.CaptureFixture[str],
                                                  samples: Path) -> None:
    seljord = samples / "seljord.yaml"
    seljord.write_text(seljord.read_text().replace('code: "4022"', "code: 4022")
                       .replace("vlan: 1012", "vlan: 0x10"))
    (samples / "vinje.yaml").write_text((samples / "vinje.yaml").read_text()
                                        .replace("kind: town_hall", "kind: castle"))
    code, out, err = run(capsys, "validate", str(samples))
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert lines[-1] == "3 problem(s) in 2 file(s); fix them and run validate again."
    assert [line.rsplit("[", 1)[1] for line in lines[:-1]] == [
        "wrong-type]", "yaml-number-format]", "not-allowed]"]
    assert lines[0].startswith(f"{seljord}:6:7: code: got the number 4022")


def test_validate_json_for_ci(capsys: pytest.CaptureFixture[str], samples: Path) -> None:
    code, out, _ = run(capsys, "validate", "--json", str(samples))
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["sites"] == 20 and report["problems"] == []

    shutil.copy(CORPUS / "not-allowed-kind" / "vinje.yaml", samples / "vinje.yaml")
    code, out, _ = run(capsys, "validate", "--json", str(samples))
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    [problem] = report["problems"]
    assert set(problem) == {"file", "line", "column", "field", "message", "rule", "text"}
    assert (Path(problem["file"]).name, problem["line"], problem["column"], problem["field"],
            problem["rule"]) == ("vinje.yaml", 21, 11, "sites.0.kind", "not-allowed")


def test_validate_reads_the_default_folder(capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run(capsys, "validate")
    assert code == 0 and out.startswith("ok: 13 municipalities")


# --- new --------------------------------------------------------------------------------------

def test_new_writes_a_valid_file_with_free_prefixes(capsys: pytest.CaptureFixture[str],
                                                    samples: Path) -> None:
    before = inventory.load([samples])
    code, out, _ = run(capsys, "new", "notodden", "--code", "4005", "--name", "Notodden",
                       "--site", "town_hall", "--site", "school", "--pool", "10.102.0.0/16",
                       "--service", "drift:standard", "--dir", str(samples), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["file"] == str(samples / "notodden.yaml")
    after = inventory.load([samples])  # the whole folder still validates
    new = after.municipality("notodden")
    assert [s.id for s in new.sites] == ["radhus", "skule"]
    assert new.services[0].service == "drift"
    taken = {s.lan_prefix for m in before.municipalities for s in m.sites}
    assert all(s.lan_prefix not in taken and s.lan_prefix.startswith("10.102.")
               for s in new.sites)
    assert all(s.device is None for s in new.sites)
    text = (samples / "notodden.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    assert "# check" in text


def test_new_refuses_what_would_not_validate(capsys: pytest.CaptureFixture[str],
                                             samples: Path) -> None:
    code, _, err = run(capsys, "new", "seljord", "--code", "4022", "--name", "Seljord",
                       "--dir", str(samples))
    assert code == 1 and "exists already" in err and "[unique-slug]" in err
    code, _, err = run(capsys, "new", "notodden", "--code", "4022", "--name", "Notodden",
                       "--dir", str(samples))
    assert code == 1 and "[unique-code]" in err
    code, _, err = run(capsys, "new", "Notodden", "--code", "405", "--name", "Notodden",
                       "--dir", str(samples))
    assert code == 1 and "code: '405' is not in the right format" in err
    assert not list(samples.glob("*otodden.yaml"))


def test_new_dry_run_prints_and_writes_nothing(capsys: pytest.CaptureFixture[str],
                                               samples: Path) -> None:
    code, out, _ = run(capsys, "new", "notodden", "--code", "4005", "--name", "Notodden",
                       "--dir", str(samples), "--dry-run")
    assert code == 0 and "slug: notodden" in out
    assert not (samples / "notodden.yaml").exists()


# --- schema -----------------------------------------------------------------------------------

def test_committed_schema_matches_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert schema.stale() == [], "run `fellesdrift schema`"
    code, out, _ = run(capsys, "schema", "--check", "--json")
    assert code == 0 and json.loads(out)["ok"]


def test_schema_is_written_and_checked(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    code, _, _ = run(capsys, "schema", "--out", str(tmp_path))
    assert code == 0
    municipality = json.loads((tmp_path / "municipality.schema.json").read_text())
    assert municipality["additionalProperties"] is False
    assert municipality["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    (tmp_path / "operations-centre.schema.json").write_text("{}")
    code, _, err = run(capsys, "schema", "--check", "--out", str(tmp_path))
    assert code == 1 and "stale" in err


def test_every_inventory_file_has_a_modeline_to_its_schema() -> None:
    for f in [*(ROOT / "inventories").glob("*.yaml"),
              *(ROOT / "tests" / "fixtures" / "inventories").glob("*.yaml")]:
        first = f.read_text().splitlines()[0]
        assert first == schema.modeline(f), f
        target = (f.parent / first.split("=", 1)[1]).resolve()
        assert target.exists(), target


# --- inventory migrate ------------------------------------------------------------------------

FILLED = {
    "name: TODO who": "name: IT-ansvarleg",
    "email: TODO": "email: it@vinje.kommune.no",
    "service: TODO": "service: drift",
    "tier: TODO": "tier: standard",
    "address: TODO": "address: Vinjevegen 192, 3890 Vinje",
    "users: TODO": "users: 40",
    "access: TODO": "access: fibre",
    "provider: TODO": "provider: vtk",
    "down_mbps: TODO": "down_mbps: 1000",
    "up_mbps: TODO": "up_mbps: 1000",
    "support_hours: TODO": "support_hours: weekdays 08-16",
    "response_hours: TODO": "response_hours: 4",
    "availability_percent: TODO": "availability_percent: 99.5",
    "id: TODO a service": "id: drift",
    "billing: TODO": "billing: per_user",
    "standard: TODO": "standard: 130.00",
    "id: TODO a provider": "id: vtk",
    "handoff: TODO": "handoff: trunk to the core router",
}


def _fill(text: str, vlans: list[int]) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip(" -")
        if stripped.startswith("vlan: TODO"):
            line = line.replace(stripped.rstrip("\n"), f"vlan: {vlans.pop(0)}")
        elif stripped.startswith("name: TODO") and "who" not in stripped:
            line = line.replace(stripped.rstrip("\n"), "name: Noko")
        elif re.match(r"(administration|education|health_care|technical|culture): TODO", stripped):
            line = line.replace("TODO", "10")
        for old, new in FILLED.items():
            if stripped.startswith(old):
                line = line[:line.index(old)] + new + "\n"
        out.append(line)
    return "".join(out)


def test_migrate_1_to_2_keeps_comments_and_asks_for_the_rest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "inventories"
    shutil.copytree(V1, folder)
    code, out, _ = run(capsys, "inventory", "migrate", "--check", str(folder))
    assert code == 1 and out.count("needs migrating") == 3
    assert (folder / "vinje.yaml").read_text() == (V1 / "vinje.yaml").read_text()

    code, out, _ = run(capsys, "inventory", "migrate", str(folder))
    assert code == 0 and out.count("schema_version 1 → 2") == 3
    vinje = (folder / "vinje.yaml").read_text()
    assert vinje.splitlines()[0] == schema.modeline(folder / "vinje.yaml")
    assert "    name: Vinje rådhus  # the town hall at Åmot\n" in vinje
    assert "# Vinje kommune (Vest-Telemark), as schema_version 1 wrote it." in vinje
    assert "schema_version: 2\n" in vinje and "schema_version: 1" not in vinje

    # Every new field is a placeholder that validate reports, at its line, and nothing else.
    result = inventory.check([folder])
    assert result.inventory is None
    assert {p.rule for p in result.problems} == {"placeholder"}
    vinje_lines = vinje.splitlines()
    for p in result.problems:
        if p.file.endswith("vinje.yaml"):
            assert "TODO" in vinje_lines[p.line - 1]
    assert len([p for p in result.problems if p.file.endswith("vinje.yaml")]) == 4 + 5 + 2 * 7

    # Filled in, the migrated files validate.
    vlans = iter([[101, 103], [102], []])
    for name in ("vinje.yaml", "tokke.yaml", "operations-centre.yaml"):
        f = folder / name
        f.write_text(_fill(f.read_text(), next(vlans)))
    model = inventory.load([folder])
    assert [s.lan_prefix for s in model.municipality("vinje").sites] == [
        "10.104.1.0/24", "10.104.3.0/24"]

    code, out, _ = run(capsys, "inventory", "migrate", str(folder))
    assert code == 0 and "all 3 files are at schema_version 2" in out


def test_migrate_refuses_what_it_cannot_edit(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    (tmp_path / "vinje.yaml").write_text('schema_version: 1\ncode: "4036"\nname: Vinje\n'
                                         "slug: vinje\nsites: [{id: radhus, name: R, "
                                         "kind: town_hall, lan_prefix: 10.104.1.0/24}]\n")
    (tmp_path / "tokke.yaml").write_text("schema_version: 7\n")
    code, _, err = run(capsys, "inventory", "migrate", str(tmp_path))
    assert code == 1
    assert "vinje.yaml:5:8: sites: migrate edits block-style YAML only" in err
    assert "tokke.yaml:1:17: schema_version: cannot migrate from schema_version 7" in err
    assert "nothing was written" in err
    assert (tmp_path / "vinje.yaml").read_text().startswith("schema_version: 1")


def test_migration_steps_reach_the_current_version() -> None:
    assert sorted(migrate.STEPS) == list(range(1, SCHEMA_VERSION))
