"""`fellesdrift up` refuses, as a command, before any lab work: outside a window, with a plan
whose inputs changed, with a broken audit log. None needs a lab; each checks that nothing was
made. Each `up` runs in an environment that cannot provision anything (a Proxmox one under
Pulumi's mocks, without a cluster's settings: its driver refuses before any stack), so a refusal
that regressed fails at once, with another message, instead of building a lab."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fellesdrift import checkout, paths
from fellesdrift.change import apply, audit, planfile, windows
from fellesdrift.inventory import load as inventory
from fellesdrift.lab import runner as lab
from fellesdrift.pipeline import job as pipeline
from fellesdrift.provision import stacks as provision

ENV = "chgt"
#: Environment ENV, which cannot provision anything (see the module's docstring).
UNPROVISIONABLE = f"{ENV}:\n  driver: proxmox\n  mocks: true\n"


@pytest.fixture(autouse=True)
def unprovisionable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every `fellesdrift up` here reads an environments.yaml naming ENV as UNPROVISIONABLE
    (and what an `up` that got past its refusal kept of ENV goes after the test)."""
    file = tmp_path / "environments.yaml"
    file.write_text(UNPROVISIONABLE)
    monkeypatch.setenv("FELLESDRIFT_ENVIRONMENTS", str(file))
    yield
    shutil.rmtree(paths.lab_dir(ENV), ignore_errors=True)


def fellesdrift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fellesdrift", *args], cwd=paths.ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def nothing_made() -> None:
    assert not paths.lab_dir(ENV).exists()
    assert provision.stacks(ENV) == []
    left = subprocess.run(["podman", "ps", "-a", "-q", "--filter", f"label={lab.LABEL}={ENV}"],
                          capture_output=True, text=True, check=True).stdout
    assert left.strip() == ""


@pytest.fixture
def folder(tmp_path: Path, fixture_inventories: Path) -> Iterator[Path]:
    """The fixture, its window closed now: only on the day after tomorrow, 02:00-03:00."""
    target = tmp_path / "inventories"
    shutil.copytree(fixture_inventories, target)
    day = windows.DAYS[(datetime.now(windows.OSLO).weekday() + 2) % 7]
    centre = target / "operations-centre.yaml"
    text = centre.read_text()
    closed = text.replace("days: [monday, tuesday, wednesday, thursday, friday, saturday, "
                          "sunday]", f"days: [{day}]").replace('start: "12:00"', 'start: "02:00"'
                                                                 ).replace('end: "12:00"',
                                                                           'end: "03:00"')
    assert closed != text
    centre.write_text(closed)
    yield target
    audit.path(ENV).unlink(missing_ok=True)


def test_up_outside_the_window_refuses_before_any_lab_work(folder: Path) -> None:
    model = inventory.load([folder])
    # A successful apply of both municipalities, as `up` records it (a run that touched no host).
    run = apply.start(model, ENV, pipeline.Selection(True, ["tokke", "vinje"]), [folder], None,
                      None)
    run.done(pipeline.Outcome(stacks=[], idle=True), None)
    tokke = folder / "tokke.yaml"
    tokke.write_text(tokke.read_text().replace("down_mbps: ", "down_mbps: 1", 1))
    before = audit.path(ENV).read_text()

    proc = fellesdrift("up", str(folder), "--env", ENV)

    assert proc.returncode == 1, proc.stderr
    message = " ".join(proc.stderr.split())
    level = model.centre.service_levels[0]
    assert level.maintenance_window is not None
    window = windows.Window.of(level.maintenance_window)
    opens = windows.shown(window.next_opening(datetime.now(UTC)))
    assert "tokke changed since its last apply" in message
    assert f"it opens {opens}" in message
    assert "--emergency" in message and "nothing was applied" in message
    assert "vinje" not in message  # unchanged: not held
    assert "Traceback" not in proc.stderr
    assert audit.path(ENV).read_text() == before  # a refusal is no apply
    nothing_made()


def test_up_with_a_plan_whose_input_changed_refuses_naming_it(folder: Path,
                                                              tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    planfile.write(plan, planfile.Plan(ENV, True, ["tokke", "vinje"],
                                       checkout.inputs(inventory.files([folder])),
                                       (datetime.now(UTC) - timedelta(minutes=5)).isoformat()))
    vinje = folder / "vinje.yaml"
    vinje.write_text(vinje.read_text().replace("down_mbps: ", "down_mbps: 1", 1))
    (folder / "hjartdal.yaml").write_text((folder / "tokke.yaml").read_text())

    proc = fellesdrift("up", str(folder), "--env", ENV, "--plan", str(plan))

    assert proc.returncode == 1, proc.stderr
    message = " ".join(proc.stderr.split())
    assert f"{plan} no longer matches its inputs (2 differ" in message
    assert "inventories/hjartdal.yaml is new; inventories/vinje.yaml changed." in message
    assert "tokke" not in message and "nothing was applied" in message
    assert not audit.path(ENV).exists()
    nothing_made()

    edited = json.loads(plan.read_text())
    edited["selection"]["municipalities"] = ["tokke"]
    edited["inputs"]["inventories/vinje.yaml"] = "0" * 64
    plan.write_text(json.dumps(edited))
    proc = fellesdrift("up", str(folder), "--env", ENV, "--plan", str(plan))
    assert proc.returncode == 1
    assert "its digest does not match its inputs" in " ".join(proc.stderr.split())
    nothing_made()


def test_up_with_a_plan_that_selects_nothing_applies_nothing(tmp_path: Path,
                                                            folder: Path) -> None:
    plan = tmp_path / "plan.json"
    planfile.write(plan, planfile.Plan(ENV, False, [], checkout.inputs(inventory.files([folder])),
                                       datetime.now(UTC).isoformat()))
    proc = fellesdrift("up", str(folder), "--env", ENV, "--plan", str(plan))
    assert proc.returncode == 0, proc.stderr
    assert "selects no stack: nothing to apply" in " ".join(proc.stdout.split())
    assert not audit.path(ENV).exists()
    nothing_made()



def test_up_with_a_broken_audit_log_names_its_line(folder: Path) -> None:
    audit.path(ENV).parent.mkdir(parents=True, exist_ok=True)
    audit.path(ENV).write_text('{"command": "up"}\n{"command": \n')
    proc = fellesdrift("up", str(folder), "--env", ENV)
    assert proc.returncode == 2
    assert f"{audit.path(ENV)}:2: not an audit record" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
    nothing_made()
