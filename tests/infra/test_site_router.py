"""What the role ``site_router`` promises on the core router and every site router."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import only_for, role_vars_for


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
    user = router["site_router_netops_user"]
    entry = host.check_output(f"getent passwd {user}")
    assert entry.split(":")[6] == "/usr/bin/vtysh"
    assert "frrvty" in host.user(user).groups
    with host.sudo():
        out = host.check_output(f"sudo -u {user} /usr/bin/vtysh -c 'show running-config'")
    assert "service integrated-vtysh-config" in out


def test_netops_accepts_exactly_the_keys(host: Any, router: dict[str, Any]) -> None:
    user = router["site_router_netops_user"]
    with host.sudo():
        keys = host.file(f"/home/{user}/.ssh/authorized_keys").content_string
    have = {" ".join(k.split()[:2]) for k in keys.splitlines() if k.strip()}
    want = {" ".join(k.split()[:2]) for k in router["site_router_netops_keys"]}
    if want:
        assert have == want


def test_forwarding_is_on(host: Any, router: dict[str, Any]) -> None:
    assert host.file("/proc/sys/net/ipv4/ip_forward").content_string.strip() == "1"


def test_core_router_answers_iperf3(host: Any, router: dict[str, Any]) -> None:
    if not router["site_router_iperf3_server"]:
        pytest.skip("no iperf3 server asked for on this router")
    assert host.service("iperf3").is_running
    assert host.socket(f"tcp://0.0.0.0:{router['site_router_iperf3_port']}").is_listening or \
        host.socket(f"tcp://:::{router['site_router_iperf3_port']}").is_listening
