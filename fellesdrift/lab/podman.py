"""The machine's side of the lab: Podman's containers.conf and the
kernel's inotify limits the lab's systemd hosts need.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from fellesdrift.files import locked as _locked
from fellesdrift.files import write_atomic as _write_atomic
from fellesdrift.lab.runner import LABEL, LabError, _podman, _run

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
