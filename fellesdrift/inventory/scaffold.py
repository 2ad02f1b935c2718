"""`fellesdrift new`: the first file of a joining municipality, valid from the start.

The join flow starts here. The new file gets site LANs from the free space of the centre's
address plan and the first free VLANs on the provider's handoff, so nothing it allocates can
collide with the other municipalities. Values it cannot know are sensible defaults, each marked
``# check`` in the file; the router (``device``) is left out until one is installed. Before the
file is written, it is checked together with every other inventory file, exactly as
``fellesdrift validate`` would: ``new`` never writes a file that does not validate.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.addressing import free_prefixes
from fellesdrift.inventory.model import SCHEMA_VERSION, Inventory, SiteKind
from fellesdrift.inventory.problems import Problem, ProblemsError
from fellesdrift.inventory.safeyaml import plain_scalar
from fellesdrift.inventory.schema import modeline

#: Site id and the building's name in Norwegian (nynorsk), by kind.
KINDS: dict[str, tuple[str, str]] = {
    "town_hall": ("radhus", "rådhus"),
    "school": ("skule", "skule"),
    "kindergarten": ("barnehage", "barnehage"),
    "care_home": ("omsorg", "omsorgssenter"),
    "health_centre": ("helse", "helsesenter"),
    "library": ("bibliotek", "bibliotek"),
    "depot": ("driftsstasjon", "driftsstasjon"),
    "fire_station": ("brann", "brannstasjon"),
    "culture_house": ("kulturhus", "kulturhus"),
    "office": ("kontor", "kontor"),
}
assert set(KINDS) == set(get_args(SiteKind))

_FIRST_VLAN = 100


class ScaffoldError(ProblemsError):
    """`new` cannot write the file; the problems say why."""

    consequence = "nothing was written"


@dataclass
class NewSite:
    id: str
    name: str
    kind: str
    lan_prefix: str
    vlan: int


@dataclass
class Scaffold:
    file: Path
    slug: str
    provider: str
    sites: list[NewSite] = field(default_factory=list)
    text: str = ""

    def summary(self) -> dict[str, Any]:
        return {"file": str(self.file), "slug": self.slug, "provider": self.provider,
                "sites": [s.__dict__ for s in self.sites]}


def _plain(value: str) -> str:
    """A YAML scalar for text: plain when it reads back as the same text, else quoted."""
    risky = (not value or value != value.strip() or value[0] in "-?:,[]{}#&*!|>'\"%@`"
             or ": " in value or " #" in value or value.endswith(":"))
    if not risky and plain_scalar(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)


def _fail(where: str, message: str, rule: str) -> ScaffoldError:
    return ScaffoldError([Problem(where, 1, 1, "", message, rule)])


def plan(folder: Path, slug: str, code: str, name: str, kinds: list[str],
         provider: str | None = None, email: str | None = None,
         services: list[tuple[str, str]] | None = None, pool: str | None = None) -> Scaffold:
    """What `new` would write: allocates prefixes and VLANs against the inventory in
    ``folder`` (which must be valid), renders the file, and checks it with all the others."""
    model = inventory.load([folder])
    target = folder / f"{slug}.yaml"
    if target.exists():
        raise _fail(str(target), "exists already; a municipality has one file (edit it, or "
                    "choose another slug)", "unique-slug")
    for m in model.municipalities:
        if m.code == code:
            raise _fail(str(target), f"code {code} belongs to {m.name} already", "unique-code")
    centre = model.centre
    providers = [p.id for p in centre.providers]
    chosen = provider or providers[0]
    if chosen not in providers:
        raise _fail(str(target), f"{chosen!r} is not among the centre's providers; use one of "
                    f"{', '.join(providers)}", "unknown-provider")
    for kind in kinds:
        if kind not in KINDS:
            raise _fail(str(target), f"{kind!r} is not a kind of site; use one of "
                        f"{', '.join(KINDS)}", "not-allowed")
    pools = centre.address_plan.site_pools or centre.address_plan.aggregates
    if pool is not None and pool not in pools:
        raise _fail(str(target), f"{pool} is not one of the address plan's site pools "
                    f"({', '.join(pools)})", "prefix-in-plan")
    scaffold = Scaffold(target, slug, chosen)
    prefixes = _prefixes(model, [pool] if pool else pools, len(kinds))
    vlans = _vlans(model, chosen, len(kinds))
    if len(prefixes) < len(kinds):
        raise _fail(str(target), f"the address plan ({', '.join(pool and [pool] or pools)}) "
                    f"has room for {len(prefixes)} more /{centre.address_plan.site_prefix_length}"
                    f" site LANs, not {len(kinds)}; widen it", "prefix-in-plan")
    if len(vlans) < len(kinds):
        raise _fail(str(target), f"{chosen}'s handoff has no free VLAN left", "vlan-conflict")
    taken: set[str] = set()
    for kind, prefix, vlan in zip(kinds, prefixes, vlans, strict=True):
        site_id, word = KINDS[kind]
        base, n = site_id, 2
        while site_id in taken:
            site_id, n = f"{base}-{n}", n + 1
        taken.add(site_id)
        label = f"{name} {word}" + (f" {n - 1}" if site_id != base else "")
        scaffold.sites.append(NewSite(site_id, label, kind, prefix, vlan))
    scaffold.text = _render(scaffold, code, name, email or f"postmottak@{slug}.kommune.no",
                            services or [], model)
    _check(folder, scaffold)
    return scaffold


def write(scaffold: Scaffold) -> Path:
    with scaffold.file.open("x", encoding="utf-8") as f:  # never overwrite
        f.write(scaffold.text)
    return scaffold.file


def _prefixes(model: Inventory, pools: list[str], count: int) -> list[str]:
    plan_ = model.centre.address_plan
    used = [r.prefix for r in plan_.centre_ranges]
    used += [s.lan_prefix for m in model.municipalities for s in m.sites]
    free = free_prefixes(pools, used, plan_.site_prefix_length)
    return [p for _, p in zip(range(count), free, strict=False)]


def _vlans(model: Inventory, provider: str, count: int) -> list[int]:
    used = {s.link.vlan for m in model.municipalities for s in m.sites
            if s.link.provider == provider}
    order = [*range(_FIRST_VLAN, 4095), *range(2, _FIRST_VLAN)]
    return [v for v in order if v not in used][:count]


def _render(s: Scaffold, code: str, name: str, email: str, services: list[tuple[str, str]],
            model: Inventory) -> str:
    catalogue = [f"{svc.id} ({'/'.join(svc.prices)})" for svc in model.centre.services]
    lines = [
        modeline(s.file),
        f"# {name} kommune. Written by `fellesdrift new`: values marked `check` are defaults to",
        "# confirm; site LANs and VLANs were allocated from free space and are safe to keep.",
        "---",
        f"schema_version: {SCHEMA_VERSION}",
        f"code: {json.dumps(code)}",
        f"name: {_plain(name)}",
        f"slug: {s.slug}",
        "contacts:",
        "  - name: Postmottak  # check: the IT contact",
        "    role: it",
        f"    email: {_plain(email)}",
    ]
    lines += _wrap("# The service catalogue (service and its tiers): ", catalogue)
    if services:
        lines.append("services:")
        for service, tier in services:
            lines += [f"  - service: {_plain(service)}", f"    tier: {_plain(tier)}"]
    else:
        lines.append("services: []  # subscribe: - {service: ID, tier: TIER}")
    lines.append("users:  # check: users per service area, for invoicing")
    lines += [f"  {area}: 0" for area in ("administration", "education", "health_care",
                                          "technical", "culture")]
    lines.append("sites:")
    for site in s.sites:
        lines += [
            f"  - id: {site.id}",
            f"    name: {_plain(site.name)}  # check",
            f"    kind: {site.kind}",
            f"    address: {_plain(f'{site.name}, {name}')}  # check: street, postcode, place",
            "    users: 0  # check",
            f"    lan_prefix: {site.lan_prefix}",
            "    link:",
            "      access: fibre  # check",
            f"      provider: {s.provider}",
            "      down_mbps: 1000  # check",
            "      up_mbps: 1000  # check",
            f"      vlan: {site.vlan}",
            "    # device: add the router (platform, model, serial, installed, lease_end) once "
            "it is installed",
        ]
    return "\n".join(lines) + "\n"


def _wrap(first: str, items: list[str], width: int = 100) -> list[str]:
    """Comment lines listing ``items``, none wider than ``width``."""
    lines, line = [], first
    for i, item in enumerate(items):
        text = item + ("," if i < len(items) - 1 else "")
        if len(line) + len(text) + 1 > width:
            lines.append(line.rstrip())
            line = "#   "
        line += text + " "
    return [*lines, line.rstrip()]


def _check(folder: Path, scaffold: Scaffold) -> None:
    """The new file must validate with every other file, or nothing is written."""
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / scaffold.file.name
        candidate.write_text(scaffold.text, encoding="utf-8")
        result = inventory.check([folder, candidate])
    if result.problems:
        raise ScaffoldError([Problem(str(scaffold.file) if p.file == str(candidate) else p.file,
                                     p.line, p.column, p.field, p.message, p.rule)
                             for p in result.problems])
