"""The Podman lab end to end: real systemd hosts on an internal network, reached by real SSH.

Needs root, Podman and the golden image (built on first use, about a minute). Everything lives
in lab env "labtest" on 10.100.250.0/24 (aggregate 10.100.248.0/21) and is torn down after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fellesdrift import lab
from fellesdrift.paths import lab_dir

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("podman") is None, reason="needs root and podman"
    ),
]

ENV = "labtest"
NET = "labtest-net"
SUBNET = "10.100.250.0/24"
AGGREGATE = "10.100.248.0/21"
HOSTS = {"labtest-a": "10.100.250.10", "labtest-b": "10.100.250.11"}


def ssh(key: Path, ip: str, command: str) -> subprocess.CompletedProcess[str]:
    """SSH as the admin user, pinned to the lab's known_hosts (no trust on first use)."""
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(key),
            "-o",
            f"UserKnownHostsFile={lab.known_hosts_path(ENV)}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            f"ops@{ip}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def labeled(*podman_args: str) -> list[object]:
    out = subprocess.run(
        ["podman", *podman_args, "--filter", f"label={lab.LABEL}={ENV}", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows: list[object] = json.loads(out or "[]") or []
    return rows


def route_type(prefix: str) -> str | None:
    out = subprocess.run(
        ["ip", "-j", "route", "show", "exact", prefix], capture_output=True, text=True, check=True
    ).stdout
    routes = json.loads(out or "[]")
    return str(routes[0].get("type", "unicast")) if routes else None


@pytest.fixture(scope="module")
def image() -> str:
    lab.configure_podman()
    return lab.golden_image()


@pytest.fixture(scope="module")
def hosts(image: str) -> Iterator[dict[str, dict[str, str]]]:
    lab.teardown(ENV)  # leftovers of an interrupted run
    try:
        lab.add_unreachable_routes([AGGREGATE], env=ENV)
        key, pub = lab.lab_keypair(ENV)
        lab.ensure_network(ENV, NET, SUBNET)
        made = {}
        for name, ip in HOSTS.items():
            made[name] = lab.create_host(ENV, name, image, NET, ip, pub)
            lab.known_hosts_add(ENV, ip, made[name]["host_key"])
        yield made
    finally:
        lab.teardown(ENV)


def test_network_is_internal_with_gateway_on_this_machine(hosts: dict[str, object]) -> None:
    net = lab.ensure_network(ENV, NET, SUBNET)  # idempotent
    assert net["subnet"] == SUBNET and net["gateway"] == "10.100.250.1"
    assert lab.inspect_network(NET) == net
    with pytest.raises(lab.LabError, match="exists with subnet"):
        lab.ensure_network(ENV, NET, "10.100.251.0/24")
    raw = json.loads(
        subprocess.run(
            ["podman", "network", "inspect", NET], capture_output=True, text=True, check=True
        ).stdout
    )[0]
    assert raw["internal"] is True and raw["dns_enabled"] is False
    # a lab address without a host dies here instead of leaving the machine
    assert route_type(AGGREGATE) == "unreachable"
    probe = subprocess.run(["ip", "route", "get", "10.100.251.7"], capture_output=True, text=True)
    assert probe.returncode != 0 and "no route to host" in probe.stderr.lower()


def test_ssh_with_pinned_host_key_sudo_and_systemd_running(
    hosts: dict[str, dict[str, str]],
) -> None:
    key, _ = lab.lab_keypair(ENV)
    for host in hosts.values():
        res = ssh(key, host["ip"], "sudo -n true && systemctl is-system-running && hostname")
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["running", host["name"]]
        # no way out: lab hosts have no default route
        routes = ssh(key, host["ip"], "ip route show default")
        assert routes.returncode == 0 and routes.stdout.strip() == ""


def test_hosts_have_their_own_host_keys_and_strict_checking_bites(
    hosts: dict[str, dict[str, str]],
) -> None:
    a, b = hosts["labtest-a"], hosts["labtest-b"]
    assert a["host_key"].startswith("ssh-ed25519 ") and b["host_key"].startswith("ssh-ed25519 ")
    assert a["host_key"] != b["host_key"]
    key, _ = lab.lab_keypair(ENV)
    lab.known_hosts_add(ENV, a["ip"], b["host_key"])  # pin the wrong key
    try:
        res = ssh(key, a["ip"], "true")
        assert res.returncode != 0 and "host key" in res.stderr.lower()
    finally:
        lab.known_hosts_add(ENV, a["ip"], a["host_key"])
    assert ssh(key, a["ip"], "true").returncode == 0


def test_create_host_is_idempotent_and_inspectable(
    image: str, hosts: dict[str, dict[str, str]]
) -> None:
    _, pub = lab.lab_keypair(ENV)
    a = hosts["labtest-a"]
    again = lab.create_host(ENV, "labtest-a", image, NET, a["ip"], pub)
    assert again == a  # same container, same host key
    seen = lab.inspect_host("labtest-a")
    assert seen is not None
    assert (seen["id"], seen["ip"], seen["image"], seen["state"]) == (
        a["id"],
        a["ip"],
        image,
        "running",
    )
    assert lab.inspect_host("labtest-nope") is None
    lab.remove_host("labtest-nope")
    lab.remove_network("labtest-nope")


def test_teardown_leaves_nothing_labeled(hosts: dict[str, dict[str, str]]) -> None:
    counts = lab.teardown(ENV)
    assert counts["containers"] == 2 and counts["networks"] == 1 and counts["routes"] == 1
    assert labeled("ps", "--all") == []
    assert labeled("network", "ls") == []
    assert route_type(AGGREGATE) is None
    assert not lab_dir(ENV).exists()
    assert lab.teardown(ENV) == {"containers": 0, "networks": 0, "routes": 0, "files": 0}
