"""Teardown: remove everything a lab made, found by its label.
"""

from __future__ import annotations

import shutil

from fellesdrift.lab.guard import _guard_listing, _unguard
from fellesdrift.lab.hosts import _remove_container
from fellesdrift.lab.networks import _EGRESS_LOCK, remove_network
from fellesdrift.lab.podman import _restore_host_limits
from fellesdrift.lab.routes import _routes_file, remove_unreachable_routes
from fellesdrift.lab.runner import _LOCK_NAME, LABEL, _podman_json
from fellesdrift.paths import lab_dir


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
