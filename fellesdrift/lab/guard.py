"""The forward guard: this machine never routes a lab packet.

Forward guard: this machine must never route a lab packet. For every lab network it ensures,
iptables and ip6tables FORWARD rules (comment ``fellesdrift.lab=<env> net=<name>``) drop what
enters the network's bridge and leaves by another interface, and the reverse; bridged traffic
between hosts of one network (in and out the same bridge) passes. The egress bridge forwards
only packets whose source is in its own subnet (netavark then masquerades them), so a lab
address can never leave the machine un-NATed. ``remove_network`` and ``teardown`` remove the
rules; stale rules (network gone, bridge renamed) are swept on every ``ensure_network``.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from typing import Any

from fellesdrift.files import locked as _locked
from fellesdrift.lab.runner import LABEL, LabError, _network_summary, _podman_json, _run
from fellesdrift.paths import CACHE_DIR

#: One lock for this machine's forward-guard rules, whichever checkout or lab edits them.
_GUARD_LOCK = CACHE_DIR / "lab-guard.lock"


def guard_comment(env: str, net: str) -> str:
    return f"{LABEL}={env} net={net}"


def parse_guard_comment(comment: str) -> tuple[str, str] | None:
    """(env, net) of a forward-guard rule comment, or None if it is not one."""
    parts = comment.split()
    if (
        len(parts) == 2
        and parts[0].startswith(f"{LABEL}=")
        and parts[1].startswith("net=")
        and len(parts[0]) > len(LABEL) + 1
        and len(parts[1]) > 4
    ):
        return parts[0][len(LABEL) + 1 :], parts[1][4:]
    return None


def guard_rules(
    env: str, net: str, bridge: str, subnet: str, egress: bool
) -> list[tuple[str, list[str]]]:
    """(iptables binary, FORWARD rule spec) pairs that keep this machine from routing for
    network ``net`` (see "Forward guard" in the module docstring)."""
    comment = ["-m", "comment", "--comment", guard_comment(env, net)]
    both_ways = [
        ["-i", bridge, "!", "-o", bridge, *comment, "-j", "DROP"],
        ["!", "-i", bridge, "-o", bridge, *comment, "-j", "DROP"],
    ]
    v4 = [["-i", bridge, "!", "-s", subnet, *comment, "-j", "DROP"]] if egress else both_ways
    return [("iptables", r) for r in v4] + [("ip6tables", r) for r in both_ways]


def _ipt(binary: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if shutil.which(binary) is None:
        raise LabError(f"forward guard: {binary} is not installed (apt-get install iptables)")
    return _run([binary, "-w", "10", *args], f"{binary} {' '.join(args[:2])}", check=check)


def _guard_listing() -> list[tuple[str, list[str], str, str]]:
    """Every forward-guard rule: (binary, spec as printed by -S, env, net)."""
    found = []
    for binary in ("iptables", "ip6tables"):
        for line in _ipt(binary, "-S", "FORWARD").stdout.splitlines():
            try:
                argv = shlex.split(line)
            except ValueError:
                continue
            if argv[:2] != ["-A", "FORWARD"] or "--comment" not in argv:
                continue
            parsed = parse_guard_comment(argv[argv.index("--comment") + 1])
            if parsed is not None:
                found.append((binary, argv[2:], *parsed))
    return found


def _guard_network(env: str, raw: dict[str, Any]) -> None:
    """Add the network's guard rules if missing; sweep rules of networks that are gone."""
    net = _network_summary(raw)
    if not net["bridge"]:
        raise LabError(f"network {net['name']}: Podman reports no bridge interface")
    egress = not raw.get("internal")
    with _locked(_GUARD_LOCK):
        known = {
            str(n.get("name")): str(n.get("network_interface", ""))
            for n in _podman_json("network", "ls", "--format", "json", what="podman network ls")
            or []
        }
        for binary, spec, _env, rule_net in _guard_listing():
            if known.get(rule_net) not in spec:  # network gone or its bridge renamed
                _ipt(binary, "-D", "FORWARD", *spec, check=False)
        for binary, spec in guard_rules(env, net["name"], net["bridge"], net["subnet"], egress):
            if _ipt(binary, "-C", "FORWARD", *spec, check=False).returncode != 0:
                _ipt(binary, "-I", "FORWARD", "1", *spec)


def _unguard(*, env: str | None = None, net: str | None = None) -> int:
    """Delete the guard rules of one network or of a whole lab; returns how many."""
    removed = 0
    with _locked(_GUARD_LOCK):
        for binary, spec, rule_env, rule_net in _guard_listing():
            if (env is None or rule_env == env) and (net is None or rule_net == net):
                _ipt(binary, "-D", "FORWARD", *spec, check=False)
                removed += 1
    return removed
