"""The Podman lab end to end: real systemd hosts on internal networks, reached by real SSH.

Needs root, Podman and the golden image (built on first use, about a minute). Everything lives
in lab env "labtest2" on 10.100.240.0/20 (its aggregate) and is torn down after:

    labtest2-net   10.100.240.0/24  bridge .1 (the original default)  a .10, b .11
    labtest2-lan   10.100.241.0/24  bridge .254, router r .1          client c .10 (gw .1)
    labtest2-core  10.100.242.0/24  bridge .254, router r .1          server s .10 (gw .1),
                                                                      apt proxy p .20 (egress)
    labtest2-link  10.100.243.0/30  no bridge address (a transit link), no hosts

The only traffic leaving this machine is the apt proxy's `apt-get update` to Debian's mirror
(and its name lookup through this machine's resolver).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from fellesdrift.access import keys
from fellesdrift.lab import hosts as lab_hosts
from fellesdrift.lab import image as lab_image
from fellesdrift.lab import networks as lab_networks
from fellesdrift.lab import podman as lab_podman
from fellesdrift.lab import routes as lab_routes
from fellesdrift.lab import runner as lab_runner
from fellesdrift.lab import shaping as lab_shaping
from fellesdrift.lab import teardown as lab_teardown
from fellesdrift.paths import lab_dir

#: Why this machine cannot run the lab ("" when it can).
UNAVAILABLE = (
    "needs root" if os.geteuid() != 0 else "needs podman" if shutil.which("podman") is None else ""
)
#: In CI a lab that cannot start is a failure, not a skip: a green run must have tested a lab.
IN_CI = os.environ.get("CI", "").lower() == "true"

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(bool(UNAVAILABLE) and not IN_CI, reason=UNAVAILABLE),
]


@pytest.fixture(autouse=True, scope="module")
def lab_can_start() -> None:
    if UNAVAILABLE:
        pytest.fail(f"CI=true and the lab cannot start here: {UNAVAILABLE}", pytrace=False)

ENV = "labtest2"
AGGREGATE = "10.100.240.0/20"
NET, SUBNET = "labtest2-net", "10.100.240.0/24"
LAN, LAN_SUBNET = "labtest2-lan", "10.100.241.0/24"
CORE, CORE_SUBNET = "labtest2-core", "10.100.242.0/24"
LINK, LINK_SUBNET = "labtest2-link", "10.100.243.0/30"
EGRESS = lab_networks.egress_network_name(ENV)
HOSTS = {"labtest2-a": "10.100.240.10", "labtest2-b": "10.100.240.11"}
ROUTER, CLIENT, SERVER, PROXY = "labtest2-r", "labtest2-c", "labtest2-s", "labtest2-p"
ONE_SOURCE = "deb http://deb.debian.org/debian bookworm-updates main"
APT_UPDATE = (
    f"echo '{ONE_SOURCE}' > /tmp/one.list && timeout 60 apt-get update --error-on=any "
    "-o Acquire::Retries=0 -o Acquire::Languages=none -o Dir::Etc::sourcelist=/tmp/one.list "
    "-o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0"
)
# Throughput over TCP between two hosts: the receiver counts bytes from the first byte to EOF.
THROUGHPUT = """
import socket, sys, time
if sys.argv[1] == "recv":
    s = socket.create_server(("0.0.0.0", 5201)); s.settimeout(15)
    c, _ = s.accept(); c.settimeout(15); n, t0 = 0, None
    while b := c.recv(1 << 18):
        if t0 is None: t0 = time.monotonic()
        else: n += len(b)
    print(n * 8 / (time.monotonic() - t0) / 1e6)
else:
    c = socket.create_connection((sys.argv[2], 5201), timeout=10)
    end, buf = time.monotonic() + float(sys.argv[3]), b"x" * 65536
    while time.monotonic() < end: c.sendall(buf)
    c.close()
"""


def ssh(key: Path, ip: str, command: str) -> subprocess.CompletedProcess[str]:
    """SSH as the admin user, pinned to the lab's known_hosts (no trust on first use)."""
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(key),
            "-o",
            f"UserKnownHostsFile={keys.known_hosts_path(ENV)}",
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
        timeout=90,
    )


