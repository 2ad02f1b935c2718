"""The rules an inventory obeys beyond the shape of each file, and the id of every rule.

Shape (types, required and unknown fields, formats, ranges) is the model's (:mod:`.model`); the
rules here relate fields within one file and files to each other. Each problem carries a rule id
from :data:`RULES`, stable across versions so CI annotations and documentation can refer to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from fellesdrift.inventory.addressing import Span, format_prefix, overlaps, parse_address
from fellesdrift.inventory.model import Municipality, OperationsCentre, Site
from fellesdrift.inventory.problems import Problem
from fellesdrift.inventory.safeyaml import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    MAX_NUMBER_LENGTH,
    Document,
    Loc,
)
from fellesdrift.plan import naming, topology
from fellesdrift.plan.naming import MAX_ENV_LENGTH

#: Every rule id a problem can carry, with what it means. docs/inventory.md lists them.
RULES: dict[str, str] = {
    # Reading the file.
    "io": "the file cannot be read",
    "too-large": f"the file is larger than {MAX_BYTES // 1024} KiB",
    "encoding": "the file is not UTF-8 text",
    "yaml-syntax": "the file is not valid YAML",
    "not-a-mapping": "the file is empty, or its top level is not a mapping of fields",
    "duplicate-key": "a key appears twice in one mapping",
    "yaml-tag": "a tag other than !!str (inventories hold plain data; nothing builds objects)",
    "yaml-key": "a key that is a list or mapping",
    "yaml-merge-key": "a merge key (<<); write the fields out",
    "yaml-too-deep": f"mappings and lists nested deeper than {MAX_DEPTH} levels",
    "yaml-alias-expansion": f"aliases that expand beyond {MAX_NODES} values, or refer to "
                            "themselves",
    # YAML 1.1 pitfalls: never let them change a value silently.
    "yaml-boolean-word": "an unquoted yes/no/on/off/y/n, which YAML 1.1 reads as a boolean",
    "yaml-octal": "an unquoted number with a leading zero, like 0402 (octal in YAML 1.1)",
    "yaml-sexagesimal": "an unquoted 1:30-like value, which YAML 1.1 reads as a base-60 number",
    "yaml-number-format": "an unquoted 0x1F, 0b101, 0o17, 1_000 or 1e5, read differently by "
                          "YAML 1.1 and 1.2",
    "number-too-large": f"an unquoted number longer than {MAX_NUMBER_LENGTH} characters (huge "
                        "integers, base-60 numbers, floats or exponents)",
    "number-not-finite": "an unquoted .nan or .inf, which no field takes",
    # The model: the shape of each file.
    "schema-version": "schema_version is missing, older than this fellesdrift reads (run "
                      "`fellesdrift inventory migrate`) or unknown",
    "missing-field": "a required field is missing",
    "unknown-field": "a field the schema does not have (often a typo)",
    "wrong-type": "a value of the wrong type, like a number where text is expected",
    "not-allowed": "a value that is not one of the allowed choices",
    "format": "a value in the wrong format (a prefix, a date, a code …)",
    "out-of-range": "a number outside its allowed range",
    "length": "a list or text that is too short or too long",
    "prefix-size": "a site LAN that is not a /16 to /28",
    "organisation-number": "an organisation number that is not 9 digits or fails its mod-11 "
                           "check digit",
    "bank-account": "a bank account number that is not 11 digits or fails its mod-11 check "
                    "digit",
    "text-line-break": "free text holding a line break (any character str.splitlines() splits "
                       "at: \\n, \\r, \\v, \\f, U+001C–U+001E, U+0085, U+2028, U+2029)",
    "text-control": "free text holding a control, format (bidi override, zero-width), "
                    "surrogate, private-use or unassigned character",
    "text-template": "free text holding a template marker ({{, {%, {# or their closers)",
    "text-router": "a site name holding '?', which a router's command line answers with help "
                   "(the name describes the site's LAN on its router)",
    "placeholder": "a TODO placeholder that still needs its real value",
    "invalid": "any other invalid value",
    "too-many-problems": "more problems in one file than are worth listing",
    # Within one file.
    "slug-file-name": "slug differs from the file name",
    "unique-site-id": "two sites of a municipality share an id",
    "duplicate-service": "a municipality subscribes to a service twice",
    "bandwidth": "a bandwidth that its access technology cannot carry",
    "date-order": "a device's lease ends before it was installed",
    "date-range": "a date before 1990, after 2100, or a lease longer than 15 years",
    "unique-id": "two entries of a centre list share an id, name or address",
    "billing-areas": "service areas given for a service billed per site",
    "address-in-range": "a shared host's address lies outside the centre's ranges",
    "address-reserved": "a shared host's address that the platform gives another machine (the "
                        "core router's first address, the lab bridge's last), or one in the "
                        "links or management range",
    "centre-range-missing": "the centre has no backbone range (the core router's network) or "
                            "no links range (the sites' /30 broadband links)",
    "link-space": "the links range cannot hold one /30 per /24 of the aggregates, or an "
                  "aggregate smaller than a /24",
    "range-size": "a centre network smaller than a /29 (the core router, the lab bridge and "
                  "at least one host)",
    "private-range": "an aggregate that is not private address space (RFC 1918)",
    "maintenance-window": "a service level's maintenance window naming a day twice",
    "duplicate-area": "a service lists one service area twice (its users would be billed "
                      "twice)",
    "asn-collision": "the core router's AS number is one a site router may take",
    "reserved-name": "a slug or host name the platform keeps for itself (slug core, the core "
                     "router, the DNS service names, Ansible groups, PostgreSQL's own names)",
    "name-too-long": f"a name the platform derives (stack, container, DNS, database, CA "
                     f"subject) longer than its system allows, with an environment name of "
                     f"{MAX_ENV_LENGTH} characters",
    # Across files.
    "centre-missing": "no operations-centre.yaml among the files",
    "centre-duplicate": "more than one operations-centre.yaml among the files",
    "unique-slug": "two municipality files with the same slug",
    "unique-code": "two municipalities with the same code",
    "unique-hostname": "two hosts with the same name (sites make <slug>-<site>-router and "
                       "<slug>-<site>-client; DNS names and containers follow them)",
    "unique-name": "two derived names that collide (lab networks <slug>-<site>-lan and -link, "
                   "centre-<range>; stacks; databases)",
    "link-collision": "two sites whose LANs map to the same broadband link /30 (one /30 per "
                      "/24 of the plan)",
    "unique-serial": "two devices with the same serial number",
    "prefix-in-plan": "a prefix outside the centre's address plan",
    "prefix-overlap": "prefixes that overlap (sites of any municipality, centre ranges)",
    "vlan-conflict": "two sites on the same provider's handoff with the same VLAN",
    "unknown-service": "a subscription to a service the catalogue does not have",
    "unknown-tier": "a tier (service level) the service is not priced at",
    "unknown-provider": "a link from a provider the centre does not list",
    # `fellesdrift inventory migrate`.
    "migrate-flow-style": "migrate edits block-style YAML only; a {…}/[…] collection is in the "
                          "way",
}

#: Most a technology carries, Mbit/s (down, up); fibre is bounded by the schema (100 Gbit/s).
_ACCESS_LIMITS = {"dsl": (300, 100), "radio": (10_000, 10_000)}
_EARLIEST = date(1990, 1, 1)
_LATEST = date(2100, 1, 1)
_LONGEST_LEASE_DAYS = 15 * 366


def municipality(doc: Document, m: Municipality) -> Iterator[Problem]:
    """Rules within one municipality's file."""
    stem = Path(doc.file).stem
    if m.slug != stem:
        yield doc.at(("slug",), "slug", f"{m.slug!r} must equal the file name {stem!r}; rename "
                     "one of them", "slug-file-name")
    why = naming.RESERVED_SLUGS.get(m.slug)
    if why is not None:
        yield doc.at(("slug",), "slug", f"{m.slug!r} is reserved: {why}; choose another slug",
                     "reserved-name")
    for derived in naming.municipality_names(m.slug):
        if derived.namespace == "database" and naming.postgres_reserved(derived.name):
            yield doc.at(("slug",), "slug", f"makes {derived.what} {derived.name!r}, a name "
                         "PostgreSQL keeps for itself; choose another slug", "reserved-name")
        yield from _too_long(doc, ("slug",), derived, "choose a shorter slug")
    for i, site in enumerate(m.sites):
        if naming.site_names_fit(m.slug, site.id):
            continue
        for derived in naming.site_names(m.slug, site.id):
            found = list(_too_long(doc, ("sites", i, "id"), derived,
                                   "choose a shorter site id (or slug)"))
            yield from found
            if found:
                break  # the longest of a site's names says enough
    seen: dict[str, int] = {}
    for i, s in enumerate(m.services):
        if s.service in seen:
            yield doc.at(("services", i, "service"), f"services.{i}.service",
                         f"{s.service} is subscribed already (services.{seen[s.service]}); "
                         "keep one subscription per service", "duplicate-service")
        seen.setdefault(s.service, i)
    ids: dict[str, int] = {}
    for i, site in enumerate(m.sites):
        if site.id in ids:
            yield doc.at(("sites", i, "id"), f"sites.{i}.id",
                         f"{site.id!r} is the id of sites.{ids[site.id]} too; site ids are unique "
                         "in a municipality", "unique-site-id")
        ids.setdefault(site.id, i)
        link = site.link
        limits = _ACCESS_LIMITS.get(link.access)
        if limits is not None:
            for name, value, most in (("down_mbps", link.down_mbps, limits[0]),
                                      ("up_mbps", link.up_mbps, limits[1])):
                if value > most:
                    yield doc.at(("sites", i, "link", name), f"sites.{i}.link.{name}",
                                 f"{value} Mbit/s is more than {link.access} carries (at most "
                                 f"{most}); check the number or the access", "bandwidth")
        if link.access == "dsl" and link.up_mbps > link.down_mbps:
            yield doc.at(("sites", i, "link", "up_mbps"), f"sites.{i}.link.up_mbps",
                         f"dsl is asymmetric: up ({link.up_mbps}) cannot exceed down "
                         f"({link.down_mbps}) Mbit/s", "bandwidth")
        device = site.device
        if device is None:
            continue
        where = ("sites", i, "device")
        for name, day in (("installed", device.installed), ("lease_end", device.lease_end)):
            if not _EARLIEST <= day < _LATEST:
                yield doc.at((*where, name), f"sites.{i}.device.{name}",
                             f"{day} is not a plausible date (1990–2099)", "date-range")
        if device.lease_end <= device.installed:
            yield doc.at((*where, "lease_end"), f"sites.{i}.device.lease_end",
                         f"the lease ends ({device.lease_end}) before the device was installed "
                         f"({device.installed}); it must end after", "date-order")
        elif (device.lease_end - device.installed).days > _LONGEST_LEASE_DAYS:
            yield doc.at((*where, "lease_end"), f"sites.{i}.device.lease_end",
                         f"a lease of {(device.lease_end - device.installed).days // 365} years "
                         "is implausible (at most 15); check the dates", "date-range")


