"""Converges on an execution node (issue 13), on the shared lab: a centre host of function
``execution_node`` (role execution_node: the control node's locked Ansible from
requirements.lock) is added to the lab's centre with `fellesdrift up -m core`; then

- one municipality converged through the node over ansible-runner's ``transmit | worker |
  process`` shows the same recap, host for host, as the same converge run here, and its events
  and artifacts came from the node (the worker's folder there, emptied when the job ended);
- with the node down (its container paused), a converge of two municipalities fails only the
  node's shard, with a message naming the node, and the other municipality converges here.

The node is removed again at the end (`up -m core` with the lab's own centre file), so the
modules after this one see the lab as it was. A lab that has a node in its centre already
(FELLESDRIFT_E2E_REUSE=<env>, its centre file with a shared host of role execution_node) is
used as it is.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import fellesdrift

from fellesdrift import environment
from fellesdrift.converge import nodes
from fellesdrift.converge import run as converge
from fellesdrift.environment import ExecutionNode

pytestmark = pytest.mark.lab
NODE = "exec-01"
SERVED = "tokke"
OTHER = "vinje"


def _groups(lab_dir: Path) -> dict[str, list[str]]:
    return nodes.inventory_groups(lab_dir / "inventory.yml")


def _centre_file(folder: Path) -> Path:
    return next(p for p in folder.glob("*.yaml")
                if "shared_hosts:" in p.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def node(pipeline_lab: Any, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[ExecutionNode]:
    """The lab with an execution node in its centre (a free address of the servers range),
    which has converged the municipality once: its first job compiles what the roles build on
    the controller (site_router's capability filter), as the control node's first run did. A
    lab whose centre has a node already (FELLESDRIFT_E2E_REUSE) is used as it is."""
    env, lab_dir = pipeline_lab.env, pipeline_lab.lab_dir
    own = environment.get(env).folder
    data = yaml.safe_load(_centre_file(own).read_text(encoding="utf-8"))
    present = next((h for h in data["shared_hosts"] if h["role"] == "execution_node"), None)
    folder = tmp_path_factory.mktemp("with-node")
    added = present is None
    if present is None:
        for file in own.glob("*.yaml"):
            shutil.copy2(file, folder / file.name)
        centre = _centre_file(folder)
        servers = next(r["prefix"] for r in data["address_plan"]["centre_ranges"]
                       if r["name"] == "servers")
        taken = {h["address"] for h in data["shared_hosts"]}
        address = next(str(a) for a in list(ipaddress.ip_network(servers).hosts())[40:]
                       if str(a) not in taken)
        text = re.sub(r"(shared_hosts:\n)", rf"\1  - hostname: {NODE}\n    role: "
                      rf"execution_node\n    address: {address}\n",
                      centre.read_text(encoding="utf-8"), count=1)
        centre.write_text(text, encoding="utf-8")
        up = fellesdrift("up", str(folder), "--env", env, "-m", "core", "--json")
        assert up.returncode == 0, up.stderr[-6000:] + up.stdout[-3000:]
        present = {"hostname": NODE, "address": address}
    made = ExecutionNode(str(present["hostname"]), str(present["address"]), (SERVED,), "ops",
                         f"{_centre_file(own).name}: {present['hostname']}")
    try:
        first = converge.run(env, lab_dir / "inventory.yml", 2,
                             limit=f"municipality_{SERVED}", nodes=(made,))
        assert first.ok, first.failures
        yield made
    finally:
        if added:
            back = fellesdrift("up", str(own), "--env", env, "-m", "core", "--json")
            assert back.returncode == 0, back.stderr[-6000:]


def _hosts_of(groups: dict[str, list[str]], *slugs: str) -> list[str]:
    return sorted(h for h, g in groups.items()
                  if any(f"municipality_{s}" in g for s in slugs))


def _machine(lab_dir: Path, name: str) -> str:
    for file in (lab_dir / "hosts").glob("*.yml"):
        for host in yaml.safe_load(file.read_text(encoding="utf-8")):
            if host["name"] == name:
                return str(host["machine"])
    raise AssertionError(f"no host {name} in {lab_dir / 'hosts'}")


def test_a_municipality_converged_through_the_node_shows_the_same_recap(
        pipeline_lab: Any, node: ExecutionNode) -> None:
    env, lab_dir = pipeline_lab.env, pipeline_lab.lab_dir
    inventory = lab_dir / "inventory.yml"
    hosts = _hosts_of(_groups(lab_dir), SERVED)
    assert hosts, f"the lab has no host of {SERVED}"
    limit = f"municipality_{SERVED}"
    here = converge.run(env, inventory, len(hosts), limit=limit, nodes=())
    there = converge.run(env, inventory, len(hosts), limit=limit, nodes=(node,))
    assert here.ok and there.ok, here.failures + there.failures
    assert sorted(there.recap) == hosts
    assert there.recap == here.recap  # ok, changed, failed, unreachable, skipped per host
    assert there.changed == here.changed == 0, there.changed_tasks
    # The shard ran on the node: its artifacts came back over the stream, the worker's own
    # record of the command names its folder there, and each host's events are here.
    assert len(there.shards) == 1 and there.shards[0].name.endswith(f".{node.name}")
    command = json.loads((there.shards[0] / "command").read_text())
    assert command["cwd"].startswith(f"{nodes.WORK}/") and command["cwd"].endswith("/project")
    events = [json.loads(p.read_text()) for p in (there.shards[0] / "job_events").glob("*.json")]
    assert {e["event_data"].get("host") for e in events
            if e["event"] == "runner_on_ok"} == set(hosts)
    # The job's folder (the key's copy, the payload) is gone from the node.
    left = subprocess.run([*nodes.ssh_command(env, node), f"ls -A {nodes.WORK}"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert left.returncode == 0 and left.stdout.strip() == "", left.stdout + left.stderr


def test_a_node_that_is_down_fails_only_its_shard_naming_it(
        pipeline_lab: Any, node: ExecutionNode) -> None:
    env, lab_dir = pipeline_lab.env, pipeline_lab.lab_dir
    groups = _groups(lab_dir)
    served, other = _hosts_of(groups, SERVED), _hosts_of(groups, OTHER)
    machine = _machine(lab_dir, node.name)
    subprocess.run(["podman", "pause", machine], check=True, capture_output=True)
    try:
        result = converge.run(env, lab_dir / "inventory.yml", len(served) + len(other),
                              limit=f"municipality_{SERVED}:municipality_{OTHER}",
                              nodes=(node,))
    finally:
        subprocess.run(["podman", "unpause", machine], check=True, capture_output=True)
    assert not result.ok
    assert sorted(result.recap) == other  # converged here, every one of them
    assert all(not (r.failed or r.unreachable) for r in result.recap.values())
    assert len(result.failures) == 1, result.failures
    assert result.failures[0].startswith(
        f"execution node {node.name} (ops@{node.host}, {node.at}) did not run the shard: ")
    assert "timed out" in result.failures[0]  # ssh's ConnectTimeout (connect or banner)

