"""The plan's converge part: Ansible's ``--check --diff`` on the hosts a change touches.

What a change touches is decided as `up` decides it (:mod:`fellesdrift.plan.affected`), for
the municipalities whose inputs differ from their last successful apply (the gate's digest,
:func:`.gate.inputs`; one never applied counts as changed). The role variables are rendered
from the model as planned and the hosts as they will be: the hosts provisioned now, without
those of sites the model no longer has, with the hosts of new sites as their stack declares
them (:func:`planned_hosts`), so the DNS zone and the monitoring targets show the new hosts.
Only hosts that exist can be checked; a new host is listed as new (every task of its role).
The check's inventory is a file of its own: the lab's inventory is not touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fellesdrift.access import keys
from fellesdrift.change import audit, gate
from fellesdrift.converge import hostvars
from fellesdrift.converge import run as converge
from fellesdrift.inventory.model import Inventory
from fellesdrift.paths import lab_dir
from fellesdrift.plan import affected, naming, topology
from fellesdrift.plan.functions import municipality_of
from fellesdrift.provision import hosts as lab_hosts

#: A site's hosts as its stack declares them (stacks/components/municipal_site.py): function,
#: its name and its address on the site's LAN.
SITE_HOSTS = (("site_router", naming.site_router, topology.site_router_address),
              ("site_client", naming.site_client, topology.site_client_address))


@dataclass(frozen=True)
class TaskChange:
    role: str
    task: str
    handler: bool
    diff: str

    @property
    def key(self) -> str:
        return f"{self.role or '-'} : {self.task}"

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "task": self.task, "handler": self.handler,
                "diff": self.diff}


@dataclass
class ConvergePlan:
    """Which hosts were checked and what would change on each."""

    #: The municipalities whose change the check covers.
    changed: list[str] = field(default_factory=list)
    #: Host → the tasks that would change there (every checked host has an entry).
    hosts: dict[str, list[TaskChange]] = field(default_factory=dict)
    #: Host → the commands the check could not tell about (Ansible skips a command in check
    #: mode): each may change when applied, and its change is then planned.
    may_change: dict[str, list[TaskChange]] = field(default_factory=dict)
    #: Hosts the change adds: they do not exist yet, every task of their role will run.
    new: list[str] = field(default_factory=list)
    #: Why nothing was checked (no lab, nothing changed), or "".
    skipped: str = ""
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Whether the environment had hosts when planned (without, its apply makes every host).
    lab: bool = True

    @property
    def unchanged(self) -> bool:
        return not self.new and not any(self.hosts.values()) and not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {"changed_municipalities": self.changed, "checked": sorted(self.hosts),
                "hosts": {h: [t.as_dict() for t in ts] for h, ts in self.hosts.items()},
                "may_change": {h: [t.as_dict() for t in ts]
                               for h, ts in self.may_change.items()},
                "new": self.new, "skipped": self.skipped, "failures": self.failures,
                "seconds": self.seconds, "lab": self.lab}


def changed_municipalities(model: Inventory, env: str, slugs: list[str]) -> list[str]:
    """Those of ``slugs`` whose inputs differ from their last successful apply."""
    last = audit.applied(env)
    return [s for s in slugs if last.get(s) != gate.inputs(model.centre, model.municipality(s))]


def planned_hosts(model: Inventory, provisioned: list[lab_hosts.Host]
                  ) -> tuple[list[lab_hosts.Host], list[lab_hosts.Host]]:
    """(the hosts after the change, those of them that are new), in the order the lab will
    list them (:func:`.hosts.load`: stack by stack, a municipality's hosts site by site), so
    lists rendered from them (the DNS zone, the monitoring targets) read as they will. A
    provisioned site host whose site the model no longer has is gone; a site the model has and
    the lab does not gets its hosts (no machine or host key yet)."""
    groups = {naming.site_group(m.slug, s.id) for m in model.municipalities for s in m.sites}
    kept = [h for h in provisioned if municipality_of(h) is None or groups & set(h.groups)]
    names = {h.name for h in kept}
    login = (provisioned[0].ssh_user, provisioned[0].ssh_port) if provisioned else ("root", 22)
    new, place = [], {h.name: (naming.CORE_STACK, i) for i, h in enumerate(kept)}
    for m in model.municipalities:
        for i, (s, (function, named, address)) in enumerate(
                (s, spec) for s in m.sites for spec in SITE_HOSTS):
            name = named(m.slug, s.id)
            place[name] = (m.slug, i)
            if name not in names:
                new.append(lab_hosts.Host(
                    name, "", (function, naming.municipality_group(m.slug),
                               naming.site_group(m.slug, s.id)),
                    address(s), login[0], login[1], ""))
    def key(h: lab_hosts.Host) -> tuple[str, int]:
        stack, index = place.get(h.name, (municipality_of(h) or naming.CORE_STACK, len(place)))
        return f"{stack}.yml", index

    every = sorted(kept + new, key=key)
    return every, new


def touched(model: Inventory, env: str, every: list[lab_hosts.Host], municipalities: list[str],
            removed: list[str]) -> tuple[list[str], list[lab_hosts.Host]]:
    """(the changed municipalities, the hosts their change touches among ``every``)."""
    changed = changed_municipalities(model, env, municipalities)
    if not changed and not removed:
        return [], []
    return changed, affected.hosts(model, every, changed, removed)


def check(model: Inventory, env: str, every: list[lab_hosts.Host], hosts: list[lab_hosts.Host],
          new: set[str]) -> ConvergePlan:
    """Run the playbook in check mode on those of ``hosts`` that exist (``new``: the names of
    those that do not), with the role variables of ``every`` host as planned."""
    started = time.monotonic()
    existing = [h for h in hosts if h.name not in new]
    plan = ConvergePlan(new=[h.name for h in hosts if h.name in new])
    if existing:
        live = [h for h in every if h.name not in new]
        lab_hosts.trust(env, live)
        _, public_key = keys.lab_keypair(env)
        variables = hostvars.render(model, env, every, public_key)
        inventory = lab_hosts.ansible_inventory(env, live, variables,
                                                path=lab_dir(env) / "plan-inventory.yml")
        result = converge.run(env, inventory, len(existing), check=True,
                              limit=",".join(h.name for h in existing))
        plan.hosts = {h.name: [] for h in existing}
        for t in result.changed_tasks:
            plan.hosts.setdefault(t.host, []).append(TaskChange(t.role, t.task, t.handler,
                                                                t.diff))
        for t in result.may_change:
            plan.may_change.setdefault(t.host, []).append(TaskChange(t.role, t.task, t.handler,
                                                                     ""))
        plan.failures = list(result.failures)
    plan.seconds = round(time.monotonic() - started, 1)
    return plan


def unplanned(planned: dict[str, Any] | None, applied: list[converge.ChangedTask]) -> list[str]:
    """Each host whose applied changes differ from the check's (``planned``:
    :meth:`ConvergePlan.as_dict`): a task that changed and was not planned to, or one planned
    that did not. A command the check could not tell about may change or not. A host new at
    planning may change anything; a plan made with no lab (its first apply converges every
    host) is not compared."""
    if planned is None or not planned.get("lab", True):
        return []
    new = set(planned.get("new") or [])
    def keys(part: str) -> dict[str, set[str]]:
        return {h: {f"{t['role'] or '-'} : {t['task']}" for t in tasks}
                for h, tasks in (planned.get(part) or {}).items()}

    want, may = keys("hosts"), keys("may_change")
    got: dict[str, set[str]] = {}
    for t in applied:
        if t.host not in new:
            got.setdefault(t.host, set()).add(f"{t.role or '-'} : {t.task}")
    out = []
    for host in sorted(set(want) | set(got)):
        if host not in want:
            out.append(f"{host}: not checked in the plan, changed {', '.join(sorted(got[host]))}")
            continue
        more = got.get(host, set()) - want[host] - may.get(host, set())
        fewer = want[host] - got.get(host, set())
        if more or fewer:
            out.append(f"{host}: " + "; ".join(
                ([f"changed, not planned: {', '.join(sorted(more))}"] if more else [])
                + ([f"planned, not changed: {', '.join(sorted(fewer))}"] if fewer else [])))
    return out
