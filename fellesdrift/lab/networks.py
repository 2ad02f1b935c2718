"""Lab networks: internal Podman networks with fixed addresses, and the
egress network of the apt proxy.

Addresses on a lab network (``ensure_network(..., gateway=...)``; ``gateway`` is Podman's word
for the address the host bridge, i.e. this machine, takes):

- A network with a router on it (site LAN, centre server network): the router takes the FIRST
  usable address (``router_address(subnet)``, .1 in a /24) and hosts use it as their default
  gateway; the control node's bridge takes the LAST usable address
  (``control_address(subnet)``, .254 in a /24, .6 in a /29). Pass
  ``gateway=control_address(subnet)``.
- ``gateway=None`` keeps the original behaviour: the bridge takes the first usable address
  (a management-only network without a router).
- ``gateway=NO_BRIDGE`` ("none"): the bridge has no address; the control node is not on that
  network (a transit link between two routers, which it reaches over their first networks).
  That allows /30 point-to-point links; with a bridge address a link needs at least a /29.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from typing import Any

from fellesdrift.lab.guard import _guard_network, _unguard
from fellesdrift.lab.podman import configure_podman
from fellesdrift.lab.runner import (
    LABEL,
    LabError,
    _container_raw,
    _netns,
    _network_raw,
    _network_summary,
    _podman,
    _running_pid,
    _spec_of,
)

#: ``ensure_network(..., gateway=NO_BRIDGE)``: the bridge gets no address (transit links).
NO_BRIDGE = "none"


_EGRESS_LOCK = ".egress.lock"


def _parse_subnet(subnet: str, what: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(subnet, strict=True)
    except ValueError as exc:
        raise LabError(f"{what}: invalid subnet {subnet!r}: {exc}") from exc
    if not isinstance(net, ipaddress.IPv4Network):
        raise LabError(f"{what}: {subnet} is not an IPv4 subnet")
    if net.num_addresses < 4:
        raise LabError(f"{what}: subnet {subnet} is too small")
    return net


def router_address(subnet: str) -> str:
    """The first usable address of a lab subnet: the router's (hosts' default gateway)."""
    net = _parse_subnet(subnet, "router_address")
    return str(net.network_address + 1)


def control_address(subnet: str) -> str:
    """The last usable address of a lab subnet: the control node's bridge on a routed network."""
    net = _parse_subnet(subnet, "control_address")
    return str(net.broadcast_address - 1)


def egress_network_name(env: str) -> str:
    """The NAT'd network of lab ``env`` that reaches Debian's mirrors (apt proxy only)."""
    return f"fd-{env}-egress"


def format_pairs(pairs: Sequence[tuple[str, str]]) -> str:
    """``[("a","1"),("b","2")]`` → ``"a=1,b=2"`` (the form of ``interfaces``/``networks``)."""
    return ",".join(f"{k}={v}" for k, v in pairs)


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """The inverse of :func:`format_pairs`; ``""`` → ``[]``."""
    out: list[tuple[str, str]] = []
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LabError(f"not a name=value list: {text!r}")
        out.append((key, value))
    return out


def inspect_network(name: str) -> dict[str, str] | None:
    """{"name","subnet","gateway","id","bridge","internal"} of a Podman network, or None.

    ``gateway`` is the bridge's (this machine's) address, "" when it has none; ``bridge`` the
    host interface; ``internal`` "true" or "false".
    """
    net = _network_raw(name)
    return None if net is None else _network_summary(net)


def _owner_check(raw: dict[str, Any], env: str) -> None:
    owner = (raw.get("labels") or {}).get(LABEL)
    if owner != env:
        raise LabError(
            f"network {raw.get('name')} exists but belongs to "
            f"{f'lab {owner!r}' if owner else 'no lab'}, not lab {env!r}"
        )


def _bridge_address(net4: ipaddress.IPv4Network, gateway: str | None, what: str) -> str | None:
    """The bridge address ensure_network asks Podman for (None: no address)."""
    if gateway is None:
        return str(net4.network_address + 1)
    if gateway == NO_BRIDGE:
        return None
    try:
        addr = ipaddress.ip_address(gateway)
    except ValueError as exc:
        raise LabError(f"{what}: invalid gateway {gateway!r}: {exc}") from exc
    if addr not in net4 or addr in (net4.network_address, net4.broadcast_address):
        raise LabError(f"{what}: gateway {gateway} is not a usable address of {net4}")
    return str(addr)


