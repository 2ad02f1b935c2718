"""The Podman layer of the lab driver: lab networks, systemd hosts, links, keys and safety routes.

A thin, typed wrapper over the ``podman`` CLI (rootful). Every function is idempotent and keeps
no state in the process: Pulumi dynamic providers call it from their own processes, the CLI from
its own. What must survive between calls lives in Podman (labels) or in ``lab_dir(env)``.

Podman facts this relies on (podman 4.3.1, netavark 1.4 on Debian bookworm, verified):

- The network backend is netavark. ``podman network create --internal`` gives the network NO
  gateway unless one is passed; with ``--gateway`` the host's bridge carries that address, so
  this machine (the control node) reaches lab hosts directly over the bridge, while containers
  get no default route and netavark installs no NAT and no filter rules for the network.
- Host IP forwarding is NOT off on a machine where any NAT'd Podman network was ever set up
  (netavark turns ``net.ipv4.ip_forward`` on), and a new network namespace inherits the host's
  IPv4 forwarding setting. Netavark does turn forwarding off on an internal bridge when it
  creates it, but the kernel turns it on again for every interface whenever
  ``net.ipv4.ip_forward`` goes from 0 to 1. So the lab relies on neither; see "Forward guard".
- ``--disable-dns`` keeps aardvark-dns (which forwards to this machine's resolvers) off lab
  networks, and hosts run with ``--dns none``: they never learn this machine's resolvers, and
  their /etc/resolv.conf is an ordinary file that roles may manage. (Egress hosts excepted.)
- ``--network NAME:ip=ADDR,interface_name=IF`` attaches a container to several networks with
  fixed addresses and interface names; ``--sysctl net.ipv4.*`` is set in the container's own
  network namespace.

Conventions
-----------

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

Forward guard: this machine must never route a lab packet. For every lab network it ensures,
iptables and ip6tables FORWARD rules (comment ``fellesdrift.lab=<env> net=<name>``) drop what
enters the network's bridge and leaves by another interface, and the reverse; bridged traffic
between hosts of one network (in and out the same bridge) passes. The egress bridge forwards
only packets whose source is in its own subnet (netavark then masquerades them), so a lab
address can never leave the machine un-NATed. ``remove_network`` and ``teardown`` remove the
rules; stale rules (network gone, bridge renamed) are swept on every ``ensure_network``.

Link shaping (``shape_link``; tbf only: netem does not exist on this kernel, so bandwidth can be
enforced but latency cannot): ``up`` (container → network) is a tbf root qdisc on the
container's interface, set from this machine with ``nsenter --net``, so the container needs no
capability; ``down`` (network → container) is a tbf root qdisc on the host-side veth peer of
that interface, whose egress is exactly what the container receives. Both are ``tc qdisc
replace`` (idempotent) and both vanish with the veth pair when the container restarts;
``link_shaping`` reads the live qdiscs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fellesdrift.paths import CACHE_DIR, ROOT, lab_dir

#: Label key on every container and network of a lab; the value is the env name.
LABEL = "fellesdrift.lab"
#: Repository of the golden image; the tag is the recipe hash.
IMAGE_REPO = "localhost/fellesdrift-golden"
#: The golden image recipe: every file under this folder goes into the image tag.
RECIPE_DIR = ROOT / "scripts" / "golden-image"
#: Podman configuration the lab needs on this machine (see DESIGN.md, "The lab").
PODMAN_CONF = Path("/etc/containers/containers.conf.d/fellesdrift.conf")
PODMAN_CONF_TEXT = """\
# Written by fellesdrift (fellesdrift/lab.py, configure_podman). Rootful Podman on this kernel
# runs containers only with runc (crun rejects the hybrid cgroup layout), the cgroupfs manager,
# and explicit ulimits (the kernel lacks CAP_SYS_RESOURCE for raising them).
[containers]
default_ulimits = ["nofile=1024:20000", "nproc=4096:8192"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"

[network]
# The lab's network isolation was verified with netavark (internal bridge, explicit gateway).
network_backend = "netavark"
"""
#: Admin user of the golden image.
ADMIN_USER = "ops"
#: Label on a host holding the spec it was created with (JSON), for idempotent create_host.
SPEC_LABEL = f"{LABEL}.spec"
#: ``ensure_network(..., gateway=NO_BRIDGE)``: the bridge gets no address (transit links).
NO_BRIDGE = "none"
#: Capabilities of a router: FRR programs routes (NET_ADMIN) and sends raw packets (NET_RAW).
ROUTER_CAPS = ("NET_ADMIN", "NET_RAW")
#: Routing protocol number of the routes the lab installs in hosts (tells them from FRR's).
LAB_ROUTE_PROTO = 77

_BOOT_TIMEOUT = 90.0
_CMD_TIMEOUT = 300.0
_LOCK_NAME = ".lock"
_EGRESS_LOCK = ".egress.lock"
#: One lock for this machine's forward-guard rules, whichever checkout or lab edits them.
_GUARD_LOCK = CACHE_DIR / "lab-guard.lock"


class LabError(RuntimeError):
    """A lab operation failed; the message says what and carries Podman's stderr."""


# --------------------------------------------------------------------------- helpers


def _run(
    argv: Sequence[str],
    what: str,
    *,
    input_text: str | None = None,
    check: bool = True,
    timeout: float = _CMD_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise LabError(f"{what}: {argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{what}: `{' '.join(argv)}` timed out after {timeout:.0f}s") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
        raise LabError(f"{what}: {detail}")
    return proc


def _podman(
    *args: str,
    what: str,
    input_text: str | None = None,
    check: bool = True,
    timeout: float = _CMD_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    return _run(["podman", *args], what, input_text=input_text, check=check, timeout=timeout)


def _podman_json(*args: str, what: str) -> Any:
    out = _podman(*args, what=what).stdout
    try:
        return json.loads(out or "null")
    except json.JSONDecodeError as exc:
        raise LabError(f"{what}: podman printed no JSON: {out[:200]!r}") from exc


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (parallel Pulumi providers, CLI)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _env_dir(env: str) -> Path:
    if not env or "/" in env or env.startswith("."):
        raise LabError(f"invalid lab env name {env!r}")
    d = lab_dir(env)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


# --------------------------------------------------------------------------- podman config


def configure_podman() -> None:
    """Write the lab's containers.conf drop-in (only if it differs) and raise the host's
    inotify limits for many systemd hosts; idempotent."""
    _raise_host_limits()
    try:
        if PODMAN_CONF.exists() and PODMAN_CONF.read_text() == PODMAN_CONF_TEXT:
            return
        _write_atomic(PODMAN_CONF, PODMAN_CONF_TEXT)
    except OSError as exc:
        raise LabError(f"cannot write {PODMAN_CONF} (the lab needs root): {exc}") from exc


# Every systemd host opens inotify instances as root, and all rootful containers share root's
# limit (128 by default: about 25 hosts, after which systemd fails "Failed to create inotify
# object: Too many open files"). While a lab exists the limits are raised; the values found are
# kept in HOST_LIMITS_SAVED and put back when the last lab is torn down.
HOST_LIMITS = {"fs.inotify.max_user_instances": 8192, "fs.inotify.max_user_watches": 1048576}
HOST_LIMITS_SAVED = Path("/run/fellesdrift/host-limits.json")


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def _raise_host_limits() -> None:
    found = {k: int(_sysctl_path(k).read_text()) for k in HOST_LIMITS}
    low = {k: v for k, v in HOST_LIMITS.items() if found[k] < v}
    if not low:
        return
    with _locked(HOST_LIMITS_SAVED.with_suffix(".lock")):
        if not HOST_LIMITS_SAVED.exists():
            _write_atomic(HOST_LIMITS_SAVED, json.dumps(found))
        for key, value in low.items():
            _run(["sysctl", "-q", "-w", f"{key}={value}"], f"sysctl -w {key}")


def _restore_host_limits() -> None:
    """Put the host's limits back once no lab container is left (of any lab)."""
    if not HOST_LIMITS_SAVED.exists():
        return
    left = _podman("ps", "-a", "-q", "--filter", f"label={LABEL}", what="podman ps").stdout
    if left.strip():
        return
    for key, value in json.loads(HOST_LIMITS_SAVED.read_text()).items():
        _run(["sysctl", "-q", "-w", f"{key}={value}"], f"sysctl -w {key}")
    HOST_LIMITS_SAVED.unlink()
    HOST_LIMITS_SAVED.with_suffix(".lock").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        HOST_LIMITS_SAVED.parent.rmdir()


# --------------------------------------------------------------------------- golden image


def recipe_hash(recipe_dir: Path = RECIPE_DIR) -> str:
    """12 hex digits over every recipe file's relative path, mode and content."""
    files = sorted(
        p
        for p in recipe_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith((".pyc", "~"))
    )
    if not files:
        raise LabError(f"golden image recipe not found under {recipe_dir}")
    h = hashlib.sha256()
    for p in files:
        rel = p.relative_to(recipe_dir).as_posix()
        h.update(f"{rel}\0{p.stat().st_mode & 0o111:o}\0".encode())
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:12]


def golden_image_ref(recipe_dir: Path = RECIPE_DIR) -> str:
    """The image reference the current recipe builds (whether or not it exists yet)."""
    return f"{IMAGE_REPO}:{recipe_hash(recipe_dir)}"


def _image_exists(ref: str) -> bool:
    return _podman("image", "exists", ref, what="podman image exists", check=False).returncode == 0


def golden_image(progress: Callable[[str], None] | None = None) -> str:
    """Return the golden image ref, building and importing it only if that tag is missing.

    The root filesystem tarball is cached under CACHE_DIR by the same hash, so after
    ``podman rmi`` the image comes back with one ``podman import``.
    """
    say = progress or (lambda _line: None)
    digest = recipe_hash()
    ref = f"{IMAGE_REPO}:{digest}"
    if _image_exists(ref):
        return ref
    configure_podman()
    cache = CACHE_DIR / "golden"
    with _locked(cache / _LOCK_NAME):
        if _image_exists(ref):  # another process built it while we waited
            return ref
        tarball = cache / f"rootfs-{digest}.tar"
        if not tarball.exists():
            _build_rootfs(tarball, cache / "debs", say)
            for old in cache.glob("rootfs-*.tar"):
                if old != tarball:
                    old.unlink(missing_ok=True)
        else:
            say(f"using cached root filesystem {tarball.name}")
        say(f"importing {ref}")
        _podman(
            "import",
            "--change",
            'CMD ["/sbin/init"]',
            "--change",
            "STOPSIGNAL=SIGRTMIN+3",
            "--change",
            f"LABEL fellesdrift.recipe={digest}",
            "--message",
            f"fellesdrift golden image, recipe {digest}",
            str(tarball),
            ref,
            what=f"podman import of {tarball}",
        )
    say(f"golden image {ref} ready")
    return ref


def _build_rootfs(tarball: Path, debcache: Path, say: Callable[[str], None]) -> None:
    script = RECIPE_DIR / "build.sh"
    say(f"building golden image root filesystem ({script.relative_to(ROOT)}, about a minute)")
    tail: list[str] = []
    with subprocess.Popen(
        ["bash", str(script), str(tarball), str(debcache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-29:], line]
            if line.startswith("==> "):
                say(line[4:])
        rc = proc.wait()
    if rc != 0 or not tarball.exists():
        raise LabError(f"golden image build ({script}) failed (exit {rc}):\n" + "\n".join(tail))


# --------------------------------------------------------------------------- addresses


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


# --------------------------------------------------------------------------- networks


def _inspect(kind: str, name: str) -> dict[str, Any] | None:
    """`podman <kind> inspect` of one network or container, or None if it does not exist."""
    if _podman(kind, "exists", name, what=f"podman {kind} exists", check=False).returncode:
        return None
    data = _podman_json(kind, "inspect", name, what=f"podman {kind} inspect {name}")
    return dict(data[0]) if data else None


def _network_raw(name: str) -> dict[str, Any] | None:
    return _inspect("network", name)


def _network_summary(net: dict[str, Any]) -> dict[str, str]:
    subnets = net.get("subnets") or [{}]
    return {
        "name": str(net.get("name", "")),
        "subnet": str(subnets[0].get("subnet", "")),
        "gateway": str(subnets[0].get("gateway", "") or ""),
        "id": str(net.get("id", "")),
        "bridge": str(net.get("network_interface", "")),
        "internal": "true" if net.get("internal") else "false",
    }


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


# --------------------------------------------------------------------------- forward guard


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


# --------------------------------------------------------------------------- hosts


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


def _container_raw(name: str) -> dict[str, Any] | None:
    return _inspect("container", name)


def _spec_of(c: dict[str, Any]) -> dict[str, Any] | None:
    """The spec a container was created with (its label), None for one made before labels."""
    labels: dict[str, str] = (c.get("Config") or {}).get("Labels") or {}
    with contextlib.suppress(json.JSONDecodeError, TypeError):
        spec = json.loads(labels.get(SPEC_LABEL, ""))
        if isinstance(spec, dict):
            return spec
    return None


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


def _check_key_line(key: str, what: str) -> str:
    line = key.strip()
    parts = line.split()
    if (
        "\n" in line
        or len(parts) < 2
        or not (parts[0].startswith("ssh-") or parts[0].startswith("ecdsa-"))
    ):
        raise LabError(f"{what}: not a single OpenSSH public key line: {line[:60]!r}")
    return line


def _netns(pid: int, *argv: str, what: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command of this machine inside a container's network namespace (as root here)."""
    return _run(["nsenter", f"--target={pid}", "--net", *argv], what, check=check, timeout=30)


def _running_pid(name: str) -> int:
    c = _container_raw(name)
    state = (c or {}).get("State") or {}
    pid = int(state.get("Pid") or 0)
    if c is None or not state.get("Running") or pid <= 0:
        raise LabError(f"host {name} is not running")
    return pid


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


# --------------------------------------------------------------------------- link shaping


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


# --------------------------------------------------------------------------- keys, known_hosts


def lab_keypair(env: str) -> tuple[Path, str]:
    """The lab's ed25519 key pair (made once); returns (private key path, public key line)."""
    d = _env_dir(env)
    key = d / "id_ed25519"
    with _locked(d / _LOCK_NAME):
        if not key.exists() or not key.with_suffix(".pub").exists():
            key.unlink(missing_ok=True)
            key.with_suffix(".pub").unlink(missing_ok=True)
            _run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    f"fellesdrift-lab-{env}",
                    "-f",
                    str(key),
                ],
                f"ssh-keygen for lab {env}",
            )
        key.chmod(0o600)
    return key, key.with_suffix(".pub").read_text().strip()


def known_hosts_path(env: str) -> Path:
    return lab_dir(env) / "known_hosts"


def update_known_hosts_text(text: str, ip: str, host_key: str | None) -> str:
    """known_hosts content with every entry for ``ip`` removed, then ``ip host_key`` appended.

    ``host_key`` None only removes. Entries listing several hosts keep the others.
    """
    out: list[str] = []
    for line in text.splitlines():
        fields = line.split(maxsplit=1)
        if not fields or line.lstrip().startswith("#") or len(fields) < 2:
            out.append(line)
            continue
        marker = ""
        hosts_field, rest = fields
        if hosts_field.startswith("@"):  # @cert-authority / @revoked
            marker = hosts_field + " "
            sub = rest.split(maxsplit=1)
            if len(sub) < 2:
                out.append(line)
                continue
            hosts_field, rest = sub
        hosts = hosts_field.split(",")
        kept = [h for h in hosts if h not in (ip, f"[{ip}]:22")]
        if len(kept) == len(hosts):
            out.append(line)
        elif kept:
            out.append(f"{marker}{','.join(kept)} {rest}")
    if host_key is not None:
        key = " ".join(_check_key_line(host_key, f"known_hosts entry for {ip}").split()[:2])
        out.append(f"{ip} {key}")
    return "".join(f"{line}\n" for line in out)


def _edit_known_hosts(env: str, ip: str, host_key: str | None) -> None:
    d = _env_dir(env)
    path = known_hosts_path(env)
    with _locked(d / _LOCK_NAME):
        text = path.read_text() if path.exists() else ""
        new = update_known_hosts_text(text, ip, host_key)
        if new != text:
            _write_atomic(path, new, 0o600)


def known_hosts_add(env: str, ip: str, host_key: str) -> None:
    """Pin ``host_key`` for ``ip`` in the lab's known_hosts (replacing any line for ip)."""
    _edit_known_hosts(env, ip, host_key)


def known_hosts_remove(env: str, ip: str) -> None:
    if known_hosts_path(env).exists():
        _edit_known_hosts(env, ip, None)


# --------------------------------------------------------------------------- safety routes


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


# --------------------------------------------------------------------------- teardown, doctor


def _labeled(kind: str, env: str) -> list[str]:
    if kind == "container":
        rows = (
            _podman_json(
                "ps",
                "--all",
                "--filter",
                f"label={LABEL}={env}",
                "--format",
                "json",
                what=f"podman ps (lab {env})",
            )
            or []
        )
        return [str(r["Names"][0]) for r in rows]
    rows = (
        _podman_json(
            "network",
            "ls",
            "--filter",
            f"label={LABEL}={env}",
            "--format",
            "json",
            what=f"podman network ls (lab {env})",
        )
        or []
    )
    return [str(r["name"]) for r in rows]


def teardown(env: str) -> dict[str, int]:
    """Remove everything of lab ``env``: containers, networks (the egress network too), their
    forward-guard rules, recorded routes, lab_dir.

    Returns counts: {"containers", "networks", "firewall_rules", "routes", "files"}.
    """
    containers = _labeled("container", env)
    for name in containers:
        _remove_container(name)
    networks = _labeled("network", env)
    rules = sum(1 for r in _guard_listing() if r[2] == env)
    for name in networks:
        remove_network(name)
    _unguard(env=env)  # rules whose network was removed behind the lab's back
    routes_file = _routes_file(env)
    routes = routes_file.read_text().split() if routes_file.exists() else []
    if routes:
        remove_unreachable_routes(routes, env)
    d = lab_dir(env)
    files = 0
    if d.exists():
        files = sum(
            1 for p in d.rglob("*") if p.is_file() and p.name not in (_LOCK_NAME, _EGRESS_LOCK)
        )
        shutil.rmtree(d)
    _restore_host_limits()
    return {
        "containers": len(containers),
        "networks": len(networks),
        "firewall_rules": rules,
        "routes": len(routes),
        "files": files,
    }


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


def _main(argv: list[str] | None = None) -> int:
    """Tiny entry point for set-up scripts: `python -m fellesdrift.lab configure|build-image`."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    try:
        if args == ["configure"]:
            configure_podman()
            print(f"{PODMAN_CONF} is current")
        elif args == ["build-image"]:
            configure_podman()
            print(golden_image(progress=print))
        elif args == ["doctor"]:
            ok, msg = can_start_host()
            print(msg)
            return 0 if ok else 1
        else:
            print("usage: python -m fellesdrift.lab configure|build-image|doctor", file=sys.stderr)
            return 2
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