def _unique(doc: Document, items: list[tuple[str, tuple[str | int, ...]]], what: str
            ) -> Iterator[Problem]:
    first: dict[str, str] = {}
    for value, loc in items:
        field = ".".join(map(str, loc))
        if value in first:
            yield doc.at(loc, field, f"{what} {value!r} is used by {first[value]} too; it must "
                         "be unique", "unique-id")
        first.setdefault(value, field)


def centre(doc: Document, c: OperationsCentre) -> Iterator[Problem]:
    """Rules within the operations centre's file."""
    plan = c.address_plan
    yield from _unique(doc, [(lvl.id, ("service_levels", i, "id"))
                             for i, lvl in enumerate(c.service_levels)], "service level")
    yield from _unique(doc, [(s.id, ("services", i, "id")) for i, s in enumerate(c.services)],
                       "service")
    yield from _unique(doc, [(p.id, ("providers", i, "id")) for i, p in enumerate(c.providers)],
                       "provider")
    yield from _unique(doc, [(r.name, ("address_plan", "centre_ranges", i, "name"))
                             for i, r in enumerate(plan.centre_ranges)], "range")
    yield from _unique(doc, [(h.hostname, ("shared_hosts", i, "hostname"))
                             for i, h in enumerate(c.shared_hosts)], "host name")
    yield from _unique(doc, [(h.address, ("shared_hosts", i, "address"))
                             for i, h in enumerate(c.shared_hosts)], "address")
    yield from _windows(doc, c)
    levels = {lvl.id for lvl in c.service_levels}
    for i, s in enumerate(c.services):
        for tier in s.prices:
            if tier not in levels:
                yield doc.at(("services", i, "prices", tier), f"services.{i}.prices.{tier}",
                             f"{tier!r} is not a service level; use one of "
                             f"{', '.join(sorted(levels))}", "unknown-tier", key=True)
        if s.billing == "per_site" and s.areas is not None:
            yield doc.at(("services", i, "areas"), f"services.{i}.areas",
                         "areas count users; a service billed per_site has none (remove areas "
                         "or bill per_user)", "billing-areas")
    aggregates: list[Span[Loc]] = [Span.of(a, ("address_plan", "aggregates", i))
                                    for i, a in enumerate(plan.aggregates)]
    for earlier, later in overlaps(aggregates):
        yield doc.at(later.owner, _field(later.owner),
                     f"overlaps the aggregate {_prefix(earlier)}; aggregates must be disjoint",
                     "prefix-overlap")
    ranges: list[Span[Loc]] = [Span.of(r.prefix, ("address_plan", "centre_ranges", i, "prefix"))
                               for i, r in enumerate(plan.centre_ranges)]
    for span in ranges:
        if not any(span.within(a) for a in aggregates):
            yield doc.at(span.owner, _field(span.owner),
                         f"{_prefix(span)} lies outside the aggregates "
                         f"({', '.join(plan.aggregates)})", "prefix-in-plan")
    for i, pool in enumerate(plan.site_pools):
        span = Span.of(pool, ("address_plan", "site_pools", i))
        if not any(span.within(a) for a in aggregates):
            yield doc.at(span.owner, _field(span.owner), f"{pool} lies outside the aggregates "
                         f"({', '.join(plan.aggregates)})", "prefix-in-plan")
    for earlier, later in overlaps(ranges):
        yield doc.at(later.owner, _field(later.owner),
                     f"{_prefix(later)} overlaps the centre range {_prefix(earlier)}",
                     "prefix-overlap")
    for i, h in enumerate(c.shared_hosts):
        address = parse_address(h.address)
        if not any(r.first < address < r.last for r in ranges):
            yield doc.at(("shared_hosts", i, "address"), f"shared_hosts.{i}.address",
                         f"{h.address} is not a host address in any centre range "
                         f"({', '.join(r.prefix for r in plan.centre_ranges) or 'none'})",
                         "address-in-range")
        else:
            yield from _shared_address(doc, c, i, address, ranges)
    yield from _centre_plan(doc, c, aggregates)
    yield from _centre_names(doc, c)
    for i, s in enumerate(c.services):
        areas: dict[str, int] = {}
        for j, area in enumerate(s.areas or []):
            if area in areas:
                yield doc.at(("services", i, "areas", j), f"services.{i}.areas.{j}",
                             f"{area} is listed already (areas.{areas[area]}); its users would "
                             "be billed twice: list each area once", "duplicate-area")
            areas.setdefault(area, j)