def ensure_network(env: str, name: str, subnet: str, gateway: str | None = None) -> dict[str, str]:
    """An internal (no NAT, no uplink) lab network, guarded against forwarding on this machine.

    ``gateway`` is the address of this machine's bridge on it: None (default) the first usable
    address; an address (normally ``control_address(subnet)``, leaving the first for a router);
    or ``NO_BRIDGE`` for none. Returns the existing network if it has the same subnet (and, when
    ``gateway`` is given, the same bridge address); otherwise a LabError.
    """
    what = f"network {name}"
    net4 = _parse_subnet(subnet, what)
    bridge_ip = _bridge_address(net4, gateway, what)
    configure_podman()

    def existing() -> dict[str, Any] | None:
        raw = _network_raw(name)
        if raw is None:
            return None
        have = _network_summary(raw)
        _owner_check(raw, env)
        if have["subnet"] != str(net4):
            raise LabError(
                f"network {name} exists with subnet {have['subnet']}, not {net4}; "
                f"remove it (teardown) before changing its subnet"
            )
        if gateway is not None and have["gateway"] != (bridge_ip or ""):
            raise LabError(
                f"network {name} exists with bridge address {have['gateway'] or 'none'}, not "
                f"{bridge_ip or 'none'}; remove it (teardown) before changing it"
            )
        if not raw.get("internal"):
            raise LabError(f"network {name} exists but is not internal; remove it first")
        return raw

    raw = existing()
    if raw is None:
        gw_args = ["--gateway", bridge_ip] if bridge_ip else []
        proc = _podman(
            "network",
            "create",
            "--driver",
            "bridge",
            "--internal",  # no NAT, no default route in containers
            "--disable-dns",  # aardvark-dns would forward to this machine's resolvers
            "--subnet",
            str(net4),
            *gw_args,  # internal networks get no bridge address otherwise
            "--label",
            f"{LABEL}={env}",
            name,
            what=f"podman network create {name} ({net4})",
            check=False,
        )
        raw = existing()  # also covers a parallel creator winning the race
        if raw is None:
            detail = proc.stderr.strip() or f"exit status {proc.returncode}"
            raise LabError(f"podman network create {name} ({net4}): {detail}")
    _guard_network(env, raw)
    return _network_summary(raw)


def ensure_egress_network(env: str) -> dict[str, str]:
    """The lab's NAT'd network ``fd-<env>-egress`` (Podman picks the subnet), guarded."""
    name = egress_network_name(env)
    configure_podman()
    raw = _network_raw(name)
    if raw is None:
        proc = _podman(
            "network",
            "create",
            "--driver",
            "bridge",
            "--disable-dns",
            "--label",
            f"{LABEL}={env}",
            name,
            what=f"podman network create {name}",
            check=False,
        )
        raw = _network_raw(name)
        if raw is None:
            detail = proc.stderr.strip() or f"exit status {proc.returncode}"
            raise LabError(f"podman network create {name}: {detail}")
    _owner_check(raw, env)
    if raw.get("internal"):
        raise LabError(f"network {name} exists but is internal; remove it first")
    _guard_network(env, raw)
    return _network_summary(raw)


def remove_network(name: str) -> None:
    """Remove a network and its forward-guard rules; absent is fine. Hosts merely attached to
    it afterwards (connect_host: the core router on a site's link) are detached first; a host
    made on it keeps it in use, which is a LabError."""
    if _network_raw(name) is not None:
        attached = _podman("ps", "-a", "--filter", f"network={name}", "--format", "{{.Names}}",
                           what=f"podman ps --filter network={name}").stdout.split()
        for host in attached:
            spec = _spec_of(_container_raw(host) or {}) or {}
            if name not in {str(n[0]) for n in spec.get("networks", [])}:
                disconnect_host(host, name)
        proc = _podman("network", "rm", name, what=f"podman network rm {name}", check=False)
        if proc.returncode != 0 and _network_raw(name) is not None:
            raise LabError(f"podman network rm {name}: {proc.stderr.strip()}")
    _unguard(net=name)


def interface_of(name: str, ip: str) -> str | None:
    """The interface of a running host that carries ``ip``, or None."""
    out = _netns(_running_pid(name), "ip", "-j", "-4", "addr", "show", what="ip addr").stdout
    for link in json.loads(out or "[]"):
        if any(a.get("local") == ip for a in link.get("addr_info", [])):
            return str(link["ifname"])
    return None


def connect_host(name: str, network: str, ip: str) -> str:
    """Attach a running host to one more lab network at ``ip`` (e.g. the core router to a
    site's broadband link, made by another stack); idempotent. Returns the interface name."""
    c = _container_raw(name)
    if c is None:
        raise LabError(f"host {name} does not exist")
    nets: dict[str, Any] = (c.get("NetworkSettings") or {}).get("Networks") or {}
    have = (nets.get(network) or {}).get("IPAddress")
    if have and have != ip:
        _podman("network", "disconnect", network, name, what=f"podman network disconnect {name}")
        have = None
    if not have:
        _podman("network", "connect", "--ip", ip, network, name,
                what=f"podman network connect {network} {name}")
    iface = interface_of(name, ip)
    if iface is None:
        raise LabError(f"host {name}: {ip} on {network} did not come up")
    return iface


def disconnect_host(name: str, network: str) -> None:
    """Detach a host from a network; absent host or network is fine."""
    c = _container_raw(name)
    nets: dict[str, Any] = ((c or {}).get("NetworkSettings") or {}).get("Networks") or {}
    if c is not None and network in nets:
        _podman("network", "disconnect", network, name, what=f"podman network disconnect {name}")


def attachment(name: str, network: str) -> str | None:
    """The address a host has on a network, or None (host or attachment absent)."""
    c = _container_raw(name)
    nets: dict[str, Any] = ((c or {}).get("NetworkSettings") or {}).get("Networks") or {}
    return str((nets.get(network) or {}).get("IPAddress") or "") or None