def pexec(container: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """A command as root inside a container (what the host itself may do, not its users)."""
    return subprocess.run(
        ["podman", "exec", container, *argv], capture_output=True, text=True, timeout=timeout
    )


def labeled(*podman_args: str) -> list[object]:
    out = subprocess.run(
        ["podman", *podman_args, "--filter", f"label={lab_runner.LABEL}={ENV}", "--format", "json"],
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


def guard_lines(binary: str = "iptables") -> list[str]:
    out = subprocess.run(
        [binary, "-w", "10", "-S", "FORWARD", "-v"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if f'"{lab_runner.LABEL}={ENV} ' in line]


def dropped(net: str) -> int:
    """Packets the forward guard of ``net`` dropped so far (iptables counters)."""
    total = 0
    for line in guard_lines():
        m = re.search(r" -c (\d+) \d+ -j DROP", line)
        if f' net={net}"' in line and m:
            total += int(m.group(1))
    return total


def capabilities(container: str) -> int:
    status = pexec(container, "cat", "/proc/1/status").stdout
    m = re.search(r"^CapEff:\s*([0-9a-f]+)$", status, re.M)
    assert m is not None, status
    return int(m.group(1), 16)


def throughput(sender: str, receiver: str, receiver_ip: str, seconds: float = 3) -> float:
    """Mbit/s of one TCP stream from sender to receiver (Python in both, no iperf3 needed)."""
    for host in (sender, receiver):
        put = subprocess.run(
            ["podman", "exec", "-i", host, "sh", "-c", "cat > /tmp/throughput.py"],
            input=THROUGHPUT,
            text=True,
            check=True,
        )
        assert put.returncode == 0
    recv = subprocess.Popen(
        ["podman", "exec", receiver, "python3", "/tmp/throughput.py", "recv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while "5201" not in pexec(receiver, "ss", "-Hltn", "sport = :5201").stdout:
        assert time.monotonic() < deadline, "receiver did not start listening"
        time.sleep(0.1)
    send = subprocess.run(
        [
            "podman",
            "exec",
            sender,
            "python3",
            "/tmp/throughput.py",
            "send",
            receiver_ip,
            str(seconds),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 15,
    )
    assert send.returncode == 0, send.stderr
    out, err = recv.communicate(timeout=15)
    assert recv.returncode == 0, err
    return float(out.strip())


@pytest.fixture(scope="module")
def image() -> str:
    lab_podman.configure_podman()
    return lab_image.golden_image()


@pytest.fixture(scope="module")
def hosts(image: str) -> Iterator[dict[str, dict[str, str]]]:
    lab_teardown.teardown(ENV)  # leftovers of an interrupted run
    try:
        lab_routes.add_unreachable_routes([AGGREGATE], env=ENV)
        key, pub = keys.lab_keypair(ENV)
        lab_networks.ensure_network(ENV, NET, SUBNET)
        for name, subnet in ((LAN, LAN_SUBNET), (CORE, CORE_SUBNET)):
            lab_networks.ensure_network(ENV, name, subnet,
                                        gateway=lab_networks.control_address(subnet))
        lab_networks.ensure_network(ENV, LINK, LINK_SUBNET, gateway=lab_networks.NO_BRIDGE)
        specs: dict[str, tuple[str, str, dict[str, Any]]] = {
            name: (NET, ip, {}) for name, ip in HOSTS.items()
        }
        specs[ROUTER] = (
            LAN,
            "10.100.241.1",
            {"extra_networks": [(CORE, "10.100.242.1")], "router": True},
        )
        specs[CLIENT] = (LAN, "10.100.241.10", {"gateway": "10.100.241.1"})
        specs[SERVER] = (CORE, "10.100.242.10", {"gateway": "10.100.242.1"})
        specs[PROXY] = (
            CORE,
            "10.100.242.20",
            {"egress": True, "routes": [(LAN_SUBNET, "10.100.242.1")]},
        )
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {
                name: pool.submit(lab_hosts.create_host, ENV, name, image, net, ip, pub, **kw)
                for name, (net, ip, kw) in specs.items()
            }
            made = {name: f.result() for name, f in futures.items()}
        for host in made.values():
            keys.known_hosts_add(ENV, host["ip"], host["host_key"])
        yield made
    finally:
        lab_teardown.teardown(ENV)


def test_network_is_internal_with_gateway_on_this_machine(hosts: dict[str, object]) -> None:
    net = lab_networks.ensure_network(ENV, NET, SUBNET)  # idempotent
    assert net["subnet"] == SUBNET and net["gateway"] == "10.100.240.1"
    assert lab_networks.inspect_network(NET) == net
    with pytest.raises(lab_runner.LabError, match="exists with subnet"):
        lab_networks.ensure_network(ENV, NET, "10.100.244.0/24")
    raw = json.loads(
        subprocess.run(
            ["podman", "network", "inspect", NET], capture_output=True, text=True, check=True
        ).stdout
    )[0]
    assert raw["internal"] is True and raw["dns_enabled"] is False
    # a lab address without a host dies here instead of leaving the machine
    assert route_type(AGGREGATE) == "unreachable"
    probe = subprocess.run(["ip", "route", "get", "10.100.250.7"], capture_output=True, text=True)
    assert probe.returncode != 0 and "no route to host" in probe.stderr.lower()


def test_routed_networks_leave_the_first_address_to_the_router(hosts: dict[str, object]) -> None:
    assert lab_networks.router_address(LAN_SUBNET) == "10.100.241.1"
    assert lab_networks.control_address(LAN_SUBNET) == "10.100.241.254"
    lan = lab_networks.ensure_network(ENV, LAN, LAN_SUBNET, gateway="10.100.241.254")  # idempotent
    assert lan["gateway"] == "10.100.241.254" and lan["internal"] == "true"
    # no gateway given: accepted as is
    assert lab_networks.ensure_network(ENV, LAN, LAN_SUBNET) == lan
    with pytest.raises(lab_runner.LabError,
                       match="bridge address 10.100.241.254, not 10.100.241.1"):
        lab_networks.ensure_network(ENV, LAN, LAN_SUBNET, gateway="10.100.241.1")
    link = lab_networks.inspect_network(LINK)
    assert link is not None and link["gateway"] == "" and link["subnet"] == LINK_SUBNET
    # this machine is on the LAN at .254 and reaches the router at .1 and the client over it
    key, _ = keys.lab_keypair(ENV)
    res = ssh(key, "10.100.241.1", "ip -4 -br addr show dev eth0")
    assert res.returncode == 0 and "10.100.241.1/24" in res.stdout, res.stderr


def test_ssh_with_pinned_host_key_sudo_and_systemd_running(
    hosts: dict[str, dict[str, str]],
) -> None:
    key, _ = keys.lab_keypair(ENV)
    for host in hosts.values():
        res = ssh(key, host["ip"], "sudo -n true && systemctl is-system-running && hostname")
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["running", host["name"]]
    for name in HOSTS:  # no way out: hosts without gateway have no default route
        routes = ssh(key, hosts[name]["ip"], "ip route show default")
        assert routes.returncode == 0 and routes.stdout.strip() == ""


def test_hosts_have_their_own_host_keys_and_strict_checking_bites(
    hosts: dict[str, dict[str, str]],
) -> None:
    a, b = hosts["labtest2-a"], hosts["labtest2-b"]
    assert a["host_key"].startswith("ssh-ed25519 ") and b["host_key"].startswith("ssh-ed25519 ")
    assert a["host_key"] != b["host_key"]
    key, _ = keys.lab_keypair(ENV)
    keys.known_hosts_add(ENV, a["ip"], b["host_key"])  # pin the wrong key
    try:
        res = ssh(key, a["ip"], "true")
        assert res.returncode != 0 and "host key" in res.stderr.lower()
    finally:
        keys.known_hosts_add(ENV, a["ip"], a["host_key"])
    assert ssh(key, a["ip"], "true").returncode == 0


def test_create_host_is_idempotent_and_inspectable(
    image: str, hosts: dict[str, dict[str, str]]
) -> None:
    _, pub = keys.lab_keypair(ENV)
    a = hosts["labtest2-a"]
    again = lab_hosts.create_host(ENV, "labtest2-a", image, NET, a["ip"], pub)
    assert again == a  # same container, same host key
    assert a["interfaces"] == f"{NET}=eth0" and a["networks"] == f"{NET}={a['ip']}"
    seen = lab_hosts.inspect_host("labtest2-a")
    assert seen is not None
    assert (seen["id"], seen["ip"], seen["image"], seen["state"], seen["network"]) == (
        a["id"],
        a["ip"],
        image,
        "running",
        NET,
    )
    assert (seen["router"], seen["egress"], seen["gateway"], seen["routes"]) == (
        "false",
        "false",
        "",
        "",
    )
    assert lab_hosts.inspect_host("labtest2-nope") is None
    lab_hosts.remove_host("labtest2-nope")
    lab_networks.remove_network("labtest2-nope")


def test_router_is_multi_homed_forwards_and_may_program_routes(
    hosts: dict[str, dict[str, str]],
) -> None:
    r = hosts[ROUTER]
    assert r["interfaces"] == f"{LAN}=eth0,{CORE}=eth1"
    assert r["networks"] == f"{LAN}=10.100.241.1,{CORE}=10.100.242.1"
    seen = lab_hosts.inspect_host(ROUTER)
    assert seen is not None and seen["router"] == "true" and seen["ip"] == "10.100.241.1"
    addrs = pexec(ROUTER, "ip", "-4", "-br", "addr").stdout
    assert re.search(r"^eth0\S*\s+UP\s+10\.100\.241\.1/24", addrs, re.M), addrs
    assert re.search(r"^eth1\S*\s+UP\s+10\.100\.242\.1/24", addrs, re.M), addrs
    assert pexec(ROUTER, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    assert pexec(CLIENT, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "0"
    net_admin, sys_admin = 1 << 12, 1 << 21
    assert capabilities(ROUTER) & net_admin and not capabilities(ROUTER) & sys_admin
    assert not capabilities(CLIENT) & net_admin
    privileged = subprocess.run(
        ["podman", "inspect", "-f", "{{.HostConfig.Privileged}}", ROUTER],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert privileged == "false"
    # what FRR's zebra does: install a route (a lab prefix with no host, via the server)
    add = pexec(ROUTER, "ip", "route", "add", "10.100.250.0/24", "via", "10.100.242.10")
    assert add.returncode == 0, add.stderr
    assert "10.100.250.0/24 via 10.100.242.10" in pexec(ROUTER, "ip", "route").stdout
    assert pexec(ROUTER, "ip", "route", "del", "10.100.250.0/24").returncode == 0
    denied = pexec(CLIENT, "ip", "route", "add", "10.100.250.0/24", "via", "10.100.241.1")
    assert denied.returncode != 0 and "not permitted" in denied.stderr.lower()


def test_hosts_reach_each_other_through_the_router(hosts: dict[str, dict[str, str]]) -> None:
    key, _ = keys.lab_keypair(ENV)
    default = ssh(key, "10.100.241.10", "ip route show default")
    assert default.stdout.startswith("default via 10.100.241.1 dev eth0"), default.stdout
    # TCP to sshd (plain hosts lack NET_RAW, so their ping cannot run)
    reach = ssh(key, "10.100.241.10", "timeout 5 bash -c '</dev/tcp/10.100.242.10/22'")
    assert reach.returncode == 0, reach.stderr
    # the proxy's static route to the LAN goes through the router too
    reach = ssh(key, "10.100.242.20", "timeout 5 bash -c '</dev/tcp/10.100.241.10/22'")
    assert reach.returncode == 0, reach.stderr
    seen = lab_hosts.inspect_host(PROXY)
    assert seen is not None and seen["routes"] == f"{LAN_SUBNET}=10.100.242.1"


def test_this_machine_routes_no_lab_packet(hosts: dict[str, dict[str, str]]) -> None:
    for name in (NET, LAN, CORE, LINK):
        assert sum(f' net={name}"' in line for line in guard_lines()) == 2
        assert sum(f' net={name}"' in line for line in guard_lines("ip6tables")) == 2
    # The router sends a packet for labtest2-a (another lab network) to this machine's LAN
    # bridge. Netavark turns forwarding off on an internal bridge when it creates it, but any
    # later 0→1 switch of net.ipv4.ip_forward (netavark's, for a NAT network) turns it on for
    # every interface. Emulate that on the LAN bridge: then only the guard stops the packet.
    lan = lab_networks.inspect_network(LAN)
    assert lan is not None
    knob = Path(f"/proc/sys/net/ipv4/conf/{lan['bridge']}/forwarding")
    before, was = dropped(LAN), knob.read_text()
    assert pexec(ROUTER, "ip", "route", "add", SUBNET, "via", "10.100.241.254").returncode == 0
    try:
        knob.write_text("1")
        ping = pexec(ROUTER, "ping", "-c1", "-W2", "10.100.240.10")
    finally:
        knob.write_text(was)
        pexec(ROUTER, "ip", "route", "del", SUBNET)
    assert ping.returncode != 0
    assert dropped(LAN) == before + 1


def test_only_the_egress_host_reaches_debian_mirrors(hosts: dict[str, dict[str, str]]) -> None:
    p = hosts[PROXY]
    assert p["interfaces"] == f"{CORE}=eth0,{EGRESS}=eth1"
    egress = lab_networks.inspect_network(EGRESS)
    assert egress is not None and egress["internal"] == "false"
    assert sum(f' net={EGRESS}"' in line for line in guard_lines()) == 1
    assert pexec(PROXY, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "0"
    got = pexec(PROXY, "sh", "-c", APT_UPDATE, timeout=90)
    assert got.returncode == 0, got.stdout[-500:] + got.stderr[-500:]
    denied = pexec(CLIENT, "sh", "-c", APT_UPDATE, timeout=90)
    # apt-get itself gave up (124 would be `timeout` cutting it off: a lab that lets packets
    # out and waits for answers that never come)
    assert denied.returncode not in (0, 124), denied.stdout[-500:] + denied.stderr[-500:]
    # not only name resolution: there is no route out at all (nothing is sent)
    mirror = pexec(PROXY, "getent", "ahostsv4", "deb.debian.org").stdout.split()[0]
    connect = pexec(
        CLIENT, "python3", "-c", f"import socket; socket.create_connection(({mirror!r}, 80), 5)"
    )
    assert "Network is unreachable" in connect.stderr, connect.stderr


def test_a_lost_default_route_is_seen_and_put_back(
    image: str, hosts: dict[str, dict[str, str]]
) -> None:
    _, pub = keys.lab_keypair(ENV)
    seen = lab_hosts.inspect_host(CLIENT)
    assert seen is not None and seen["gateway"] == "10.100.241.1"
    pid = subprocess.run(
        ["podman", "inspect", "-f", "{{.State.Pid}}", CLIENT],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        ["nsenter", f"--target={pid}", "--net", "ip", "route", "del", "default"], check=True
    )
    drifted = lab_hosts.inspect_host(CLIENT)
    assert drifted is not None and drifted["gateway"] == ""
    again = lab_hosts.create_host(ENV, CLIENT, image, LAN, "10.100.241.10", pub,
                                  gateway="10.100.241.1")
    assert again == hosts[CLIENT]  # same container, route put back
    fixed = lab_hosts.inspect_host(CLIENT)
    assert fixed is not None and fixed["gateway"] == "10.100.241.1"


def test_link_shaping_enforces_both_directions(hosts: dict[str, dict[str, str]]) -> None:
    assert lab_shaping.link_shaping(CLIENT, "eth0") is None
    assert lab_shaping.shape_link(CLIENT, "eth0", down_mbit=20, up_mbit=10) == {
        "down_mbit": 20.0,
        "up_mbit": 10.0,
    }
    try:
        up = throughput(CLIENT, ROUTER, "10.100.241.1")
        down = throughput(ROUTER, CLIENT, "10.100.241.10")
        print(f"shaped 10/20 Mbit/s: up {up:.2f}, down {down:.2f} Mbit/s")
        assert 8.5 <= up <= 11.5
        assert 17.0 <= down <= 23.0
        # idempotent: the same call again, then other rates replace the qdiscs
        assert lab_shaping.shape_link(CLIENT, "eth0", 20, 10) == {
            "down_mbit": 20.0, "up_mbit": 10.0}
        assert lab_shaping.shape_link(CLIENT, "eth0", 2.5, 0.5) == {
            "down_mbit": 2.5, "up_mbit": 0.5}
        assert lab_shaping.link_shaping(CLIENT, "eth0") == {"down_mbit": 2.5, "up_mbit": 0.5}
    finally:
        lab_shaping.unshape_link(CLIENT, "eth0")
    assert lab_shaping.link_shaping(CLIENT, "eth0") is None
    with pytest.raises(lab_runner.LabError, match="no veth interface"):
        lab_shaping.shape_link(CLIENT, "eth7", 10, 10)


def test_the_last_egress_host_takes_the_egress_network_along(
    hosts: dict[str, dict[str, str]],
) -> None:
    lab_hosts.remove_host(PROXY)
    assert lab_hosts.inspect_host(PROXY) is None
    assert lab_networks.inspect_network(EGRESS) is None
    assert not any(f' net={EGRESS}"' in line for line in guard_lines())


def test_teardown_leaves_nothing_labeled(hosts: dict[str, dict[str, str]]) -> None:
    assert lab_networks.ensure_egress_network(ENV)["name"] == EGRESS  # teardown takes it too
    counts = lab_teardown.teardown(ENV)
    assert counts["containers"] == 5 and counts["networks"] == 5 and counts["routes"] == 1
    assert counts["firewall_rules"] == 4 * 4 + 3
    assert labeled("ps", "--all") == []
    assert labeled("network", "ls") == []
    assert guard_lines() == [] and guard_lines("ip6tables") == []
    assert route_type(AGGREGATE) is None
    assert not lab_dir(ENV).exists()
    assert lab_teardown.teardown(ENV) == {
        "containers": 0,
        "networks": 0,
        "firewall_rules": 0,
        "routes": 0,
        "files": 0,
    }
