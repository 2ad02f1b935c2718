"""Converges on execution nodes (fellesdrift/converge/nodes.py): the environment's
``execution_nodes`` and their mistakes, the split of a run into shards by municipality, the
shards' results merged into one, and what a shard's payload carries (and does not)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fellesdrift import environment
from fellesdrift.converge import nodes
from fellesdrift.converge import run as converge
from fellesdrift.converge.run import ChangedTask, ConvergeResult, HostRecap
from fellesdrift.environment import ExecutionNode

TOKKE = ExecutionNode("exec-vest", "10.20.0.180", ("tokke", "vinje"))
SELJORD = ExecutionNode("exec-aust", "10.20.0.181", ("seljord",))


@pytest.fixture
def environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    file = tmp_path / "environments.yaml"
    monkeypatch.setattr(environment, "FILE", file)
    return file


def test_an_environment_names_its_nodes_and_what_each_serves(environments: Path) -> None:
    environments.write_text(
        "prod:\n  driver: lab\n  execution_nodes:\n"
        "    - name: exec-vest\n      host: 10.20.0.180\n      municipalities: [tokke, vinje]\n"
        "    - {name: exec-aust, host: exec-aust.example, user: root, municipalities: [seljord]}\n")
    env = environment.get("prod")
    assert env.execution_nodes == (
        ExecutionNode("exec-vest", "10.20.0.180", ("tokke", "vinje"), "ops",
                      f"{environments}:4:7: prod.execution_nodes[0]"),
        ExecutionNode("exec-aust", "exec-aust.example", ("seljord",), "root",
                      f"{environments}:7:7: prod.execution_nodes[1]"))
    assert [n.destination for n in env.execution_nodes] == ["ops@10.20.0.180",
                                                            "root@exec-aust.example"]


def test_without_the_key_everything_converges_here(environments: Path) -> None:
    environments.write_text("prod:\n  driver: lab\n")
    assert environment.get("prod").execution_nodes == ()
    assert environment.get("lab").execution_nodes == ()


RULE = "[environment-execution-nodes]"
NODE = "    - name: exec-vest\n      host: 10.20.0.180\n"


@pytest.mark.parametrize(("nodes_yaml", "where", "message"), [
    ("  execution_nodes: exec-vest\n", "3:20",
     "prod.execution_nodes: 'exec-vest' is not a list of execution nodes; write a list of "
     "mappings, each `name: exec-01`, `host: ADDRESS`, `municipalities: [slug, …]` (and `user:`, "
     "ops when left out), or leave the key out to converge everything here"),
    ("  execution_nodes:\n    - exec-vest\n", "4:7",
     "prod.execution_nodes[0]: 'exec-vest' is not a mapping; write a list of mappings, each "
     "`name: exec-01`, `host: ADDRESS`, `municipalities: [slug, …]` (and `user:`, ops when "
     "left out)"),
    ("  execution_nodes:\n" + NODE + "      municipalities: [tokke]\n      port: 22\n", "7:7",
     "prod.execution_nodes[0].port: unknown field; an execution node has name, host, user, "
     "municipalities"),
    ("  execution_nodes:\n    - name: exec-vest\n      municipalities: [tokke]\n", "4:7",
     "prod.execution_nodes[0].host: missing; every execution node has a name, a host and its "
     "municipalities"),
    ("  execution_nodes:\n    - name: exec vest\n      host: 10.20.0.180\n"
     "      municipalities: [tokke]\n", "4:13",
     "prod.execution_nodes[0].name: 'exec vest' is not one word; write a name, an address or "
     "DNS name, a user name, without spaces"),
    ("  execution_nodes:\n" + NODE + "      municipalities: tokke\n", "6:23",
     "prod.execution_nodes[0].municipalities: 'tokke' is not a list of municipalities; list the "
     "slugs of the municipalities it converges, e.g. [tokke, vinje]"),
    ("  execution_nodes:\n" + NODE + "      municipalities: [tokke, Vinje]\n", "6:31",
     "prod.execution_nodes[0].municipalities[1]: 'Vinje' is not a municipality's slug; write "
     "the slug the inventory gives it (lower case, digits, -)"),
    ("  execution_nodes:\n" + NODE + "      municipalities: [tokke]\n"
     "    - {name: exec-aust, host: 10.20.0.181, municipalities: [seljord, tokke]}\n", "7:70",
     "prod.execution_nodes[1].municipalities[1]: tokke is served by exec-vest already; a "
     "municipality is converged by one node at most"),
    ("  execution_nodes:\n" + NODE + "      municipalities: [tokke]\n"
     "    - {name: exec-vest, host: 10.20.0.181, municipalities: [seljord]}\n", "7:14",
     "prod.execution_nodes[1].name: 'exec-vest' is named twice; give each node its own name"),
])
def test_a_wrong_execution_node_is_one_line_at_its_place(
        environments: Path, nodes_yaml: str, where: str, message: str) -> None:
    environments.write_text("prod:\n  driver: lab\n" + nodes_yaml)
    with pytest.raises(environment.EnvironmentFileError) as e:
        environment.get("prod")
    assert str(e.value) == f"{environments}:{where}: {message} {RULE}"
    assert "\n" not in str(e.value) and e.value.exit_code == 1


GROUPS = {
    "core-router": ["core_router"], "overvaking": ["monitoring"],
    "tokke-bo-rtr": ["site_router", "municipality_tokke"],
    "tokke-bo-cli": ["site_client", "municipality_tokke"],
    "vinje-sentrum-rtr": ["site_router", "municipality_vinje"],
    "seljord-rtr": ["site_router", "municipality_seljord"],
    "kviteseid-rtr": ["site_router", "municipality_kviteseid"],
}


def test_a_run_is_split_by_municipality_and_the_rest_stays_here() -> None:
    shards = nodes.split(GROUPS, [TOKKE, SELJORD])
    assert [(s.name, s.hosts) for s in shards] == [
        ("local", ("core-router", "overvaking", "kviteseid-rtr")),
        ("exec-vest", ("tokke-bo-rtr", "tokke-bo-cli", "vinje-sentrum-rtr")),
        ("exec-aust", ("seljord-rtr",))]
    assert shards[1].node == TOKKE and shards[0].node is None
    every = [h for s in shards for h in s.hosts]
    assert sorted(every) == sorted(GROUPS)  # each host in exactly one shard


def test_a_node_with_no_host_in_the_run_has_no_shard() -> None:
    only_tokke = {h: g for h, g in GROUPS.items() if "municipality_tokke" in g}
    assert [(s.name, s.hosts) for s in nodes.split(only_tokke, [TOKKE, SELJORD])] == [
        ("exec-vest", ("tokke-bo-rtr", "tokke-bo-cli"))]
    assert nodes.split({"core-router": ["core_router"]}, [TOKKE]) == [
        nodes.Shard(None, ("core-router",))]


def _events(result: converge._Events, *events: dict[str, object]) -> None:
    for event in events:
        result(event)


def _shard(hosts: dict[str, HostRecap], changed: list[ChangedTask], failures: list[str],
           status: str = "successful", rc: int = 0, name: str = "x") -> ConvergeResult:
    return ConvergeResult(status, rc, Path(f"/artifacts/{name}"), dict(hosts), changed, failures,
                          shards=[Path(f"/artifacts/{name}")])


def test_the_shards_results_are_one_runs() -> None:
    """The events of two shards, each through its own event handler as the protocol delivers
    them, merge into the recap, changed tasks and failures one run of all hosts gives."""
    here, there = converge._Events(), converge._Events()
    _events(here,
            {"event": "runner_on_ok", "event_data": {
                "host": "core-router", "role": "common", "task": "T", "task_uuid": "a",
                "res": {"changed": True}}},
            {"event": "playbook_on_stats", "event_data": {
                "ok": {"core-router": 30}, "changed": {"core-router": 1}}})
    _events(there,
            {"event": "runner_on_failed", "event_data": {
                "host": "tokke-bo-rtr", "task": "U", "res": {"msg": "boom"}}},
            {"event": "playbook_on_stats", "event_data": {
                "ok": {"tokke-bo-rtr": 12, "tokke-bo-cli": 20},
                "failures": {"tokke-bo-rtr": 1}}})
    one = converge.merge([
        _shard(here.recap, here.changed, here.failures, name="r1"),
        _shard(there.recap, there.changed, there.failures, "failed", 2, name="r1.exec-vest")])
    assert one.recap == {"core-router": HostRecap(ok=30, changed=1),
                         "tokke-bo-rtr": HostRecap(ok=12, failed=1),
                         "tokke-bo-cli": HostRecap(ok=20)}
    assert [str(t) for t in one.changed_tasks] == ["core-router: common : T (task)"]
    assert one.failures == ["tokke-bo-rtr: U: boom"]
    assert (one.status, one.rc, one.ok, one.changed) == ("failed", 2, False, 1)
    assert one.artifacts == Path("/artifacts/r1")
    assert one.shards == [Path("/artifacts/r1"), Path("/artifacts/r1.exec-vest")]


def test_shards_that_all_succeed_are_a_successful_run() -> None:
    one = converge.merge([_shard({"a": HostRecap(ok=3)}, [], []),
                          _shard({"b": HostRecap(ok=4)}, [], [])])
    assert (one.status, one.rc, one.ok) == ("successful", 0, True)


def test_a_shards_payload_carries_the_project_inventory_and_known_hosts_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the Transmitter zips is the private data folder: the project is copied into it
    (a project_dir outside it would not travel); the key and known_hosts the inventory names are
    this machine's paths, so the shard's extra variables name the node's copies."""
    monkeypatch.setattr("fellesdrift.paths.LAB_DIR", tmp_path / "lab")
    monkeypatch.setattr("fellesdrift.access.keys.lab_dir", lambda env: tmp_path / "lab" / env)
    from fellesdrift.access import keys
    key, public = keys.lab_keypair("unit")
    keys.known_hosts_path("unit").write_text("10.20.1.1 ssh-ed25519 AAAA\n")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all: {}\n")
    folder = tmp_path / "payload"
    folder.mkdir()
    job = nodes._payload("unit", inventory, Path(converge.ROOT), folder, "/run/w/1")
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert "project/ansible.cfg" in files and "project/playbooks/site.yml" in files
    assert "project/roles/common/tasks/main.yml" in files
    assert {"inventory/hosts.yml", "ssh/known_hosts", "ssh/key.pub"} <= set(files)
    assert [f for f in files if f.startswith("project/fellesdrift")] == [
        "project/fellesdrift/__init__.py", "project/fellesdrift/syntax.py"]  # the filters
    assert not [f for f in files if f.startswith(("project/.lab", "project/.state"))]
    assert (folder / "ssh" / "key.pub").read_text() == public + "\n"
    assert job["ssh_key"] == key.read_text()  # ansible-runner's ssh-agent FIFO on the node
    assert job["extravars"] == {
        "ansible_ssh_private_key_file": "/run/w/1/ssh/key.pub",
        "ansible_ssh_common_args": "-o UserKnownHostsFile=/run/w/1/ssh/known_hosts "
                                   "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"}
    assert json.dumps(job["extravars"]).count(str(tmp_path)) == 0


