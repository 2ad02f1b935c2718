"""A broadband link's bandwidth on a lab host's interface (tbf).

Link shaping (``shape_link``; tbf only: netem does not exist on this kernel, so bandwidth can be
enforced but latency cannot): ``up`` (container → network) is a tbf root qdisc on the
container's interface, set from this machine with ``nsenter --net``, so the container needs no
capability; ``down`` (network → container) is a tbf root qdisc on the host-side veth peer of
that interface, whose egress is exactly what the container receives. Both are ``tc qdisc
replace`` (idempotent) and both vanish with the veth pair when the container restarts;
``link_shaping`` reads the live qdiscs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fellesdrift.lab.runner import LabError, _netns, _run, _running_pid


def tbf_args(mbit: float) -> list[str]:
    """``tc`` arguments of a tbf qdisc limiting to ``mbit`` Mbit/s.

    The bucket holds 10 ms of traffic (at least 16 KiB): more than one jiffy at HZ=250 and a few
    full-size frames, little enough that a second-long measurement sees the rate.
    """
    if not 0 < mbit <= 100_000:
        raise LabError(f"link shaping: rate {mbit} Mbit/s is not in (0, 100000]")
    bits = round(mbit * 1_000_000)
    burst = max(bits // 8 // 100, 16 * 1024)
    return ["tbf", "rate", f"{bits}bit", "burst", str(burst), "latency", "50ms"]


def tbf_mbit(qdiscs: Any) -> float | None:
    """The rate of the root tbf qdisc in ``tc -j qdisc show`` output, in Mbit/s (None: none)."""
    for q in qdiscs if isinstance(qdiscs, list) else []:
        if isinstance(q, dict) and q.get("root") and q.get("kind") == "tbf":
            rate = (q.get("options") or {}).get("rate")
            if isinstance(rate, int | float):
                return round(float(rate) * 8 / 1_000_000, 6)
    return None


def _check_ifname(interface: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", interface):
        raise LabError(f"link shaping: invalid interface name {interface!r}")


def _link_ends(container: str, interface: str) -> tuple[int, str] | None:
    """(container pid, host-side veth peer) of a container interface; None if not running."""
    _check_ifname(interface)
    try:
        pid = _running_pid(container)
    except LabError:
        return None
    proc = _netns(
        pid,
        "ip",
        "-j",
        "link",
        "show",
        "dev",
        interface,
        what=f"{container}: ip link show {interface}",
        check=False,
    )
    links = json.loads(proc.stdout or "[]") if proc.returncode == 0 else []
    if not links or "link_index" not in links[0]:
        raise LabError(f"link shaping: {container} has no veth interface {interface!r}")
    inner, peer_index = int(links[0]["ifindex"]), int(links[0]["link_index"])
    host = json.loads(_run(["ip", "-j", "-d", "link", "show"], "ip link show").stdout or "[]")
    for link in host:
        if (
            link.get("ifindex") == peer_index
            and (link.get("linkinfo") or {}).get("info_kind") == "veth"
            and link.get("link_index") == inner
        ):
            return pid, str(link["ifname"])
    raise LabError(f"link shaping: cannot find the host side of {container}:{interface}")


def shape_link(
    container: str, interface: str, down_mbit: float, up_mbit: float
) -> dict[str, float]:
    """Limit a container interface's bandwidth with tbf; idempotent (``tc qdisc replace``).

    ``up_mbit``: what the container sends (tbf on its interface, set from this machine via
    nsenter, so the container needs no capability). ``down_mbit``: what it receives (tbf on the
    host-side veth peer). Returns link_shaping() as read back.
    """
    up, down = tbf_args(up_mbit), tbf_args(down_mbit)
    ends = _link_ends(container, interface)
    if ends is None:
        raise LabError(f"link shaping: host {container} is not running")
    pid, peer = ends
    _netns(
        pid,
        "tc",
        "qdisc",
        "replace",
        "dev",
        interface,
        "root",
        *up,
        what=f"{container}:{interface}: tc qdisc replace (up {up_mbit} Mbit/s)",
    )
    _run(
        ["tc", "qdisc", "replace", "dev", peer, "root", *down],
        f"{container}:{interface} (host side {peer}): tc qdisc replace (down {down_mbit} Mbit/s)",
    )
    got = link_shaping(container, interface)
    if got is None:
        raise LabError(f"link shaping: {container}:{interface} shows no tbf after setting it")
    return got


def _tbf_rates(container: str, interface: str
               ) -> tuple[int, str, float | None, float | None] | None:
    """(pid, host-side peer, up, down) tbf rates in Mbit/s on a container interface (None: that
    direction unshaped), or None if the container is not running."""
    ends = _link_ends(container, interface)
    if ends is None:
        return None
    pid, peer = ends
    inner = _netns(pid, "tc", "-j", "qdisc", "show", "dev", interface,
                   what=f"{container}:{interface}: tc qdisc show")
    outer = _run(["tc", "-j", "qdisc", "show", "dev", peer], f"tc qdisc show dev {peer}")
    return (pid, peer, tbf_mbit(json.loads(inner.stdout or "[]")),
            tbf_mbit(json.loads(outer.stdout or "[]")))


def link_shaping(container: str, interface: str) -> dict[str, float] | None:
    """{"down_mbit","up_mbit"} live on a container interface (0.0: that direction unshaped),
    or None if neither is shaped or the container is not running."""
    rates = _tbf_rates(container, interface)
    if rates is None or rates[2] is None and rates[3] is None:
        return None
    _, _, up, down = rates
    return {"down_mbit": down or 0.0, "up_mbit": up or 0.0}


def unshape_link(container: str, interface: str) -> None:
    """Remove the tbf qdiscs shape_link set (both directions); unshaped or stopped is fine."""
    rates = _tbf_rates(container, interface)
    if rates is None:
        return
    pid, peer, up, down = rates
    if up is not None:
        _netns(pid, "tc", "qdisc", "del", "dev", interface, "root",
               what=f"{container}:{interface}: tc qdisc del")
    if down is not None:
        _run(["tc", "qdisc", "del", "dev", peer, "root"], f"tc qdisc del dev {peer}")
