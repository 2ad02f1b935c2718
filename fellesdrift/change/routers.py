"""The plan's network part: per router the exact vtysh commands the network phase would push.

Each router the change touches is compared as the network phase compares it
(:mod:`fellesdrift.network.push`): its intended configuration (:mod:`.intended`, rendered with
the interface names the device reports) against its running one, read over its netops login.
Where the router cannot be read (no lab, or it does not answer), the base is the last
configuration the network phase archived before a push (``backups/<env>/<device>/``), with the
interface names that configuration gives; a router the change adds is planned against an empty
configuration (its whole configuration is pushed). Reading changes nothing, not even the
archive.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fellesdrift.access import keys
from fellesdrift.converge import hostvars
from fellesdrift.fanout import fan_out
from fellesdrift.inventory.model import Inventory
from fellesdrift.network import config, frr, intended, push
from fellesdrift.provision.hosts import Host
from fellesdrift.results import Result

Base = Literal["running", "archived", "new"]


@dataclass
class RouterPlan(Result):
    """One router's part of the plan (``name``: the router)."""

    #: What the commands were computed against: the running configuration, the last archived
    #: one, or nothing (a router the change adds).
    base: Base
    commands: tuple[str, ...]
    diff: str
    #: Why the running configuration could not be read ("" when it was).
    note: str = ""

    @property
    def device(self) -> str:
        return self.name

    @property
    def changed(self) -> int:
        return len(self.commands)

    @property
    def changes(self) -> bool:
        return bool(self.commands)

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.name, "base": self.base, "commands": list(self.commands),
                "diff": self.diff, "note": self.note}


def last_archived(env: str, device: str, backups: Path = push.BACKUPS) -> str | None:
    """The configuration archived before the device's last push, if any."""
    found = sorted((backups / env / device).glob("*.cfg"))
    return found[-1].read_text(encoding="utf-8") if found else None


_ADDRESS = re.compile(r"\((\d+\.\d+\.\d+\.\d+)/\d+\)$")


def interfaces_of(text: str) -> dict[str, str]:
    """address → interface name, from a configuration the network phase pushed: each
    interface's description ends with its address (templates/network/frr/router.j2; the lab
    gives the addresses, FRR's configuration carries none)."""
    found = {}
    for path in config.parse(text):
        if len(path) == 2 and path[0].startswith("interface ") and path[1].startswith(
                "description "):
            address = _ADDRESS.search(path[1])
            if address:
                found[address.group(1)] = path[0].split(" ")[1]
    return found


def with_new_links(model: Inventory, name: str, names: dict[str, str]) -> dict[str, str]:
    """``names`` (address → interface the router has) with a name for each address it will
    get: the next ``ethN`` it does not have yet, in the order the lab attaches them (a default
    could be the name of an interface it has, and the plan would show that one changed)."""
    if not names:
        return names
    found = dict(names)
    taken = set(names.values())
    numbers = [int(n[3:]) for n in taken if re.fullmatch(r"eth\d+", n)]
    next_free = max(numbers, default=-1) + 1
    for i in intended.device(model, name, "frr").interfaces:
        if i.address not in found:
            while f"eth{next_free}" in taken:
                next_free += 1
            found[i.address] = f"eth{next_free}"
            taken.add(found[i.address])
    return found


def _read(host: Host, env: str) -> tuple[str, dict[str, str]]:
    key, _ = keys.lab_keypair(env)
    conn = frr.connect(host.address, hostvars.NETOPS_USER, str(key),
                       str(keys.known_hosts_path(env)))
    try:
        return conn.running_config(), conn.interfaces()
    finally:
        with contextlib.suppress(Exception):  # the session may be gone already
            conn.disconnect()


def plan_router(model: Inventory, env: str, name: str, host: Host | None,
                backups: Path = push.BACKUPS) -> RouterPlan:
    """The commands that would make router ``name`` its intended configuration; ``host``: the
    router in the lab (None: not made, or no lab)."""
    running, note = "", ""
    names: dict[str, str] = {}
    base: Base = "new"
    if host is not None:
        try:
            running, names = _read(host, env)
            base = "running"
        except Exception as e:  # noqa: BLE001 - unreadable: plan against the archive instead
            note = f"not read ({type(e).__name__}: {e})".strip()
    if base != "running":
        archived = last_archived(env, name, backups)
        if archived is not None:
            running, names, base = archived, interfaces_of(archived), "archived"
    wanted = intended.render(model, name, "frr", interfaces=with_new_links(model, name, names),
                             hostname=host.machine if host else None)
    return RouterPlan(name, base, tuple(config.commands(running, wanted)),
                      config.diff(running, wanted, name), note)


def plan(model: Inventory, env: str, names: list[str], lab: dict[str, Host],
         backups: Path = push.BACKUPS, workers: int = 8) -> list[RouterPlan]:
    """Each router of ``names`` the model has (``lab``: the routers made, by name), read
    ``workers`` at a time; the core router first."""
    devices = set(intended.devices(model))
    found = fan_out(lambda n: plan_router(model, env, n, lab.get(n), backups),
                    [n for n in names if n in devices], phase="network", name=str,
                    workers=workers)
    return sorted(found, key=lambda r: (r.device != intended.CORE, r.device))


def routers_of(model: Inventory, slugs: list[str]) -> list[str]:
    """The routers a change to these municipalities touches: the core and their sites'."""
    return [intended.CORE] + [intended.device_name(m, s) for m in model.municipalities
                              if m.slug in slugs for s in m.sites]


_INTERFACE = re.compile(r"^([+-] ?)interface \S+$")


def changed_lines(diff: str) -> Counter[str]:
    """The lines a diff adds and removes, with interface names left out: the lab names a link
    it attaches only when it attaches it, so a new link's name is not known when planning."""
    lines = [ln for ln in diff.splitlines()
             if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    return Counter(_INTERFACE.sub(r"\1interface *", ln) for ln in lines)


def unplanned(planned: list[dict[str, Any]], applied: list[push.DeviceResult]) -> list[str]:
    """Each router whose push differs from the plan's: a change where none was planned, none
    where one was, or other lines changed (a new router: only whether it changed)."""
    want = {str(p["device"]): p for p in planned}
    out = []
    for r in sorted(applied, key=lambda r: r.device):
        p = want.pop(r.device, None)
        if r.status == "failed":
            continue  # the apply failed already, and says so
        pushed = r.status == "changed"
        if p is None:
            if pushed:
                out.append(f"router {r.device}: changed, but the plan has no commands for it")
            continue
        if pushed != bool(p["commands"]):
            out.append(f"router {r.device}: planned {len(p['commands'])} command(s), "
                       f"{'changed' if pushed else 'nothing changed'}")
        elif pushed and p["base"] != "new" and changed_lines(r.diff) != changed_lines(p["diff"]):
            out.append(f"router {r.device}: the configuration pushed differs from the planned "
                       "one")
    for device, p in sorted(want.items()):
        if p["commands"]:
            out.append(f"router {device}: planned {len(p['commands'])} command(s), not pushed")
    return out