def _windows(doc: Document, c: OperationsCentre) -> Iterator[Problem]:
    """Each service level's maintenance window names each day once."""
    for i, lvl in enumerate(c.service_levels):
        window = lvl.maintenance_window
        if window is None:
            continue
        where: Loc = ("service_levels", i, "maintenance_window")
        seen: set[str] = set()
        for j, day in enumerate(window.days):
            if day in seen:
                yield doc.at((*where, "days", j), _field((*where, "days", j)),
                             f"{day} is listed already; name each day once",
                             "maintenance-window")
            seen.add(day)


def _shared_address(doc: Document, c: OperationsCentre, i: int, address: int,
                    ranges: list[Span[Loc]]) -> Iterator[Problem]:
    """A shared host's address against what the platform gives other machines."""
    where, field = ("shared_hosts", i, "address"), f"shared_hosts.{i}.address"
    shown = c.shared_hosts[i].address
    for r, span in zip(c.address_plan.centre_ranges, ranges, strict=True):
        if not span.first < address < span.last:
            continue
        if r.name in topology.NOT_NETWORKS:
            why = ("the sites' broadband /30 links" if r.name == "links"
                   else "management, which is not a network the platform makes")
            yield doc.at(where, field, f"{shown} lies in the {r.name} range {r.prefix}, which "
                         f"holds {why}; take an address in a server range", "address-reserved")
        elif address == span.first + 1:
            yield doc.at(where, field, f"{shown} is the core router's address on {r.name} "
                         f"({r.prefix}: the router takes the first address); take another",
                         "address-reserved")
        elif address == span.last - 1:
            yield doc.at(where, field, f"{shown} is the lab bridge's address on {r.name} "
                         f"({r.prefix}: the control node takes the last usable address); "
                         "take another", "address-reserved")


