"""The kernel network hardening every host gets: the one home of these values.

Two parts of the platform apply it, so neither may keep a copy:

- the ``common`` role writes it to ``/etc/sysctl.d`` and applies it live where the host lets it
  (on a VM, everything); it gets the values as ``common__sysctl_settings`` from
  :mod:`fellesdrift.converge.hostvars`;
- the lab driver (``stacks/drivers/lab.py``) sets the same values when it makes a container,
  because Podman mounts ``/proc/sys`` read-only and the role cannot apply them from inside.

IP forwarding is deliberately not here: a router role turns it on (and the lab driver for
routers).
"""

from __future__ import annotations

#: Kernel parameter → value, as ``sysctl`` prints it. Only network-namespaced (``net.*``)
#: keys: a container may be given exactly these.
NETWORK_SYSCTLS: dict[str, int] = {
    "net.ipv4.conf.all.rp_filter": 1,
    "net.ipv4.conf.default.rp_filter": 1,
    "net.ipv4.conf.all.accept_redirects": 0,
    "net.ipv4.conf.default.accept_redirects": 0,
    "net.ipv4.conf.all.secure_redirects": 0,
    "net.ipv4.conf.default.secure_redirects": 0,
    "net.ipv4.conf.all.send_redirects": 0,
    "net.ipv4.conf.default.send_redirects": 0,
    "net.ipv4.conf.all.accept_source_route": 0,
    "net.ipv4.conf.default.accept_source_route": 0,
    "net.ipv4.conf.all.log_martians": 1,
    "net.ipv4.conf.default.log_martians": 1,
    "net.ipv4.tcp_syncookies": 1,
    "net.ipv4.icmp_echo_ignore_broadcasts": 1,
    "net.ipv4.icmp_ignore_bogus_error_responses": 1,
    "net.ipv6.conf.all.accept_redirects": 0,
    "net.ipv6.conf.default.accept_redirects": 0,
    "net.ipv6.conf.all.accept_source_route": 0,
    "net.ipv6.conf.default.accept_source_route": 0,
}


def as_sysctl() -> dict[str, str]:
    """The baseline as ``podman run --sysctl`` takes it: {key: value as text}, sorted."""
    return {k: str(v) for k, v in sorted(NETWORK_SYSCTLS.items())}
