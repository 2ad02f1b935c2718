"""The intended configuration of the core router and every site router, from the model alone.

Addresses follow :mod:`fellesdrift.topology` (the same rules the stacks use): the core router
takes the first address of each centre network and of each site's /30 link; a site router the
second address of its link and the first of its LAN. Routing follows the address plan's
``routing``: eBGP (the core offers every site router only the shared-service prefixes and
accepts from it only its municipality's own site LANs) or static routes.

Templates live in ``templates/network/<platform>/{core,site}.j2``. Interface names depend on the
platform (:data:`NAMING`); for FRR the lab passes the names the device really has
(``interfaces``: address → name), since the lab attaches links in no fixed order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jinja2

from fellesdrift import syntax
from fellesdrift.inventory.model import Inventory, Municipality, Site
from fellesdrift.paths import ROOT
from fellesdrift.plan import naming, topology

TEMPLATES = ROOT / "templates" / "network"
PLATFORMS = ("frr", "cisco_ios", "juniper_junos")
CORE = naming.CORE_ROUTER
Kind = Literal["core", "site"]


@dataclass(frozen=True)
class Interface:
    name: str
    address: str  # the router's address
    prefix: str  # the network it is on
    description: str
    vlan: int | None = None

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.prefix).prefixlen

    @property
    def netmask(self) -> str:
        return str(ipaddress.IPv4Network(self.prefix).netmask)

    @property
    def cidr(self) -> str:
        return f"{self.address}/{self.prefixlen}"


@dataclass(frozen=True)
class Neighbor:
    address: str
    asn: int
    description: str
    route_map_in: str
    route_map_out: str


@dataclass(frozen=True)
class PrefixList:
    name: str
    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class Device:
    """One router, everything its templates need."""

    name: str
    kind: Kind
    hostname: str
    platform: str | None  # what the inventory says the real device is (None: not installed)
    protocol: str
    asn: int
    router_id: str
    interfaces: tuple[Interface, ...]
    shared: tuple[str, ...]  # the shared-service prefixes of the centre
    dns: tuple[str, ...]
    ntp: tuple[str, ...]
    syslog: tuple[str, ...]
    management: tuple[str, ...]  # where management logins may come from
    neighbors: tuple[Neighbor, ...] = ()
    networks: tuple[str, ...] = ()  # prefixes the router advertises
    prefix_lists: tuple[PrefixList, ...] = ()
    route_maps: tuple[tuple[str, str], ...] = ()  # (route-map, prefix-list it matches)
    static_routes: tuple[tuple[str, str], ...] = ()  # (prefix, next hop)
    municipality: str | None = None
    lan: str | None = None
    uplink: Interface | None = None
    peer: str | None = None  # a site router's core-router address on its link
    extra: dict[str, str] = field(default_factory=dict)


def device_name(m: Municipality, site: Site) -> str:
    return naming.site_router(m.slug, site.id)


def prefix_list_name(slug: str) -> str:
    return f"SITES-{slug.upper()}"


def _services(model: Inventory) -> dict[str, tuple[str, ...]]:
    by: dict[str, list[str]] = {}
    for h in model.centre.shared_hosts:
        by.setdefault(topology.SHARED_FUNCTIONS.get(h.role, h.role), []).append(h.address)
    dns = tuple(by.get("dns_ntp", ()))
    return {"dns": dns, "ntp": dns, "syslog": tuple(by.get("monitoring", ()))}


def _shared(model: Inventory) -> tuple[str, ...]:
    return tuple(n.prefix for n in topology.centre_networks(model.centre))


def _management(model: Inventory) -> tuple[str, ...]:
    ranges = model.centre.address_plan.centre_ranges
    named = [r.prefix for r in ranges if r.name == "management"]
    return tuple(named + [n.prefix for n in topology.centre_networks(model.centre)
                          if n.name == "backbone"])


def _sites(model: Inventory) -> list[tuple[Municipality, Site]]:
    return [(m, s) for m in model.municipalities for s in m.sites]


# Interface names per platform: centre networks, links (by provider index and VLAN), site LAN
# and site uplink. FRR's defaults are the lab's order (eth0 management first).
def _name(platform: str, what: str, index: int, vlan: int = 0) -> str:
    if platform == "cisco_ios":
        return {"centre": f"GigabitEthernet0/0/{index}",
                "link": f"GigabitEthernet0/1/{index}.{vlan}",
                "uplink": "GigabitEthernet0/0/0", "lan": "GigabitEthernet0/1/0"}[what]
    if platform == "juniper_junos":
        return {"centre": f"ge-0/0/{index}", "link": f"ge-0/1/{index}",
                "uplink": "ge-0/0/0", "lan": "ge-0/0/1"}[what]
    return {"centre": f"eth{index}", "link": f"eth{index}", "uplink": "eth1", "lan": "eth0"}[what]


def devices(model: Inventory) -> list[str]:
    """Every router the model describes: the core router first, then the site routers."""
    return [CORE] + [device_name(m, s) for m, s in _sites(model)]


def device(model: Inventory, name: str, platform: str = "frr",
           interfaces: Mapping[str, str] | None = None, hostname: str | None = None) -> Device:
    """The device ``name`` as ``platform`` sees it. ``interfaces``: address → interface name
    as the real device has them (default: :func:`_name`'s)."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; one of {', '.join(PLATFORMS)}")
    routing = model.centre.address_plan.routing
    shared = _shared(model)
    services = _services(model)
    common: dict[str, Any] = {"platform": None, "protocol": routing.protocol, "shared": shared,
              "management": _management(model), **services}
    names = dict(interfaces or {})
    if name == CORE:
        return _core(model, platform, names, hostname or CORE, common)
    for m, s in _sites(model):
        if device_name(m, s) == name:
            return _site(model, m, s, platform, names, hostname or name, common)
    raise KeyError(f"no router named {name} in the model")


def _core(model: Inventory, platform: str, names: dict[str, str], hostname: str,
          common: Mapping[str, Any]) -> Device:
    routing = model.centre.address_plan.routing
    centre = topology.centre_networks(model.centre)
    ifaces = [Interface(names.get(n.router, _name(platform, "centre", i)), n.router, n.prefix,
                        f"centre {n.name} {n.prefix}") for i, n in enumerate(centre)]
    providers = [p.id for p in model.centre.providers]
    neighbors, lists, maps, routes = [], [PrefixList("SHARED", _shared(model))], [], []
    maps.append(("TO-SITES", "SHARED"))
    for i, (m, s) in enumerate(_sites(model)):
        subnet = topology.link_subnet(model.centre, s)
        mine, theirs = topology.link_addresses(subnet)
        index = providers.index(s.link.provider) if s.link.provider in providers else 0
        default = (_name(platform, "link", len(centre) + i) if platform == "frr"
                   else _name(platform, "link", index, s.link.vlan))
        ifaces.append(Interface(names.get(mine, default), mine, subnet,
                                f"link {device_name(m, s)} {s.link.provider} vlan {s.link.vlan}",
                                vlan=s.link.vlan))
        neighbors.append(Neighbor(theirs, routing.site_asn(m.code), device_name(m, s),
                                  f"FROM-{m.slug.upper()}", "TO-SITES"))
        routes.append((s.lan_prefix, theirs))
    for m in model.municipalities:
        lists.append(PrefixList(prefix_list_name(m.slug), tuple(s.lan_prefix for s in m.sites)))
        maps.append((f"FROM-{m.slug.upper()}", prefix_list_name(m.slug)))
    bgp = routing.protocol == "bgp"
    return Device(
        name=CORE, kind="core", hostname=hostname, asn=routing.asn, router_id=centre[0].router,
        interfaces=tuple(ifaces), neighbors=tuple(neighbors) if bgp else (),
        networks=tuple(n.prefix for n in centre) if bgp else (),
        prefix_lists=tuple(lists) if bgp else (), route_maps=tuple(maps) if bgp else (),
        static_routes=() if bgp else tuple(routes), **common)


def _site(model: Inventory, m: Municipality, s: Site, platform: str, names: dict[str, str],
          hostname: str, common: Mapping[str, Any]) -> Device:
    routing = model.centre.address_plan.routing
    subnet = topology.link_subnet(model.centre, s)
    core, mine = topology.link_addresses(subnet)
    lan_ip = topology.site_router_address(s)
    lan = Interface(names.get(lan_ip, _name(platform, "lan", 0)), lan_ip, s.lan_prefix,
                    f"LAN {s.name}")
    uplink = Interface(names.get(mine, _name(platform, "uplink", 0)), mine, subnet,
                       f"uplink {s.link.access} {s.link.provider} vlan {s.link.vlan} "
                       f"{s.link.down_mbps}/{s.link.up_mbps} Mbit/s", vlan=s.link.vlan)
    bgp = routing.protocol == "bgp"
    shared = _shared(model)
    return Device(
        name=device_name(m, s), kind="site", hostname=hostname, asn=routing.site_asn(m.code),
        router_id=lan_ip, interfaces=(lan, uplink), municipality=m.slug, lan=s.lan_prefix,
        uplink=uplink, peer=core,
        neighbors=(Neighbor(core, routing.asn, CORE, "FROM-CORE", "TO-CORE"),) if bgp else (),
        networks=(s.lan_prefix,) if bgp else (),
        prefix_lists=(PrefixList("SHARED", shared), PrefixList("OWN-LAN", (s.lan_prefix,)))
        if bgp else (),
        route_maps=(("FROM-CORE", "SHARED"), ("TO-CORE", "OWN-LAN")) if bgp else (),
        static_routes=() if bgp else tuple((p, core) for p in shared),
        **{**common, "platform": s.device.platform if s.device else None})


def _wildcard(prefix: str) -> str:
    return str(ipaddress.IPv4Network(prefix).hostmask)


def _network(prefix: str) -> str:
    return str(ipaddress.IPv4Network(prefix).network_address)


def _environment() -> jinja2.Environment:
    """Templates write names through ``config_word`` and free text through the platform's
    filter (:mod:`fellesdrift.syntax`); whatever an expression writes is one line
    (``finalize``), so no value can end a line and start a command of its own."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, autoescape=False,
                             finalize=syntax.one_line)
    env.filters.update(syntax.FILTERS)
    env.filters["wildcard"] = _wildcard
    env.filters["network"] = _network
    env.filters["netmask"] = lambda p: str(ipaddress.IPv4Network(p).netmask)
    return env


_ENV = _environment()


def render_device(dev: Device, platform: str) -> str:
    return _ENV.get_template(f"{platform}/{dev.kind}.j2").render(d=dev)


def render(model: Inventory, name: str, platform: str = "frr",
           interfaces: Mapping[str, str] | None = None, hostname: str | None = None) -> str:
    """The intended configuration text of router ``name`` on ``platform``."""
    return render_device(device(model, name, platform, interfaces, hostname), platform)