#: RFC 1918 private address space.
_PRIVATE = [Span.of(p, None) for p in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
#: The smallest centre network: core router, lab bridge and at least one host.
_SMALLEST_NETWORK = 29


def _centre_plan(doc: Document, c: OperationsCentre, aggregates: list[Span[Loc]]
                 ) -> Iterator[Problem]:
    """What the topology needs of the address plan, checked before anything is built."""
    plan = c.address_plan
    for span, prefix in zip(aggregates, plan.aggregates, strict=True):
        if not any(span.within(p) for p in _PRIVATE):
            yield doc.at(span.owner, _field(span.owner), f"{prefix} is not private address "
                         "space; use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 (RFC 1918)",
                         "private-range")
        if span.last - span.first + 1 < 256:
            yield doc.at(span.owner, _field(span.owner), f"{prefix} is smaller than a /24; the "
                         "sites' links take one /30 per /24 of the aggregates, so an aggregate "
                         "is a /24 or larger", "link-space")
    names = [r.name for r in plan.centre_ranges]
    for needed, why in (("backbone", "the core router's network, which routers are managed "
                         "over"), ("links", "the sites' /30 broadband links")):
        if needed not in names:
            loc: Loc = ("address_plan", "centre_ranges") if "centre_ranges" in (
                doc.data.get("address_plan") or {}) else ("address_plan",)
            yield doc.at(loc, _field(loc), f"no centre range named {needed}; add one for {why}",
                         "centre-range-missing", key=True)
    for i, r in enumerate(plan.centre_ranges):
        loc = ("address_plan", "centre_ranges", i, "prefix")
        length = int(r.prefix.partition("/")[2])
        if r.name == "links":
            wanted = sum((s.last - s.first + 1) >> 8 for s in aggregates)
            have = 1 << (32 - length) >> (32 - topology.LINK_PREFIX)
            if have < wanted:
                need = 32 - max(wanted * (1 << (32 - topology.LINK_PREFIX)) - 1, 1).bit_length()
                yield doc.at(loc, _field(loc), f"{r.prefix} holds {have} /30 links, but the "
                             f"aggregates need {wanted} (one per /24); make it a /{need} or "
                             "larger", "link-space")
        elif r.name not in topology.NOT_NETWORKS and length > _SMALLEST_NETWORK:
            yield doc.at(loc, _field(loc), f"{r.prefix} is too small for a centre network; make "
                         f"it a /{_SMALLEST_NETWORK} or larger (the core router takes the first "
                         "address, the lab bridge the last, hosts the ones between)",
                         "range-size")
    routing = plan.routing
    if routing.site_asn_base <= routing.asn <= routing.site_asn_base + 9999:
        yield doc.at(("address_plan", "routing", "asn"), "address_plan.routing.asn",
                     f"AS {routing.asn} is one a site router takes (site_asn_base "
                     f"{routing.site_asn_base} plus a municipality code); choose an AS outside "
                     f"{routing.site_asn_base}–{routing.site_asn_base + 9999}", "asn-collision")


def _too_long(doc: Document, loc: Loc, derived: naming.Derived, change: str
              ) -> Iterator[Problem]:
    for system, full, length, most, unit in derived.too_long():
        shown = full.replace(naming.LONGEST_ENV, "<env>")
        yield doc.at(loc, _field(loc), f"makes {derived.what} {shown!r}: {system} may be at "
                     f"most {most} {unit} and this one is {length} with an environment name of "
                     f"{naming.MAX_ENV_LENGTH} characters; {change}", "name-too-long")
        return  # one problem per name is enough


def _centre_names(doc: Document, c: OperationsCentre) -> Iterator[Problem]:
    for i, h in enumerate(c.shared_hosts):
        loc: Loc = ("shared_hosts", i, "hostname")
        why = naming.RESERVED_HOSTS.get(h.hostname)
        if why is not None:
            yield doc.at(loc, _field(loc), f"{h.hostname!r} is {why}; choose another host name",
                         "reserved-name")
        for derived in naming.shared_host_names(h.hostname):
            yield from _too_long(doc, loc, derived, "choose a shorter host name")
    for i, r in enumerate(c.address_plan.centre_ranges):
        if r.name not in topology.NOT_NETWORKS:
            for derived in naming.centre_range_names(r.name):
                yield from _too_long(doc, ("address_plan", "centre_ranges", i, "name"), derived,
                                     "choose a shorter range name")
    yield from _too_long(doc, ("name",), naming.ca_names(c.name), "choose a shorter name")


def _field(loc: tuple[str | int, ...]) -> str:
    return ".".join(map(str, loc))


def _prefix(span: Span[Any]) -> str:
    return format_prefix(span.first, 32 - (span.last - span.first + 1).bit_length() + 1)


@dataclass(frozen=True)
class _Owner:
    doc: Document
    loc: tuple[str | int, ...]
    who: str
    index: int  # file order; the centre is -1
    site: bool


def across(centre_doc: Document | None, c: OperationsCentre | None,
           munis: list[tuple[Document, Municipality]]) -> Iterator[Problem]:
    """Rules across files. Files that failed their own checks are not passed in."""
    slugs: dict[str, str] = {}
    codes: dict[str, str] = {}
    serials: dict[str, str] = {}
    # Every derived name by namespace, with who makes it; the centre's first.
    names: dict[tuple[str | None, str], str] = {}
    if c is not None and centre_doc is not None:
        for d in naming.centre_names():
            names[d.namespace, d.name] = f"the centre ({d.what})"
        for h in c.shared_hosts:
            names["host", h.hostname] = f"the shared host {h.hostname} ({centre_doc.file})"
        for r in c.address_plan.centre_ranges:
            if r.name not in topology.NOT_NETWORKS:
                for d in naming.centre_range_names(r.name):
                    names[d.namespace, d.name] = f"the centre range {r.name} ({centre_doc.file})"
    for doc, m in munis:
        if m.slug in slugs:
            yield doc.at(("slug",), "slug", f"{m.slug!r} is the slug of {slugs[m.slug]} too; "
                         "give each municipality one file", "unique-slug")
        else:
            yield from _derived(doc, m, names)
        slugs.setdefault(m.slug, doc.file)
        if m.code in codes:
            yield doc.at(("code",), "code", f"code {m.code} is used by {codes[m.code]} too; "
                         "check the official municipality number", "unique-code")
        codes.setdefault(m.code, f"{m.name} ({doc.file})")
        for i, site in enumerate(m.sites):
            if site.device is not None:
                serial = site.device.serial
                if serial in serials:
                    yield doc.at(("sites", i, "device", "serial"), f"sites.{i}.device.serial",
                                 f"serial {serial} is also the serial of {serials[serial]}; "
                                 "one device cannot be at two sites", "unique-serial")
                serials.setdefault(serial, f"{m.slug}/{site.id} ({doc.file})")
    if c is None or centre_doc is None:
        return
    yield from _catalogue(c, munis)
    yield from _addresses(centre_doc, c, munis)


def _derived(doc: Document, m: Municipality, names: dict[tuple[str | None, str], str]
             ) -> Iterator[Problem]:
    """The names a municipality derives against every name made before it."""
    own = [(("slug",), "choose another slug", d) for d in naming.municipality_names(m.slug)]
    for loc, change, derived in own:
        key = (derived.namespace, derived.name)
        if key in names:
            yield doc.at(loc, _field(loc), f"makes {derived.what} {derived.name}, which "
                         f"{names[key]} makes too; {change}", "unique-name")
        names.setdefault(key, f"{m.slug} ({doc.file})")
    for i, site in enumerate(m.sites):
        made = naming.site_names(m.slug, site.id)
        for derived in made:
            key = (derived.namespace, derived.name)
            if key in names:
                rule = "unique-hostname" if derived.namespace == "host" else "unique-name"
                yield doc.at(("sites", i, "id"), f"sites.{i}.id",
                             f"makes {derived.what} {derived.name}, which "
                             f"{names[key]} makes too; choose another site id", rule)
                break  # one collision says enough about a site
        for derived in made:
            names.setdefault((derived.namespace, derived.name),
                             f"{m.slug}/{site.id} ({doc.file})")


def _catalogue(c: OperationsCentre, munis: list[tuple[Document, Municipality]]
               ) -> Iterator[Problem]:
    services = {s.id: s for s in c.services}
    providers = {p.id: p for p in c.providers}
    vlans: dict[tuple[str, int], str] = {}
    for doc, m in munis:
        for i, sub in enumerate(m.services):
            service = services.get(sub.service)
            if service is None:
                yield doc.at(("services", i, "service"), f"services.{i}.service",
                             f"{sub.service!r} is not in the service catalogue; use one of "
                             f"{', '.join(sorted(services))}", "unknown-service")
            elif sub.tier not in service.prices:
                yield doc.at(("services", i, "tier"), f"services.{i}.tier",
                             f"{service.id} is not offered at {sub.tier!r}; it is priced at "
                             f"{', '.join(sorted(service.prices))}", "unknown-tier")
        for i, site in enumerate(m.sites):
            link = site.link
            if link.provider not in providers:
                yield doc.at(("sites", i, "link", "provider"), f"sites.{i}.link.provider",
                             f"{link.provider!r} is not among the centre's providers; use one of "
                             f"{', '.join(sorted(providers))}", "unknown-provider")
                continue
            key = (link.provider, link.vlan)
            if key in vlans:
                yield doc.at(("sites", i, "link", "vlan"), f"sites.{i}.link.vlan",
                             f"VLAN {link.vlan} on {link.provider}'s handoff "
                             f"({providers[link.provider].handoff}) is taken by {vlans[key]}; "
                             "choose a free VLAN", "vlan-conflict")
            vlans.setdefault(key, f"{m.slug}/{site.id} ({doc.file})")


def _addresses(centre_doc: Document, c: OperationsCentre,
               munis: list[tuple[Document, Municipality]]) -> Iterator[Problem]:
    plan = c.address_plan
    aggregates = [Span.of(a, None) for a in plan.aggregates]
    spans: list[Span[_Owner]] = [
        Span.of(r.prefix, _Owner(centre_doc, ("address_plan", "centre_ranges", i, "prefix"),
                                 f"the centre range {r.name}", -1, False))
        for i, r in enumerate(plan.centre_ranges)]
    described = ", ".join(plan.aggregates)
    placed: list[tuple[Span[_Owner], Site]] = []
    overlapping: set[int] = set()
    for index, (doc, m) in enumerate(munis):
        for i, site in enumerate(m.sites):
            span = Span.of(site.lan_prefix, _Owner(doc, ("sites", i, "lan_prefix"),
                                                   f"{m.slug}/{site.id}", index, True))
            if not any(span.within(a) for a in aggregates):
                yield doc.at(span.owner.loc, f"sites.{i}.lan_prefix",
                             f"{site.lan_prefix} lies outside the address plan ({described}); "
                             "take a free prefix inside it", "prefix-in-plan")
            else:
                placed.append((span, site))
            spans.append(span)
    for a, b in overlaps(spans):
        if not a.owner.site and not b.owner.site:
            continue  # centre ranges against each other: the centre's own rule
        # Blame a site, never the centre; of two sites, the one in the later file.
        blamed, other = (b, a) if b.owner.site and (
            not a.owner.site or (b.owner.index, b.owner.loc) >= (a.owner.index, a.owner.loc)
        ) else (a, b)
        owner = blamed.owner
        overlapping.update((id(a.owner), id(b.owner)))
        yield owner.doc.at(owner.loc, _field(owner.loc),
                           f"{_prefix(blamed)} overlaps {_prefix(other)} of {other.owner.who} "
                           f"({other.owner.doc.file}); take a free prefix", "prefix-overlap")
    # Each site's link /30 follows from where its LAN lies in the plan (one /30 per /24).
    links: dict[str, _Owner] = {}
    for span, site in placed:
        if id(span.owner) in overlapping:
            continue  # reported as an overlap already
        try:
            subnet = topology.link_subnet(c, site)
        except topology.TopologyError:
            continue  # the centre's own rules name what is missing
        owner = span.owner
        first = links.setdefault(subnet, owner)
        if first is not owner:
            yield owner.doc.at(owner.loc, _field(owner.loc),
                               f"{site.lan_prefix} gets the broadband link {subnet}, which "
                               f"{first.who} ({first.doc.file}) gets too: the links take one "
                               "/30 per /24 of the plan, so sites in one /24 share it; give "
                               "this site a LAN in a /24 no other site uses", "link-collision")