def test_ssh_to_a_node_is_as_strict_as_to_every_host(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setattr("fellesdrift.access.keys.lab_dir", lambda env: tmp_path / env)
    argv = nodes.ssh_command("unit", TOKKE)
    text = " ".join(argv)
    assert argv[0] == "ssh" and argv[-1] == "ops@10.20.0.180"
    for option in ("StrictHostKeyChecking=yes", "BatchMode=yes", "IdentitiesOnly=yes",
                   f"UserKnownHostsFile={tmp_path / 'unit' / 'known_hosts'}",
                   "ClearAllForwardings=yes", "ForwardAgent=no"):
        assert f"-o {option}" in text


def test_the_role_installs_where_the_protocol_looks() -> None:
    import yaml
    defaults = yaml.safe_load((converge.ROOT / "roles/execution_node/defaults/main.yml")
                              .read_text())
    assert {k: v for k, v in defaults.items() if k != "execution_node__apt_packages"} == {
        "execution_node__venv": nodes.VENV, "execution_node__work_dir": nodes.WORK,
        "execution_node__user": ExecutionNode("n", "h", ("m",)).user}
    assert f"{nodes.VENV}/bin/fellesdrift-vault-password" == nodes.VAULT_CLIENT
    assert f"{nodes.VENV}/bin/fellesdrift-worker" == nodes.WORKER
    files = converge.ROOT / "roles/execution_node/files"
    assert {p.name for p in files.iterdir()} == {"fellesdrift-worker",
                                                 "fellesdrift-vault-password"}
