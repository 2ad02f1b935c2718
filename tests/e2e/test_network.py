"""The network phase against a lab: push, push again (nothing changes), and a push whose session
dies half-way leaves the device on its archived configuration.

Runs against the lab `fellesdrift up` made (fixture ``pipeline_lab``: (env, inventory folder)).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from fellesdrift.access import keys
from fellesdrift.inventory import load as inventory
from fellesdrift.network import config, frr, push
from fellesdrift.provision import hosts as lab_hosts

pytestmark = pytest.mark.lab

@pytest.fixture(scope="module")
def setting(pipeline_lab: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env, folder = pipeline_lab.env, pipeline_lab.inventories
    model = inventory.load([folder])
    hosts = lab_hosts.load(env)
    if not push.routers(hosts):
        pytest.fail(f"lab {env} has no routers", pytrace=False)
    return {"env": env, "model": model, "hosts": hosts,
            "backups": tmp_path_factory.mktemp("backups")}


def _run(s: dict[str, Any], **kw: Any) -> dict[str, push.DeviceResult]:
    results = push.run(s["model"], s["env"], s["hosts"], workers=4, backups=s["backups"], **kw)
    return {r.device: r for r in results}


def _session(s: dict[str, Any], name: str) -> frr.FrrVtysh:
    host = next(h for h in s["hosts"] if h.name == name)
    key, _ = keys.lab_keypair(s["env"])
    return frr.connect(host.address, "netops", str(key), str(keys.known_hosts_path(s["env"])))


def _exec(machine: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", "exec", machine, *argv], capture_output=True, text=True,
                          timeout=30, check=False)


def test_push_converges_and_a_second_push_changes_nothing(setting: dict[str, Any]) -> None:
    first = _run(setting)
    assert all(r.status in ("changed", "unchanged") for r in first.values()), first
    second = _run(setting)
    assert {r.status for r in second.values()} == {"unchanged"}, second


def test_sites_reach_shared_services_and_not_each_other(setting: dict[str, Any]) -> None:
    env, hosts = setting["env"], setting["hosts"]
    clients = [h for h in hosts if h.groups[0] == "site_client"]
    apt = next(h for h in hosts if h.groups[0] == "apt_proxy")
    assert len(clients) >= 2
    for client in clients:
        proc = _exec(client.machine, "nc", "-z", "-w3", apt.address, "3142")
        assert proc.returncode == 0, f"{client.name} cannot reach the apt proxy"
        for other in clients:
            if other.groups[1] != client.groups[1]:  # another municipality
                proc = _exec(client.machine, "nc", "-z", "-w2", other.address, "22")
                assert proc.returncode != 0, f"{client.name} reaches {other.name}"
    assert env


def test_a_push_killed_half_way_leaves_the_archived_configuration(setting: dict[str, Any]
                                                                  ) -> None:
    site = next(h for h in setting["hosts"] if h.groups[0] == "site_router")
    # Drift: something stale and something missing, so the push has work to do.
    conn = _session(setting, site.name)
    conn.configure(["ip prefix-list STALE seq 10 permit 192.0.2.0/24",
                    "route-map TO-CORE permit 10", "no match ip address prefix-list OWN-LAN",
                    "exit"])
    drifted = conn.running_config()
    conn.disconnect()

    def kill(device: str, index: int, command: str) -> None:
        if device == site.name and index == 2:  # two commands in: end the netops session
            _exec(site.machine, "pkill", "-KILL", "-u", "netops")

    slug = site.groups[1].removeprefix("municipality_")
    results = _run(setting, municipalities=[slug], hook=kill)
    result = results[site.name]
    assert result.status == "failed" and result.rolled_back, result
    assert Path(result.backup).read_text() == drifted
    conn = _session(setting, site.name)
    try:
        assert config.diff(conn.running_config(), drifted) == ""
    finally:
        conn.disconnect()
    # The next push puts the intended configuration back.
    again = _run(setting)
    assert again[site.name].status == "changed"
    assert _run(setting)[site.name].status == "unchanged"
