"""Safety routes: while a lab exists its aggregates are routed `unreachable` on this machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from pathlib import Path

from fellesdrift.files import locked as _locked
from fellesdrift.files import write_atomic as _write_atomic
from fellesdrift.lab.runner import _LOCK_NAME, LabError, _env_dir, _run
from fellesdrift.paths import lab_dir


def _guarded_addresses() -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Addresses an unreachable route must never cover: this machine's uplink and resolvers."""
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for fam in ("-4", "-6"):
        proc = _run(
            ["ip", "-j", fam, "route", "show", "default"], "ip route show default", check=False
        )
        with contextlib.suppress(json.JSONDecodeError):
            for r in json.loads(proc.stdout or "[]"):
                with contextlib.suppress(ValueError, KeyError):
                    found.append(ipaddress.ip_address(r["gateway"]))
        proc = _run(["ip", "-j", fam, "addr", "show"], "ip addr show", check=False)
        with contextlib.suppress(json.JSONDecodeError):
            for link in json.loads(proc.stdout or "[]"):
                if str(link.get("ifname", "")).startswith(("podman", "veth", "lo")):
                    continue
                for a in link.get("addr_info", []):
                    with contextlib.suppress(ValueError, KeyError):
                        found.append(ipaddress.ip_address(a["local"]))
    with contextlib.suppress(OSError):
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                with contextlib.suppress(ValueError):
                    found.append(ipaddress.ip_address(parts[1].split("%")[0]))
    return found


def _check_prefixes(prefixes: list[str]) -> list[str]:
    nets = []
    for p in prefixes:
        try:
            net = ipaddress.ip_network(p, strict=True)
        except ValueError as exc:
            raise LabError(f"unreachable route: invalid prefix {p!r}: {exc}") from exc
        if not net.is_private or net.prefixlen < 8:
            raise LabError(
                f"unreachable route: refusing {net} (only private prefixes, /8 or "
                f"longer, may be blackholed)"
            )
        nets.append(net)
    guarded = _guarded_addresses()
    for net in nets:
        hit = [str(a) for a in guarded if a.version == net.version and a in net]
        if hit:
            raise LabError(
                f"unreachable route: refusing {net}: it covers this machine's "
                f"uplink or resolver ({', '.join(hit)})"
            )
    return [str(n) for n in nets]


def _route_type(prefix: str) -> str | None:
    proc = _run(["ip", "-j", "route", "show", "exact", prefix], f"ip route show {prefix}")
    routes = json.loads(proc.stdout or "[]")
    if not routes:
        return None
    return str(routes[0].get("type", "unicast"))


def _routes_file(env: str) -> Path:
    return lab_dir(env) / "routes"


def _record_routes(env: str, add: list[str], remove: list[str]) -> None:
    d = _env_dir(env)
    path = _routes_file(env)
    with _locked(d / _LOCK_NAME):
        have = path.read_text().split() if path.exists() else []
        new = [p for p in have if p not in remove] + [p for p in add if p not in have]
        _write_atomic(path, "".join(f"{p}\n" for p in new), 0o600)


def add_unreachable_routes(prefixes: list[str], env: str | None = None) -> None:
    """Route each lab aggregate as ``unreachable`` so a packet for a missing lab host dies here.

    The lab bridges' connected routes are more specific, so existing hosts stay reachable.
    With ``env`` the prefixes are recorded in lab_dir(env)/routes for teardown(env).
    Refuses a prefix that already has a non-unreachable route of exactly that size.
    """
    nets = _check_prefixes(prefixes)
    for p in nets:
        kind = _route_type(p)
        if kind not in (None, "unreachable"):
            raise LabError(f"unreachable route: {p} is already routed ({kind}); not replacing")
    if env is not None:
        _record_routes(env, nets, [])
    for p in nets:
        _run(["ip", "route", "replace", "unreachable", p], f"ip route replace unreachable {p}")


def remove_unreachable_routes(prefixes: list[str], env: str | None = None) -> None:
    """Delete the ``unreachable`` routes for these prefixes (other route types stay); idempotent."""
    nets = [str(ipaddress.ip_network(p, strict=False)) for p in prefixes]
    for p in nets:
        if _route_type(p) == "unreachable":
            proc = _run(["ip", "route", "del", "unreachable", p], f"ip route del {p}", check=False)
            if proc.returncode != 0 and _route_type(p) == "unreachable":
                raise LabError(f"ip route del unreachable {p}: {proc.stderr.strip()}")
    if env is not None and _routes_file(env).exists():
        _record_routes(env, [], nets)
