"""The CI files and the fan-out: both pipelines pass their real linters (actionlint for the
GitHub workflow, check-jsonschema's vendored GitLab CI schema for .gitlab-ci.yml), and the
child pipeline generated from a plan is valid GitLab CI with one job per changed stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fellesdrift.provision import ci

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "fellesdrift.yml"
ACTIONLINT = ROOT / "scripts" / "tools" / "actionlint.sh"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ACTIONLINT), "-config-file",
                           str(ROOT / ".github" / "actionlint.yaml"), *map(str, files)],
                          capture_output=True, text=True, check=False, timeout=600)


def gitlab_schema(file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.gitlab-ci",
                           str(file)], capture_output=True, text=True, check=False, timeout=120)


def plan(*stacks: str) -> dict[str, object]:
    return {"ok": True, "stacks": [{"stack": s, "changes": {"same": 3}, "changed": 0,
                                    "error": ""} for s in stacks]}


def test_the_github_workflow_passes_actionlint() -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_bites_on_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("needs: changes", "needs: no-such-job", 1))
    result = actionlint(broken)
    assert result.returncode != 0 and "no-such-job" in result.stdout


def test_the_gitlab_pipeline_matches_gitlabs_schema() -> None:
    result = gitlab_schema(ROOT / ".gitlab-ci.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_bites_on_a_broken_pipeline(tmp_path: Path) -> None:
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text((ROOT / ".gitlab-ci.yml").read_text()
                      .replace("strategy: depend", "strategy: whenever"))
    assert gitlab_schema(broken).returncode != 0


@pytest.mark.parametrize("command", ["plan", "up"])
def test_the_child_pipeline_runs_the_core_first_then_each_municipality(
        tmp_path: Path, command: str) -> None:
    child = ci.gitlab_child(plan("lab.core", "lab.vinje", "lab.tokke"), "lab", command)
    path = tmp_path / "child.yml"
    path.write_text(yaml.safe_dump(child, sort_keys=False))
    result = gitlab_schema(path)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {k: v for k, v in child.items() if k != "stages"}
    assert sorted(jobs) == [f"{command}:core", f"{command}:tokke", f"{command}:vinje"]
    assert jobs[f"{command}:core"]["needs"] == []
    for slug in ("tokke", "vinje"):
        job = jobs[f"{command}:{slug}"]
        assert job["needs"] == [f"{command}:core"]
        assert job["resource_group"] == f"lab.{slug}"
        assert f"fellesdrift {command} -m {slug} --env lab" in job["script"][-1]


def test_a_change_to_one_municipality_makes_one_job_that_waits_for_nothing() -> None:
    child = ci.gitlab_child(plan("lab.vinje"), "lab")
    assert [k for k in child if k != "stages"] == ["up:vinje"]
    assert child["up:vinje"]["needs"] == []


def test_an_unchanged_centre_still_makes_a_valid_pipeline(tmp_path: Path) -> None:
    child = ci.gitlab_child(plan(), "lab")
    path = tmp_path / "child.yml"
    path.write_text(yaml.safe_dump(child))
    assert gitlab_schema(path).returncode == 0
    assert [k for k in child if k != "stages"] == ["nothing-changed"]


def test_the_github_outputs_name_the_core_and_the_matrix() -> None:
    assert ci.github_outputs(plan("lab.core", "lab.vinje"), "lab") == {
        "core": "true", "slugs": '["vinje"]'}
    assert ci.github_outputs(plan(), "lab") == {"core": "false", "slugs": "[]"}


@pytest.mark.parametrize("bad", [[], {"stacks": "lab.core"}, {"stacks": [{"stack": "e2e.vinje"}]},
                                 {"stacks": [{"name": "lab.vinje"}]}])
def test_a_plan_that_is_not_a_plan_is_refused(bad: object) -> None:
    with pytest.raises(ci.PlanError):
        ci.gitlab_child(bad, "lab")


def test_the_cli_prints_the_child_pipeline_and_the_github_outputs(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan("lab.core", "lab.vinje")))
    run = [sys.executable, "-m", "fellesdrift", "ci"]
    gitlab = subprocess.run([*run, "gitlab", str(plan_file), "--command", "plan"],
                            capture_output=True, text=True, check=True)
    child = yaml.safe_load(gitlab.stdout)
    assert child == ci.gitlab_child(plan("lab.core", "lab.vinje"), "lab", "plan")
    github = subprocess.run([*run, "github", str(plan_file)], capture_output=True, text=True,
                            check=True)
    assert github.stdout.splitlines() == ["core=true", 'slugs=["vinje"]']
    plan_file.write_text("[]")
    refused = subprocess.run([*run, "github", str(plan_file)], capture_output=True, text=True)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "fellesdrift plan --json" in refused.stderr
