"""Lab hosts: systemd containers from the golden image.

Hosts (``create_host``):

- Interfaces are predictable: ``eth0`` on the first (management, SSH) network, ``eth1`` … on
  ``extra_networks`` in the order given, and the egress network (if any) last. The result's
  ``interfaces`` says the same as ``"net-a=eth0,net-b=eth1"``.
- ``router=True``: capabilities NET_ADMIN and NET_RAW (what FRR's zebra, ospfd and bgpd need to
  program routes and send raw packets in their own namespace; never SYS_ADMIN, never
  ``--privileged``) and ``net.ipv4.ip_forward=1``. Every other host gets
  ``net.ipv4.ip_forward=0`` explicitly and no extra capabilities, so it can neither route nor
  change its routes (nor run Debian's ping, which needs NET_RAW: test reachability over TCP).
- ``gateway``/``routes`` (not for routers, whose routes are FRR's): the default route and static
  routes are installed from this machine (``nsenter --net``, protocol ``LAB_ROUTE_PROTO``) after
  the container starts. They do not survive a restart of the container behind the lab's back;
  ``inspect_host`` reports the live ones (``gateway``, ``routes``) so a provider's read()
  notices, and ``create_host`` puts them back.
- ``egress=True`` (the centre's apt proxy only; not for routers): the host is also attached to
  ``fd-<env>-egress``, a NAT'd Podman network (subnet picked by Podman from its pool, no DNS),
  which gives it a default route to Debian's mirrors. Egress hosts get Podman's generated
  /etc/resolv.conf (this machine's resolvers), so they cannot also have a lab ``gateway``.
  The egress network is created with the first egress host and removed with the last.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fellesdrift.access.keys import check_key_line as _check_key_line
from fellesdrift.files import locked as _locked
from fellesdrift.lab.guard import _unguard
from fellesdrift.lab.image import _image_exists, golden_image_ref
from fellesdrift.lab.networks import (
    _EGRESS_LOCK,
    egress_network_name,
    ensure_egress_network,
    format_pairs,
    inspect_network,
)
from fellesdrift.lab.podman import PODMAN_CONF, PODMAN_CONF_TEXT, configure_podman
from fellesdrift.lab.runner import (
    LABEL,
    SPEC_LABEL,
    LabError,
    _container_raw,
    _env_dir,
    _netns,
    _podman,
    _run,
    _running_pid,
    _spec_of,
)

#: Admin user of the golden image.
ADMIN_USER = "ops"


#: Capabilities of a router: FRR programs routes (NET_ADMIN) and sends raw packets (NET_RAW).
ROUTER_CAPS = ("NET_ADMIN", "NET_RAW")


#: Routing protocol number of the routes the lab installs in hosts (tells them from FRR's).
LAB_ROUTE_PROTO = 77


_BOOT_TIMEOUT = 90.0


@dataclass(frozen=True)
class HostPlan:
    """What ``podman run`` gets for a host, computed from create_host's arguments alone."""

    spec: dict[str, Any]
    run_args: list[str]
    interfaces: list[tuple[str, str]]

    @property
    def spec_label(self) -> str:
        return _spec_json(self.spec)


