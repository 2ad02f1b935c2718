"""What the role ``execution_node`` promises: the control node's locked Ansible
(requirements.lock) in its virtual environment, ansible-runner's worker there, the vault client,
and the jobs' folder on tmpfs that only the worker's user may open.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from conftest import only_for, role_vars_for

ROLE = "execution_node"
FUNCTIONS = (ROLE,)


@pytest.fixture(scope="module")
def inputs(host: Any) -> dict[str, Any]:
    only_for(host, ROLE)
    return role_vars_for(host, ROLE)


def test_the_locked_packages_are_installed(host: Any, inputs: dict[str, Any]) -> None:
    pip = shlex.quote(f"{inputs['execution_node__venv']}/bin/pip")
    listed = host.check_output(f"{pip} list --format=freeze --disable-pip-version-check")
    installed = {line.split("==")[0].lower(): line for line in listed.splitlines()}
    for pin in inputs["execution_node__packages"]:
        assert installed.get(pin.split("==")[0].lower()) == pin


def test_the_worker_answers(host: Any, inputs: dict[str, Any]) -> None:
    runner = shlex.quote(f"{inputs['execution_node__venv']}/bin/ansible-runner")
    pins = dict(p.split("==") for p in inputs["execution_node__packages"])
    assert host.check_output(f"{runner} --version").strip() == pins["ansible-runner"]
    info = host.check_output(f"{runner} worker --worker-info")
    assert "runner_version" in info and "errors: []" in info


def test_the_jobs_folder_is_tmpfs_for_the_worker_only(host: Any,
                                                      inputs: dict[str, Any]) -> None:
    folder = host.file(inputs["execution_node__work_dir"])
    assert folder.is_directory and folder.mode == 0o700
    assert folder.user == inputs["execution_node__user"]
    fs = host.check_output(f"stat -f -c %T {shlex.quote(folder.path)}").strip()
    assert fs == "tmpfs"


def test_the_vault_client_writes_nothing(host: Any, inputs: dict[str, Any]) -> None:
    client = host.file(f"{inputs['execution_node__venv']}/bin/fellesdrift-vault-password")
    assert client.is_file and client.mode == 0o755 and "socket" in client.content_string
