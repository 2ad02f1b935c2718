"""The Podman runner of the lab: every podman (and ip, tc, iptables)
call goes through here.

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
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fellesdrift.access import keys
from fellesdrift.errors import FellesdriftError

#: Label key on every container and network of a lab; the value is the env name.
LABEL = "fellesdrift.lab"


#: Label on a host holding the spec it was created with (JSON), for idempotent create_host.
SPEC_LABEL = f"{LABEL}.spec"


_CMD_TIMEOUT = 300.0


_LOCK_NAME = ".lock"


class LabError(FellesdriftError, RuntimeError):
    """A lab operation failed; the message says what and carries Podman's stderr."""


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


def _env_dir(env: str) -> Path:
    try:
        return keys.env_dir(env)
    except keys.AccessError as exc:
        raise LabError(str(exc)) from None


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
