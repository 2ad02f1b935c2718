"""What the role ``site_router`` promises on the core router and every site router."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import inventory_vars, only_for, role_vars_for

#: The host functions this suite checks (conftest parametrizes it with those hosts only).
FUNCTIONS = ('site_router', 'core_router')


@pytest.fixture(scope="module")
def router(host: Any) -> dict[str, Any]:
    only_for(host, "site_router", "core_router")
    return role_vars_for(host, "site_router")


def test_frr_runs_with_bgpd(host: Any, router: dict[str, Any]) -> None:
    assert host.service("frr").is_running
    assert host.service("frr").is_enabled
    with host.sudo():
        assert host.process.filter(comm="bgpd"), "bgpd does not run"
        assert host.process.filter(comm="zebra"), "zebra does not run"


def test_netops_gets_vtysh(host: Any, router: dict[str, Any]) -> None:
    user = router["site_router__netops_user"]
    entry = host.check_output(f"getent passwd {user}")
    assert entry.split(":")[6] == "/usr/bin/vtysh"
    assert "frrvty" in host.user(user).groups
    with host.sudo():
        out = host.check_output(f"sudo -u {user} /usr/bin/vtysh -c 'show running-config'")
    assert "service integrated-vtysh-config" in out


def test_netops_accepts_exactly_the_keys(host: Any, router: dict[str, Any]) -> None:
    user = router["site_router__netops_user"]
    with host.sudo():
        keys = host.file(f"/home/{user}/.ssh/authorized_keys").content_string
    have = {" ".join(k.split()[:2]) for k in keys.splitlines() if k.strip()}
    want = {" ".join(k.split()[:2]) for k in router["site_router__netops_keys"]}
    assert want, "no netops key in the inventory: the network phase could not log in"
    assert have == want


def test_forwarding_is_on(host: Any, router: dict[str, Any]) -> None:
    assert host.file("/proc/sys/net/ipv4/ip_forward").content_string.strip() == "1"


def test_the_core_router_serves_iperf3_on_every_site_link(host: Any,
                                                          router: dict[str, Any]) -> None:
    """One iperf3 server per site link (unit iperf3@ADDRESS), listening on the core's address
    on that link: as many as the inventory has site clients."""
    only_for(host, "core_router")
    servers = list(router["site_router__iperf3_servers"])
    sites = inventory_vars(host).get("groups", {}).get("site_client", [])
    assert len(servers) == len(sites), (
        f"{len(servers)} iperf3 servers for {len(sites)} site clients")
    port = router["site_router__iperf3_port"]
    listening = set(host.socket.get_listening_sockets())
    units = [f"iperf3@{address}" for address in servers]
    # One systemctl call each for all units (one round trip, not two per link).
    active = host.run("systemctl is-active " + " ".join(units)).stdout.split()
    enabled = host.run("systemctl is-enabled " + " ".join(units)).stdout.split()
    assert len(active) == len(enabled) == len(units), (active, enabled)
    for unit, address, a, e in zip(units, servers, active, enabled, strict=True):
        assert (a, e) == ("active", "enabled"), f"{unit}: {a}, {e}"
        assert f"tcp://{address}:{port}" in listening, f"nothing listens on {address}:{port}"
