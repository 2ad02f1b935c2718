"""The Podman layer of the lab driver: lab networks, systemd hosts, keys and safety routes.

A thin, typed wrapper over the ``podman`` CLI (rootful). Every function is idempotent and keeps
no state in the process: Pulumi dynamic providers call it from their own processes, the CLI from
its own. What must survive between calls lives in Podman (labels) or in ``lab_dir(env)``.

Podman facts this relies on (podman 4.3.1, netavark 1.4 on Debian bookworm, verified):

- The network backend is netavark. ``podman network create --internal`` gives the network NO
  gateway unless one is passed; with ``--gateway`` the host's bridge carries that address, so
  this machine (the control node) reaches lab hosts directly over the bridge, while containers
  get no default route and netavark installs no NAT rules. Host IP forwarding stays as it is
  (off here), so nothing on a lab network can reach beyond its bridge.
- ``--disable-dns`` keeps aardvark-dns (which forwards to this machine's resolvers) off lab
  networks, and hosts run with ``--dns none``: they never learn this machine's resolvers, and
  their /etc/resolv.conf is an ordinary file that roles may manage.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
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

_BOOT_TIMEOUT = 90.0
_CMD_TIMEOUT = 300.0
_LOCK_NAME = ".lock"


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
    """Write the lab's containers.conf drop-in (only if it differs); idempotent."""
    try:
        if PODMAN_CONF.exists() and PODMAN_CONF.read_text() == PODMAN_CONF_TEXT:
            return
        _write_atomic(PODMAN_CONF, PODMAN_CONF_TEXT)
    except OSError as exc:
        raise LabError(f"cannot write {PODMAN_CONF} (the lab needs root): {exc}") from exc


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


# --------------------------------------------------------------------------- networks


def _network_raw(name: str) -> dict[str, Any] | None:
    if _podman("network", "exists", name, what="podman network exists", check=False).returncode:
        return None
    data = _podman_json("network", "inspect", name, what=f"podman network inspect {name}")
    if not data:
        return None
    net: dict[str, Any] = data[0]
    return net


def _network_summary(net: dict[str, Any]) -> dict[str, str]:
    subnets = net.get("subnets") or [{}]
    return {
        "name": str(net.get("name", "")),
        "subnet": str(subnets[0].get("subnet", "")),
        "gateway": str(subnets[0].get("gateway", "")),
        "id": str(net.get("id", "")),
    }


def inspect_network(name: str) -> dict[str, str] | None:
    """{"name","subnet","gateway","id"} of a Podman network, or None if absent."""
    net = _network_raw(name)
    return None if net is None else _network_summary(net)


def ensure_network(env: str, name: str, subnet: str) -> dict[str, str]:
    """An internal (no NAT, no uplink) lab network whose gateway address sits on the host bridge.

    Returns the existing network if it has the same subnet; a different subnet is a LabError.
    """
    try:
        net4 = ipaddress.ip_network(subnet, strict=True)
    except ValueError as exc:
        raise LabError(f"network {name}: invalid subnet {subnet!r}: {exc}") from exc
    if net4.num_addresses < 4:
        raise LabError(f"network {name}: subnet {subnet} is too small")
    configure_podman()

    def existing() -> dict[str, str] | None:
        raw = _network_raw(name)
        if raw is None:
            return None
        have = _network_summary(raw)
        owner = (raw.get("labels") or {}).get(LABEL)
        if owner != env:
            raise LabError(
                f"network {name} exists but belongs to {f'lab {owner!r}' if owner else 'no lab'}"
                f", not lab {env!r}"
            )
        if have["subnet"] != str(net4):
            raise LabError(
                f"network {name} exists with subnet {have['subnet']}, not {net4}; "
                f"remove it (teardown) before changing its subnet"
            )
        if not raw.get("internal"):
            raise LabError(f"network {name} exists but is not internal; remove it first")
        return have

    found = existing()
    if found is not None:
        return found
    gateway = str(next(net4.hosts()))
    proc = _podman(
        "network",
        "create",
        "--driver",
        "bridge",
        "--internal",  # no NAT, no default route in containers
        "--disable-dns",  # aardvark-dns would forward to this machine's resolvers
        "--subnet",
        str(net4),
        "--gateway",
        gateway,  # internal networks get no gateway otherwise: the host needs it
        "--label",
        f"{LABEL}={env}",
        name,
        what=f"podman network create {name} ({net4})",
        check=False,
    )
    found = existing()  # also covers a parallel creator winning the race
    if found is None:
        detail = proc.stderr.strip() or f"exit status {proc.returncode}"
        raise LabError(f"podman network create {name} ({net4}): {detail}")
    return found


