"""What the pipeline last found, per lab: one record per phase and host (or stack), and the
convergence of every site derived from it.

The record is ``.lab/<env>/status.json``, rewritten atomically after each phase by
:func:`record`. Its phases, and what a result is keyed by:

- ``provision``: the stack name (``<env>.core``, ``<env>.<slug>``); ok when the stack's last
  plan or up left no pending changes.
- ``converge``: the host name; ok when the host converged and a second run changed nothing.
- ``network``: the router's host name; ok when its running config equals the intended one.
- ``verify``: the host name; ok when its testinfra suites passed.

:func:`site_status` turns the record into one row per site: a municipal site's hosts are
``<slug>-<site id>-router`` and ``<slug>-<site id>-client`` in stack ``<env>.<slug>``; the centre
(stack ``<env>.core``, hosts in group ``centre``) is a row of its own. A phase that never ran for
a host is *unknown*, never ok. A site is converged when all four checks are ok.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from fellesdrift import files
from fellesdrift.errors import FellesdriftError
from fellesdrift.inventory.model import Inventory
from fellesdrift.paths import lab_dir
from fellesdrift.plan import naming
from fellesdrift.provision.hosts import Host
from fellesdrift.results import Result

Phase = Literal["provision", "converge", "network", "verify"]
PHASES: tuple[Phase, ...] = get_args(Phase)
State = Literal["ok", "failed", "unknown"]
CENTRE = "centre"
CORE_STACK = "core"
FILE_VERSION = 1


class StatusError(FellesdriftError, ValueError):
    """The status file cannot be read, or a phase the record does not know."""


def now() -> str:
    """The current time as an ISO 8601 timestamp (UTC, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class PhaseResult:
    """The outcome of one phase for one host (or stack)."""

    ok: bool
    detail: str = ""
    at: str = field(default_factory=now)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "at": self.at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhaseResult:
        if not isinstance(data.get("ok"), bool):
            raise TypeError("ok is not a boolean")
        return cls(data["ok"], str(data.get("detail", "")), str(data.get("at", "")))


Record = dict[str, dict[str, PhaseResult]]


def path(env: str) -> Path:
    return lab_dir(env) / "status.json"


def load(env: str) -> Record:
    """Every phase's results (phase → key → result); phases that never ran are empty."""
    file = path(env)
    found: Record = {p: {} for p in PHASES}
    if not file.exists():
        return found
    try:
        data = json.loads(file.read_text())
        for phase, results in data["phases"].items():
            if phase in found:
                found[phase] = {k: PhaseResult.from_dict(v) for k, v in results.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise StatusError(f"{file} is not a status record ({e}); remove it, and the next run "
                          "of each phase writes it again") from None
    return found


def _locked(env: str) -> contextlib.AbstractContextManager[None]:
    return files.locked(lab_dir(env) / ".status.lock")


def _write_atomically(file: Path, text: str) -> None:
    files.write_atomic(file, text, mode=0o600)


def record(env: str, phase: str, results: Mapping[str, PhaseResult]) -> Path:
    """Record a phase's results (keyed by host, or by stack for provision); results for other
    keys of that phase are kept. Safe against concurrent callers; the file is replaced
    atomically, so a reader never sees half of it. Returns the file's path."""
    if phase not in PHASES:
        raise StatusError(f"unknown phase {phase!r}; one of {', '.join(PHASES)}")
    with _locked(env):
        current = load(env)
        current[phase].update(results)
        file = path(env)
        data = {"version": FILE_VERSION, "env": env, "updated": now(), "phases": {
            p: {k: r.as_dict() for k, r in sorted(current[p].items())} for p in PHASES}}
        _write_atomically(file, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return file


# --- Per site ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One of a site's four checks, over its hosts (or stack)."""

    state: State
    detail: str = ""
    at: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "ok": self.ok, "detail": self.detail, "at": self.at}


def combine(results: Mapping[str, PhaseResult], keys: Iterable[str]) -> Check:
    """Failed when any key failed; else unknown when any key has no result; else ok.
    ``at`` is the latest failure's time, or the oldest result's when all are ok."""
    keys = list(keys)
    failed = [(k, results[k]) for k in keys if k in results and not results[k].ok]
    missing = [k for k in keys if k not in results]
    if failed:
        return Check("failed", "; ".join(f"{k}: {r.detail or 'failed'}" for k, r in failed),
                     max(r.at for _, r in failed))
    if missing or not keys:
        return Check("unknown", f"{', '.join(missing) or 'nothing'}: never ran")
    done = [results[k] for k in keys]
    return Check("ok", "; ".join(f"{k}: {results[k].detail}" for k in keys
                                 if results[k].detail), min(r.at for r in done))


@dataclass(frozen=True)
class SiteStatus:
    municipality: str  #: the slug, or "centre"
    municipality_name: str
    site: str  #: the site id, or "centre"
    site_name: str
    stack: str
    hosts: tuple[str, ...]
    provisioned: Check
    converged: Check
    network: Check
    verified: Check

    @property
    def checks(self) -> dict[str, Check]:
        return {"provisioned": self.provisioned, "converged": self.converged,
                "network": self.network, "verified": self.verified}

    @property
    def ok(self) -> bool:
        """The site is converged: all four checks hold."""
        return all(c.ok for c in self.checks.values())

    @property
    def state(self) -> State:
        states = {c.state for c in self.checks.values()}
        return "ok" if states == {"ok"} else "failed" if "failed" in states else "unknown"

    def as_dict(self) -> dict[str, Any]:
        return {"municipality": self.municipality, "site": self.site, "name": self.site_name,
                "stack": self.stack, "hosts": list(self.hosts),
                **{name: c.as_dict() for name, c in self.checks.items()},
                "state": self.state, "site_converged": self.ok}


def site_hosts(slug: str, site_id: str) -> tuple[str, str]:
    """A municipal site's router and client host names."""
    return naming.site_router(slug, site_id), naming.site_client(slug, site_id)


def _centre_hosts(model: Inventory, hosts: Iterable[Host] | None) -> tuple[list[str], list[str]]:
    """The centre's hosts and its routers: as provisioned, else as the model names them."""
    provisioned = [h for h in hosts or [] if CENTRE in h.groups]
    if provisioned:
        routers = [h.name for h in provisioned if "core_router" in h.groups]
        return [h.name for h in provisioned], routers
    return ([naming.CORE_ROUTER, *(s.hostname for s in model.centre.shared_hosts)],
            [naming.CORE_ROUTER])


def site_status(model: Inventory, env: str, hosts: Iterable[Host] | None = None,
                found: Record | None = None) -> list[SiteStatus]:
    """One row per site: the centre first, then each municipality's sites in file order.

    ``hosts``: the lab's hosts as provisioned (:func:`fellesdrift.hosts.load`), for the
    centre's; ``found``: the record (default: read from the lab's status file).
    """
    found = found if found is not None else load(env)

    def row(slug: str, name: str, site: str, site_name: str, stack: str, every: list[str],
            routers: list[str]) -> SiteStatus:
        return SiteStatus(slug, name, site, site_name, stack, tuple(every),
                          combine(found["provision"], [stack]),
                          combine(found["converge"], every),
                          combine(found["network"], routers),
                          combine(found["verify"], every))

    centre_hosts, core_routers = _centre_hosts(model, hosts)
    rows = [row(CENTRE, model.centre.name, CENTRE, "operations centre",
                f"{env}.{CORE_STACK}", centre_hosts, core_routers)]
    for m in model.municipalities:
        for s in m.sites:
            router, client = site_hosts(m.slug, s.id)
            rows.append(row(m.slug, m.name, s.id, s.name, f"{env}.{m.slug}", [router, client],
                            [router]))
    return rows


def summary(env: str, rows: list[SiteStatus]) -> dict[str, Any]:
    """The machine-readable status: ok when every site (and the centre) is converged."""
    return {"ok": all(r.ok for r in rows), "env": env,
            "converged": sum(r.ok for r in rows), "sites": len(rows),
            "rows": [r.as_dict() for r in rows]}


# --- From the pipeline's results ---------------------------------------------------------------


def from_results(results: Iterable[Result]) -> dict[str, PhaseResult]:
    """What to record of a phase's results: each item's ok and detail, keyed by its name
    (:mod:`fellesdrift.results`: a stack, a host or a router)."""
    return {r.name: PhaseResult(r.ok, r.detail) for r in results}
