"""A plan's inputs: every inventory file and every file of the checkout an apply depends on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fellesdrift import checkout, paths
from fellesdrift.change import planfile
from fellesdrift.inventory import load as inventory


def test_the_checkout_inputs_are_the_code_templates_roles_playbooks_and_lock() -> None:
    found = checkout.inputs(inventory.files([paths.INVENTORIES]))
    for name in ("inventories/tokke.yaml", "inventories/operations-centre.yaml",
                 "fellesdrift/pipeline/job.py", "fellesdrift/change/planfile.py",
                 "stacks/components/municipal_site.py", "requirements.lock", "Pulumi.yaml"):
        assert name in found, name
    assert any(n.startswith("roles/site_router/") for n in found)
    assert any(n.startswith("playbooks/") for n in found)
    assert any(n.startswith("templates/network/") for n in found)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in found)


def test_a_changed_role_or_template_is_named(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    for name in ("roles/common/tasks", "templates/network/frr", "fellesdrift"):
        (root / name).mkdir(parents=True)
    (root / "roles/common/tasks/main.yml").write_text("---\n- name: a\n")
    (root / "templates/network/frr/router.j2").write_text("hostname x\n")
    (root / "fellesdrift/__pycache__").mkdir()
    (root / "fellesdrift/__pycache__/x.pyc").write_bytes(b"\0")
    (root / "requirements.lock").write_text("pulumi==3.259.0\n")
    before = checkout.inputs([], root)
    assert list(before) == ["requirements.lock", "roles/common/tasks/main.yml",
                            "templates/network/frr/router.j2"]
    (root / "roles/common/tasks/main.yml").write_text("---\n- name: b\n")
    (root / "requirements.lock").unlink()
    (root / "fellesdrift/cli.py").write_text("")
    assert planfile.differences(before, checkout.inputs([], root)) == [
        "fellesdrift/cli.py is new", "requirements.lock is gone",
        "roles/common/tasks/main.yml changed"]
    assert checkout.digest(before) != checkout.digest(checkout.inputs([], root))


def test_a_plan_reads_back_and_refuses_another_environment(tmp_path: Path,
                                                          fixture_inventories: Path) -> None:
    folder = tmp_path / "inventories"
    shutil.copytree(fixture_inventories, folder)
    files = inventory.files([folder])
    plan = planfile.Plan("chgt", False, ["tokke"], checkout.inputs(files), "2026-12-01T12:00:00Z")
    written = tmp_path / "plan.json"
    planfile.write(written, plan)
    assert planfile.load(written) == plan
    planfile.check(written, plan, "chgt", files)  # unchanged: accepted
    with pytest.raises(planfile.PlanFileError, match="a plan of environment 'chgt', not 'lab'"):
        planfile.check(written, plan, "lab", files)
    written.write_text("{}")
    with pytest.raises(planfile.PlanFileError, match="not a plan written by"):
        planfile.load(written)


def test_an_apply_other_than_planned_is_named_per_stack() -> None:
    plan = planfile.Plan("lab", True, ["tokke"], {}, "2026-12-01T12:00:00Z", stacks=[
        {"stack": "lab.core", "changes": {"same": 40}},
        {"stack": "lab.tokke", "changes": {"update": 1, "same": 12}}])
    as_planned = {"lab.core": {"same": 40}, "lab.tokke": {"update": 1, "same": 12}}
    assert planfile.unplanned(plan, as_planned) == []
    other = {"lab.core": {"same": 39, "update": 1}, "lab.tokke": {"update": 1, "create": 2}}
    assert planfile.unplanned(plan, other) == [
        "lab.core: planned no changes, applied 1 to update",
        "lab.tokke: planned 1 to update, applied 2 to create, 1 to update"]