def remove_network(name: str) -> None:
    """Remove a network; absent is fine. A network still in use is a LabError."""
    if _network_raw(name) is None:
        return
    proc = _podman("network", "rm", name, what=f"podman network rm {name}", check=False)
    if proc.returncode != 0 and _network_raw(name) is not None:
        raise LabError(f"podman network rm {name}: {proc.stderr.strip()}")


# --------------------------------------------------------------------------- hosts


def _container_raw(name: str) -> dict[str, Any] | None:
    if _podman("container", "exists", name, what="podman container exists", check=False).returncode:
        return None
    data = _podman_json("container", "inspect", name, what=f"podman container inspect {name}")
    if not data:
        return None
    c: dict[str, Any] = data[0]
    return c


def _host_summary(c: dict[str, Any]) -> dict[str, str]:
    nets: dict[str, Any] = (c.get("NetworkSettings") or {}).get("Networks") or {}
    network, ip = next(((k, str(v.get("IPAddress", ""))) for k, v in nets.items()), ("", ""))
    labels: dict[str, str] = (c.get("Config") or {}).get("Labels") or {}
    return {
        "name": str(c.get("Name", "")),
        "id": str(c.get("Id", "")),
        "ip": ip,
        "image": str(c.get("ImageName", "")),
        "state": str((c.get("State") or {}).get("Status", "")),
        "network": network,
        "env": labels.get(LABEL, ""),
    }


def inspect_host(name: str) -> dict[str, str] | None:
    """{"name","id","ip","image","state","network","env"} of a container, or None if absent."""
    c = _container_raw(name)
    return None if c is None else _host_summary(c)


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


def create_host(
    env: str, name: str, image: str, network: str, ip: str, authorized_key: str
) -> dict[str, str]:
    """Start a systemd lab host and return once SSH accepts ``authorized_key`` for ``ops``.

    Idempotent: an existing container of the same lab with the same image, network and address
    is reused (started if stopped); one with a different spec is replaced. A container of the
    same name that is not part of this lab is a LabError.
    Returns {"name","id","ip","image","host_key"}; host_key is the ed25519 public key line.
    """
    key_line = _check_key_line(authorized_key, f"host {name}: authorized_key")
    net = inspect_network(network)
    if net is None:
        raise LabError(f"host {name}: network {network} does not exist")
    try:
        addr = ipaddress.ip_address(ip)
        subnet = ipaddress.ip_network(net["subnet"])
    except ValueError as exc:
        raise LabError(f"host {name}: invalid address {ip!r}: {exc}") from exc
    if addr not in subnet or str(addr) in (
        net["gateway"],
        str(subnet.network_address),
        str(subnet.broadcast_address),
    ):
        raise LabError(
            f"host {name}: {ip} is not a usable host address of {network} "
            f"({net['subnet']}, gateway {net['gateway']})"
        )
    configure_podman()

    raw = _container_raw(name)
    if raw is not None:
        have = _host_summary(raw)
        if have["env"] != env:
            raise LabError(
                f"container {name} exists and is not part of lab {env!r} "
                f"(label {LABEL}={have['env'] or '<none>'}); not touching it"
            )
        if (have["image"], have["network"], have["ip"]) == (image, network, str(addr)):
            if have["state"] != "running":
                _podman("start", name, what=f"podman start {name}")
        else:
            remove_host(name)
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
            "--network",
            network,
            "--ip",
            str(addr),
            "--dns",
            "none",  # never hand lab hosts this machine's resolvers
            "--systemd",
            "always",
            image,
            "/sbin/init",
            what=f"podman run {name} ({image}) on {network} at {addr}",
        )
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
    }


def remove_host(name: str) -> None:
    """Stop and remove a container; absent is fine."""
    _podman("rm", "--force", "--ignore", "--time", "10", name, what=f"podman rm {name}")


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
    """Remove everything of lab ``env``: containers, networks, recorded routes, lab_dir.

    Returns counts: {"containers", "networks", "routes", "files"}.
    """
    containers = _labeled("container", env)
    for name in containers:
        remove_host(name)
    networks = _labeled("network", env)
    for name in networks:
        remove_network(name)
    routes_file = _routes_file(env)
    routes = routes_file.read_text().split() if routes_file.exists() else []
    if routes:
        remove_unreachable_routes(routes, env)
    d = lab_dir(env)
    files = 0
    if d.exists():
        files = sum(1 for p in d.rglob("*") if p.is_file() and p.name != _LOCK_NAME)
        shutil.rmtree(d)
    return {
        "containers": len(containers),
        "networks": len(networks),
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
