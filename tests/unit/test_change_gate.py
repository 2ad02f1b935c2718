"""The audit log and the window gate: who applied what, and which municipalities `up` holds."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from fellesdrift import paths
from fellesdrift.change import apply, audit, gate, planfile, windows
from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import Inventory
from fellesdrift.pipeline import job as pipeline
from fellesdrift.provision import stacks as provision

ENV = "chgu"
AFTERNOON = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 15:00 CET, a Tuesday
EVENING = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)  # 19:30 CET


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(paths, "STATE_DIR", tmp_path / ".state")
    yield tmp_path / ".state"


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    folder = tmp_path / "inventories"
    shutil.copytree(paths.INVENTORIES, folder)
    return folder


def applied_ok(model: Inventory, slugs: list[str]) -> None:
    """What `up` records after a successful apply of ``slugs`` (a run that touched no host)."""
    selection = pipeline.Selection(core=False, municipalities=slugs)
    run = apply.start(model, ENV, selection, [], None, None, EVENING)
    run.done(pipeline.Outcome(stacks=[], idle=True), None)


def test_an_apply_is_one_line_saying_who_when_what_and_how_it_ended(
        state: Path, samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUDO_USER", "kari")
    model = inventory.load([samples])
    selection = pipeline.Selection(core=True, municipalities=["tokke", "vinje"])
    run = apply.start(model, ENV, selection, [samples], None, "INC-7: link down", AFTERNOON)
    outcome = pipeline.Outcome(stacks=[provision.StackResult(
        name=f"{ENV}.tokke", changes={"create": 2, "update": 1, "same": 9})])
    run.done(outcome, None)
    run.done(None, RuntimeError("killed"))
    lines = audit.path(ENV).read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["who"] == "kari" and first["env"] == ENV and first["command"] == "up"
    assert datetime.fromisoformat(first["at"]).tzinfo is not None
    assert first["digest"].startswith("sha256:") and len(first["digest"]) == 71
    assert first["emergency"] == "INC-7: link down"
    assert first["changed"]["provision"] == {f"{ENV}.tokke": {"create": 2, "update": 1}}
    assert first["outcome"] == "failed in provision"  # no host was declared
    assert set(first["municipalities"]) == {"tokke", "vinje"}
    assert second["outcome"] == "failed in error" and "killed" in second["error"]
    changes = audit.last_changes(ENV, "tokke")
    assert [c.outcome for c in changes] == ["failed in error", "failed in provision"]
    assert changes[1].changes == 3 and changes[1].emergency == "INC-7: link down"
    assert audit.last_changes(ENV, "seljord") == []
    shown = audit.last_changes_by_municipality(ENV, ["tokke", "seljord"], count=1)
    assert [c.as_dict()["outcome"] for c in shown["tokke"]] == ["failed in error"]
    assert shown["seljord"] == []


def test_a_preflight_refusal_is_no_apply(state: Path, samples: Path) -> None:
    model = inventory.load([samples])
    run = apply.start(model, ENV, pipeline.Selection(True, ["tokke"]), [samples], None, None,
                      AFTERNOON)
    run.done(None, pipeline.PreflightError("install podman"))
    assert not audit.path(ENV).exists()


def test_first_deployment_and_no_op_are_not_held_a_change_is(state: Path, samples: Path) -> None:
    model = inventory.load([samples])
    slugs = ["tokke", "vinje", "seljord"]
    assert gate.held(model, ENV, slugs, AFTERNOON) == []  # never applied: a first deployment
    applied_ok(model, slugs)
    assert gate.held(model, ENV, slugs, AFTERNOON) == []  # nothing changed: a re-run
    tokke = samples / "tokke.yaml"
    tokke.write_text(tokke.read_text().replace("down_mbps: 1000", "down_mbps: 500", 1))
    seljord = samples / "seljord.yaml"
    seljord.write_text(seljord.read_text() + "# a comment changes nothing applied\n")
    changed = inventory.load([samples])
    found = gate.held(changed, ENV, slugs, AFTERNOON)
    assert [h.slug for h in found] == ["tokke"]
    level = windows.governing(changed.centre, changed.municipality("tokke"))
    assert level is not None and found[0].level == level.id
    assert windows.Window.of(found[0].window).contains(found[0].opens)
    assert found[0].opens > AFTERNOON
    # Inside the window nothing is held.
    assert gate.held(changed, ENV, slugs, found[0].opens) == []


def test_a_change_of_the_centre_holds_every_municipality_a_price_none(state: Path,
                                                                     samples: Path) -> None:
    model = inventory.load([samples])
    slugs = sorted(m.slug for m in model.municipalities)
    applied_ok(model, slugs)
    centre = samples / "operations-centre.yaml"
    text = centre.read_text()
    centre.write_text(text.replace("standard: 130.00", "standard: 131.00"))
    assert gate.held(inventory.load([samples]), ENV, slugs, AFTERNOON) == []
    centre.write_text(text.replace("handoff: ", "handoff: moved, ", 1))
    held = gate.held(inventory.load([samples]), ENV, slugs, AFTERNOON)
    assert sorted(h.slug for h in held) == slugs


def test_down_makes_the_next_up_a_first_deployment(state: Path, samples: Path) -> None:
    model = inventory.load([samples])
    applied_ok(model, ["tokke"])
    assert audit.applied(ENV) == {"tokke": gate.inputs(model.centre, model.municipality("tokke"))}
    apply.record_down(ENV, [f"{ENV}.tokke"], [])
    assert audit.applied(ENV) == {}


def test_an_emergency_passes_a_closed_window_and_needs_a_reason(state: Path,
                                                                samples: Path) -> None:
    model = inventory.load([samples])
    applied_ok(model, ["tokke"])
    tokke = samples / "tokke.yaml"
    tokke.write_text(tokke.read_text().replace("down_mbps: 1000", "down_mbps: 500", 1))
    changed = inventory.load([samples])
    selection = pipeline.Selection(False, ["tokke"])
    with pytest.raises(gate.GateError, match=r"tokke changed since its last apply .* it opens"):
        apply.start(changed, ENV, selection, [samples], None, None, AFTERNOON)
    with pytest.raises(gate.GateError, match="needs a reason"):
        apply.start(changed, ENV, selection, [samples], None, "  ", AFTERNOON)
    run = apply.start(changed, ENV, selection, [samples], None, "INC-9", AFTERNOON)
    assert run.emergency == "INC-9"


def test_a_broken_line_is_named(state: Path) -> None:
    audit.path(ENV).parent.mkdir(parents=True)
    audit.path(ENV).write_text('{"command": "up"}\nnot json\n')
    with pytest.raises(audit.AuditError, match=r"chgu.jsonl:2: not an audit record"):
        audit.applied(ENV)


def test_an_apply_of_a_plan_other_than_planned_is_recorded_as_failed(state: Path,
                                                                    samples: Path) -> None:
    model = inventory.load([samples])
    plan = planfile.Plan(ENV, False, ["tokke"], {}, "2026-12-01T12:00:00Z",
                         stacks=[{"stack": f"{ENV}.tokke", "changes": {"update": 1}}])
    run = apply.start(model, ENV, pipeline.Selection(False, ["tokke"]), [samples], plan, None,
                      AFTERNOON)
    run.done(pipeline.Outcome(stacks=[provision.StackResult(f"{ENV}.tokke", {"create": 1})],
                              idle=True), None)
    assert run.unplanned == [f"{ENV}.tokke: planned 1 to update, applied 1 to create"]
    record = json.loads(audit.path(ENV).read_text())
    assert record["planned"] is True and record["digest"] == plan.digest
    assert record["outcome"] == "failed: not as planned"
    assert audit.applied(ENV) == {}  # not a successful apply: the gate still sees a change


def test_the_plans_invoice_part_is_the_change_since_the_last_apply_line_by_line(
        state: Path, samples: Path) -> None:
    model = inventory.load([samples])
    first = apply.invoice_deltas(model, ENV, ["tokke"])[0]
    assert first.before is None and "first apply" in first.summary()
    applied_ok(model, ["tokke"])
    same = apply.invoice_deltas(model, ENV, ["tokke"])[0]
    assert same.lines == () and same.summary().startswith("invoice tokke: unchanged, ")
    tokke = samples / "tokke.yaml"
    tokke.write_text(tokke.read_text().replace("  administration: 75\n",
                                               "  administration: 85\n"))
    delta = apply.invoice_deltas(inventory.load([samples]), ENV, ["tokke"])[0]
    changed = {(c.service, c.area): c for c in delta.lines}
    # drift counts every area at 130.00 per user: ten more in administration.
    assert changed[("drift", "administration")].change == Decimal("1300.00")
    assert str(changed[("drift", "administration")]) == (
        "drift (administration): Standard: 75 users in administration = 9750.00 → Standard: 85 "
        "users in administration = 11050.00, +1 300.00 NOK")
    assert delta.before is not None
    assert delta.after - delta.before == sum(c.change for c in delta.lines)
    assert "→" in delta.summary() and delta.as_dict()["lines"]