def _spec_json(spec: dict[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def _usable_in(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, net: dict[str, str]) -> bool:
    subnet = ipaddress.ip_network(net["subnet"])
    return addr in subnet and str(addr) not in (
        net["gateway"],
        str(subnet.network_address),
        str(subnet.broadcast_address),
    )


def plan_host(
    env: str,
    name: str,
    attachments: Sequence[tuple[str, str]],
    nets: Mapping[str, Mapping[str, str]],
    *,
    router: bool = False,
    egress: bool = False,
    gateway: str | None = None,
    routes: Sequence[tuple[str, str]] = (),
    sysctls: Mapping[str, str] | None = None,
) -> HostPlan:
    """Validate a host's spec and derive its ``podman run`` options (pure; unit-tested).

    ``attachments``: (network, ip) pairs, management first. ``nets``: inspect_network() of each.
    ``sysctls``: namespaced ``net.*`` kernel settings the host gets, written from this machine
    into the container's network namespace once it runs (inside, /proc/sys is read-only). Not
    passed as ``--sysctl``: their order matters, since setting ``ip_forward`` resets
    ``conf.all.accept_redirects``, and Podman applies its sysctls in no fixed order.
    """
    if not attachments:
        raise LabError(f"host {name}: needs at least one network")
    seen: set[str] = set()
    addrs: dict[str, tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, dict[str, str]]] = {}
    for net_name, ip in attachments:
        if net_name in seen:
            raise LabError(f"host {name}: network {net_name} is given twice")
        seen.add(net_name)
        if net_name == egress_network_name(env):
            raise LabError(f"host {name}: attach {net_name} with egress=True, not by name")
        info = nets.get(net_name)
        if info is None:
            raise LabError(f"host {name}: network {net_name} does not exist")
        if info.get("internal", "true") != "true":
            raise LabError(f"host {name}: network {net_name} is not an internal lab network")
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError as exc:
            raise LabError(f"host {name}: invalid address {ip!r}: {exc}") from exc
        if not _usable_in(addr, dict(info)):
            raise LabError(
                f"host {name}: {ip} is not a usable host address of {net_name} "
                f"({info['subnet']}, gateway {info['gateway'] or 'none'})"
            )
        addrs[net_name] = (addr, dict(info))
    if router and egress:
        raise LabError(f"host {name}: a router cannot have egress (it would route the lab out)")
    if router and (gateway or routes):
        raise LabError(f"host {name}: a router's routes come from FRR, not gateway/routes")
    if egress and gateway:
        raise LabError(f"host {name}: an egress host's default route is the egress network")

    def next_hop(via: str, what: str) -> str:
        try:
            hop = ipaddress.ip_address(via)
        except ValueError as exc:
            raise LabError(f"host {name}: invalid {what} {via!r}: {exc}") from exc
        for net_name, (own, info) in addrs.items():
            if hop in ipaddress.ip_network(info["subnet"]):
                if hop == own or not _usable_in(hop, info):
                    raise LabError(
                        f"host {name}: {what} {via} must be another host (a router) of "
                        f"{net_name}, not this host, its network or this machine's bridge"
                    )
                return str(hop)
        raise LabError(f"host {name}: {what} {via} is on none of the host's networks")

    gw = next_hop(gateway, "gateway") if gateway else ""
    route_list: list[list[str]] = []
    for prefix, via in routes:
        try:
            dest = ipaddress.ip_network(prefix, strict=True)
        except ValueError as exc:
            raise LabError(f"host {name}: invalid route prefix {prefix!r}: {exc}") from exc
        if dest.prefixlen == 0:
            raise LabError(f"host {name}: use gateway= for a default route, not routes=")
        route_list.append([str(dest), next_hop(via, f"next hop of {dest}")])

    interfaces = [(n, f"eth{i}") for i, (n, _) in enumerate(attachments)]
    spec: dict[str, Any] = {
        "v": 1,
        "networks": [[n, str(addrs[n][0]), ifname] for n, ifname in interfaces],
        "router": router,
        "egress": egress,
        "gateway": gw,
        "routes": route_list,
    }
    kernel = dict(sorted((sysctls or {}).items()))
    for key in kernel:
        if not key.startswith("net.") or key == "net.ipv4.ip_forward":
            raise LabError(f"host {name}: sysctl {key} is not a namespaced net.* setting the lab "
                           "may set (ip_forward follows router=)")
    if kernel:
        spec["sysctls"] = kernel
    args: list[str] = []
    for n, ifname in interfaces:
        args += ["--network", f"{n}:ip={addrs[n][0]},interface_name={ifname}"]
    if egress:
        interfaces.append((egress_network_name(env), f"eth{len(interfaces)}"))
        args += ["--network", f"{interfaces[-1][0]}:interface_name={interfaces[-1][1]}"]
    else:
        args += ["--dns", "none"]  # never hand lab hosts this machine's resolvers
    args += ["--sysctl", f"net.ipv4.ip_forward={1 if router else 0}"]
    if router:
        for cap in ROUTER_CAPS:
            args += ["--cap-add", cap]
    args += ["--label", f"{SPEC_LABEL}={_spec_json(spec)}"]
    return HostPlan(spec=spec, run_args=args, interfaces=interfaces)


def _host_summary(c: dict[str, Any]) -> dict[str, str]:
    nets: dict[str, Any] = (c.get("NetworkSettings") or {}).get("Networks") or {}
    labels: dict[str, str] = (c.get("Config") or {}).get("Labels") or {}
    env = labels.get(LABEL, "")
    spec = _spec_of(c)
    if spec is not None:
        order = [str(n[0]) for n in spec.get("networks", [])]
        ifaces = [(str(n[0]), str(n[2])) for n in spec.get("networks", [])]
        if spec.get("egress"):
            egress_name = egress_network_name(env)
            order.append(egress_name)
            ifaces.append((egress_name, f"eth{len(ifaces)}"))
    else:  # made before specs were labeled: one network, Podman's eth0
        order = sorted(nets)
        ifaces = [(order[0], "eth0")] if len(order) == 1 else []
    order += [n for n in sorted(nets) if n not in order]
    addrs = [(n, str((nets.get(n) or {}).get("IPAddress", ""))) for n in order]
    network, ip = addrs[0] if addrs else ("", "")
    return {
        "name": str(c.get("Name", "")),
        "id": str(c.get("Id", "")),
        "ip": ip,
        "image": str(c.get("ImageName", "")),
        "state": str((c.get("State") or {}).get("Status", "")),
        "network": network,
        "env": env,
        "networks": format_pairs(addrs),
        "interfaces": format_pairs(ifaces),
        "router": "true" if spec and spec.get("router") else "false",
        "egress": "true" if spec and spec.get("egress") else "false",
    }


def _live_routes(c: dict[str, Any]) -> tuple[str, str]:
    """(gateway, routes) the lab installed and that are live in the container's namespace."""
    state = c.get("State") or {}
    pid = int(state.get("Pid") or 0)
    if not state.get("Running") or pid <= 0:
        return "", ""
    proc = _netns(
        pid,
        "ip",
        "-j",
        "-4",
        "route",
        "show",
        "proto",
        str(LAB_ROUTE_PROTO),
        what=f"{c.get('Name')}: ip route show",
        check=False,
    )
    gateway, routes = "", []
    with contextlib.suppress(json.JSONDecodeError):
        for r in json.loads(proc.stdout or "[]"):
            if r.get("dst") == "default":
                gateway = str(r.get("gateway", ""))
            elif r.get("gateway"):
                dst = str(r.get("dst", ""))
                routes.append((dst if "/" in dst else f"{dst}/32", str(r["gateway"])))
    return gateway, format_pairs(routes)


def inspect_host(name: str) -> dict[str, str] | None:
    """What a container is, or None if absent. String values (plain JSON for Pulumi):

    "name","id","image","state","env"; "network","ip": the first (management) network and
    address; "networks": "net=ip,…" and "interfaces": "net=eth0,…" (management first, egress
    last); "router","egress": "true"/"false"; "gateway","routes": the default route and static
    routes ("prefix=via,…") the lab installed that are live now ("" when stopped).
    """
    c = _container_raw(name)
    if c is None:
        return None
    summary = _host_summary(c)
    summary["gateway"], summary["routes"] = _live_routes(c)
    return summary


def _exec(
    name: str,
    *argv: str,
    what: str,
    input_text: str | None = None,
    check: bool = True,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    opts = ["--interactive"] if input_text is not None else []
    return _podman(
        "exec", *opts, name, *argv, what=what, input_text=input_text, check=check, timeout=timeout
    )


def _wait_booted(name: str, timeout: float = _BOOT_TIMEOUT) -> str:
    """Wait until systemd in the container finished booting; return running/degraded."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        left = max(1, int(deadline - time.monotonic()))
        proc = _exec(
            name,
            "timeout",
            str(left),
            "systemctl",
            "is-system-running",
            "--wait",
            what=f"{name}: systemctl is-system-running",
            check=False,
            timeout=left + 10,
        )
        state = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        if state in ("running", "degraded"):
            return state
        if state in ("stopping", "offline") or proc.returncode == 125:
            c = _container_raw(name)
            if c is None or (c.get("State") or {}).get("Status") != "running":
                raise LabError(f"host {name} stopped while booting: {_logs_tail(name)}")
        time.sleep(0.5)
    failed = _exec(
        name,
        "systemctl",
        "--failed",
        "--no-legend",
        "--plain",
        what=f"{name}: systemctl --failed",
        check=False,
    ).stdout.strip()
    raise LabError(
        f"host {name} did not finish booting in {timeout:.0f}s (state {state!r}); "
        f"failed units: {failed or 'none'}"
    )


def _logs_tail(name: str) -> str:
    proc = _podman("logs", "--tail", "20", name, what=f"podman logs {name}", check=False)
    return (proc.stdout + proc.stderr).strip() or "(no output)"


def _wait_active(name: str, unit: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        proc = _exec(
            name, "systemctl", "is-active", unit, what=f"{name}: is-active {unit}", check=False
        )
        state = proc.stdout.strip()
        if state == "active":
            return
        if state == "failed":
            break
        time.sleep(0.3)
    status = _exec(
        name,
        "systemctl",
        "status",
        "--no-pager",
        "-n",
        "15",
        unit,
        what=f"{name}: systemctl status {unit}",
        check=False,
    ).stdout.strip()
    raise LabError(f"host {name}: {unit} is {state or 'unknown'}, not active:\n{status}")


def _apply_routes(name: str, spec: dict[str, Any]) -> None:
    """Install the spec's default route and static routes (idempotent: ``ip route replace``)."""
    wanted = [("default", str(spec["gateway"]))] if spec.get("gateway") else []
    wanted += [(str(p), str(v)) for p, v in spec.get("routes", [])]
    if not wanted:
        return
    pid = _running_pid(name)
    for dest, via in wanted:
        _netns(
            pid,
            "ip",
            "-4",
            "route",
            "replace",
            dest,
            "via",
            via,
            "proto",
            str(LAB_ROUTE_PROTO),
            what=f"host {name}: ip route replace {dest} via {via}",
        )


def _apply_sysctls(name: str, spec: dict[str, Any]) -> None:
    """Write the spec's net.* sysctls into the running host's network namespace."""
    kernel: dict[str, str] = spec.get("sysctls") or {}
    if kernel:
        _netns(_running_pid(name), "sysctl", "-q", "-w",
               *(f"{k}={v}" for k, v in kernel.items()), what=f"host {name}: sysctl -w")


def create_host(
    env: str,
    name: str,
    image: str,
    network: str,
    ip: str,
    authorized_key: str,
    *,
    extra_networks: Sequence[tuple[str, str]] = (),
    router: bool = False,
    egress: bool = False,
    gateway: str | None = None,
    routes: Sequence[tuple[str, str]] = (),
    sysctls: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Start a systemd lab host and return once SSH accepts ``authorized_key`` for ``ops``.

    ``network``/``ip`` is the management network (eth0, the SSH address); ``extra_networks``
    more (network, ip) pairs (eth1, eth2 …). ``router``: may forward and program its routes
    (FRR). ``egress``: also on the NAT'd egress network (the apt proxy). ``gateway``: default
    route via that address (a router on one of the host's networks); ``routes``: static
    (prefix, via) routes. See the module docstring for the conventions.

    Idempotent: an existing container of the same lab with the same image and spec is reused
    (started if stopped, its routes put back); one with a different spec is replaced. A
    container of the same name that is not part of this lab is a LabError.
    Returns {"name","id","ip","image","host_key","interfaces","networks"}; host_key is the
    ed25519 public key line, interfaces "net=eth0,…", networks "net=ip,…".
    """
    key_line = _check_key_line(authorized_key, f"host {name}: authorized_key")
    attachments = [(network, ip), *((str(n), str(a)) for n, a in extra_networks)]
    nets: dict[str, dict[str, str]] = {}
    for net_name, _ in attachments:
        info = inspect_network(net_name)
        if info is not None:
            nets[net_name] = info
    plan = plan_host(
        env,
        name,
        attachments,
        nets,
        router=router,
        egress=egress,
        gateway=gateway,
        routes=routes,
        sysctls=sysctls,
    )
    configure_podman()
    lock = _locked(_env_dir(env) / _EGRESS_LOCK) if egress else contextlib.nullcontext()
    with lock:
        if egress:
            ensure_egress_network(env)
        raw = _container_raw(name)
        if raw is not None:
            have = _host_summary(raw)
            if have["env"] != env:
                raise LabError(
                    f"container {name} exists and is not part of lab {env!r} "
                    f"(label {LABEL}={have['env'] or '<none>'}); not touching it"
                )
            if have["image"] == image and _spec_of(raw) == plan.spec:
                if have["state"] != "running":
                    _podman("start", name, what=f"podman start {name}")
            else:
                _remove_container(name)
                raw = None
        if raw is None:
            _podman(
                "run",
                "--detach",
                "--name",
                name,
                "--hostname",
                name,
                "--label",
                f"{LABEL}={env}",
                *plan.run_args,
                "--systemd",
                "always",
                image,
                "/sbin/init",
                what=f"podman run {name} ({image}) on {format_pairs(attachments)}",
            )
    _apply_routes(name, plan.spec)
    _apply_sysctls(name, plan.spec)
    # A host made again at an address this machine has talked to: forget the old neighbour
    # entry (the old MAC), or SSH times out until the kernel notices.
    for _, ip in attachments:
        _run(["ip", "neigh", "flush", "to", ip], f"ip neigh flush to {ip}", check=False)
    _wait_booted(name)
    _exec(
        name,
        "sh",
        "-c",
        f"set -e; d=/home/{ADMIN_USER}/.ssh; install -d -m 0700 -o {ADMIN_USER} "
        f'-g {ADMIN_USER} "$d"; umask 077; cat > "$d/authorized_keys.new"; '
        f'chown {ADMIN_USER}:{ADMIN_USER} "$d/authorized_keys.new"; '
        f'mv -f "$d/authorized_keys.new" "$d/authorized_keys"',
        input_text=key_line + "\n",
        what=f"host {name}: installing the authorized key for {ADMIN_USER}",
    )
    _wait_active(name, "ssh.service")
    pub = _exec(
        name,
        "cat",
        "/etc/ssh/ssh_host_ed25519_key.pub",
        what=f"host {name}: reading the ed25519 host key",
    ).stdout
    host_key = " ".join(_check_key_line(pub, f"host {name}: host key").split()[:2])
    c = _container_raw(name)
    if c is None:
        raise LabError(f"host {name} vanished while starting")
    summary = _host_summary(c)
    return {
        "name": name,
        "id": summary["id"],
        "ip": summary["ip"],
        "image": summary["image"],
        "host_key": host_key,
        "interfaces": summary["interfaces"],
        "networks": summary["networks"],
    }


def _remove_container(name: str) -> None:
    _podman("rm", "--force", "--ignore", "--time", "10", name, what=f"podman rm {name}")


def remove_host(name: str) -> None:
    """Stop and remove a container; absent is fine. The last egress host takes the lab's
    egress network with it."""
    c = _container_raw(name)
    _remove_container(name)
    spec = None if c is None else _spec_of(c)
    env = str((((c or {}).get("Config") or {}).get("Labels") or {}).get(LABEL, ""))
    if spec and spec.get("egress") and env:
        with _locked(_env_dir(env) / _EGRESS_LOCK):
            egress = egress_network_name(env)
            # `podman network rm` without --force refuses while another container uses it
            proc = _podman("network", "rm", egress, what=f"podman network rm {egress}", check=False)
            if proc.returncode == 0:
                _unguard(net=egress)


def can_start_host() -> tuple[bool, str]:
    """Start and remove a throwaway systemd container from the golden image; report how it went."""
    if shutil.which("podman") is None:
        return False, "podman is not installed: apt-get install podman runc uidmap"
    try:
        ref = golden_image_ref()
    except LabError as exc:
        return False, str(exc)
    if not _image_exists(ref):
        return False, (
            f"golden image {ref} is not built yet; build it with "
            f"`python -m fellesdrift.lab build-image` (about a minute)"
        )
    conf_ok = PODMAN_CONF.exists() and PODMAN_CONF.read_text() == PODMAN_CONF_TEXT
    name = f"fellesdrift-doctor-{os.getpid()}"
    started = time.monotonic()
    try:
        _podman(
            "run",
            "--detach",
            "--name",
            name,
            "--label",
            f"{LABEL}=doctor",
            "--network",
            "none",
            "--systemd",
            "always",
            ref,
            "/sbin/init",
            what="podman run (throwaway systemd container)",
        )
        state = _wait_booted(name, timeout=60)
    except LabError as exc:
        hint = (
            ""
            if conf_ok
            else f" {PODMAN_CONF} is missing or stale: run "
            "`python -m fellesdrift.lab configure` (runc, cgroupfs, ulimits) and retry."
        )
        return False, f"cannot start a systemd container: {exc}.{hint}"
    finally:
        with contextlib.suppress(LabError):
            remove_host(name)
    return True, (
        f"systemd container from {ref} booted ({state}) in {time.monotonic() - started:.1f}s"
    )
