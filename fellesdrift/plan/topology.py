"""The lab- and cloud-independent topology derived from the model: which networks exist, which
address every router and host takes, and how big the hosting machines are.

Rules (the same for every driver):

- The centre's ranges (address plan ``centre_ranges``) become networks, except ``management``
  (reserved) and ``links``. The core router takes the first usable address of each.
- Every site's broadband link is a /30 from the centre's ``links`` range: the core router
  takes the first address, the site router the second. The /30 is chosen by the position of
  the site's LAN inside the address plan's aggregates (one /30 per /24 of aggregate), so adding
  a municipality never moves another municipality's links.
- On a site LAN the site router takes the first usable address and the site client the tenth.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fellesdrift.errors import FellesdriftError
from fellesdrift.inventory.addressing import format_prefix, parse_prefix
from fellesdrift.inventory.model import Inventory, Municipality, OperationsCentre, Site
from fellesdrift.plan import functions

LINK_PREFIX = 30
NOT_NETWORKS = ("management", "links")
SHARED_FUNCTIONS = functions.SHARED_FUNCTIONS
HOSTING_SERVICE = functions.HOSTING_SERVICE


class TopologyError(FellesdriftError, ValueError):
    pass


def nth(prefix: str, n: int) -> str:
    return str(ipaddress.IPv4Network(prefix).network_address + n)


#: The host numbers of a site's two hosts on its LAN: the router (the LAN's gateway) and the
#: client.
SITE_ROUTER_HOST = 1
SITE_CLIENT_HOST = 10


def site_router_address(site: Site) -> str:
    return nth(site.lan_prefix, SITE_ROUTER_HOST)


def site_client_address(site: Site) -> str:
    return nth(site.lan_prefix, SITE_CLIENT_HOST)


def link_addresses(subnet: str) -> tuple[str, str]:
    """A broadband link's two addresses on its /30: the core router's, then the site router's."""
    return nth(subnet, 1), nth(subnet, 2)


@dataclass(frozen=True)
class CentreNetwork:
    name: str
    prefix: str

    @property
    def kind(self) -> str:
        return "backbone" if self.name == "backbone" else "servers"

    @property
    def router(self) -> str:
        return nth(self.prefix, 1)


def centre_networks(centre: OperationsCentre) -> list[CentreNetwork]:
    nets = [CentreNetwork(r.name, r.prefix) for r in centre.address_plan.centre_ranges
            if r.name not in NOT_NETWORKS]
    if not any(n.name == "backbone" for n in nets):
        raise TopologyError("the centre's address plan needs a centre range named backbone")
    return sorted(nets, key=lambda n: n.name != "backbone")  # backbone first: management


def network_of(centre: OperationsCentre, address: str) -> CentreNetwork:
    ip = ipaddress.IPv4Address(address)
    for net in centre_networks(centre):
        if ip in ipaddress.IPv4Network(net.prefix):
            return net
    raise TopologyError(f"{address} lies in none of the centre's networks")


def link_subnet(centre: OperationsCentre, site: Site) -> str:
    """The /30 of a site's broadband link (see the module's rules). Integer arithmetic
    (:mod:`.addressing`): validate computes it for every site."""
    links = next((r for r in centre.address_plan.centre_ranges if r.name == "links"), None)
    if links is None:
        raise TopologyError("the centre's address plan needs a centre range named links")
    pool, pool_length = parse_prefix(links.prefix)
    lan, lan_length = parse_prefix(site.lan_prefix)
    lan_last = lan + (1 << (32 - lan_length)) - 1
    offset = 0
    for aggregate in centre.address_plan.aggregates:
        first, length = parse_prefix(aggregate)
        size = 1 << (32 - length)
        if first <= lan and lan_last < first + size:
            index = offset + ((lan - first) >> 8)
            break
        offset += size >> 8
    else:
        raise TopologyError(f"{site.lan_prefix} lies outside the address plan")
    link_size = 1 << (32 - LINK_PREFIX)
    if (index + 1) * link_size > 1 << (32 - pool_length):
        raise TopologyError(f"the links range {links.prefix} is too small for the aggregates")
    return format_prefix(pool + index * link_size, LINK_PREFIX)


@dataclass(frozen=True)
class Size:
    cores: int
    memory_mb: int
    disk_gb: int


def hosting_users(inventory: Inventory, service_id: str) -> int:
    """Users of a hosted service: the users, in the service's areas, of every subscriber."""
    service = next((s for s in inventory.centre.services if s.id == service_id), None)
    if service is None:
        return 0
    areas: list[str] | None = list(service.areas) if service.areas else None
    return sum(m.users.total(areas) for m in subscribers(inventory, service_id))


def hosting_size(inventory: Inventory, function: str) -> Size:
    """GIS and finance hosts grow with their users: 1 core and 1 GiB per 500 users, 2 at least."""
    users = hosting_users(inventory, HOSTING_SERVICE.get(function, ""))
    units = max(2, -(-users // 500))
    return Size(cores=min(units, 16), memory_mb=1024 * min(units, 64), disk_gb=20 + users // 50)


def subscribers(inventory: Inventory, service_id: str) -> list[Municipality]:
    return [m for m in inventory.municipalities
            if any(s.service == service_id for s in m.services)]
