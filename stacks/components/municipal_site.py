"""A municipal building: its LAN, its router on its broadband link, and its client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from fellesdrift.inventory.model import Inventory, Municipality, Site
from fellesdrift.plan import naming, topology
from stacks.components.broadband_link import BroadbandLink, BroadbandLinkArgs
from stacks.components.hosts import HostRecords
from stacks.drivers.base import Driver, HostSpec, NetworkSpec, Nic


@dataclass(frozen=True)
class MunicipalSiteArgs:
    #: The model (the centre's link range gives the site's link its /30).
    inventory: Inventory
    municipality: Municipality
    site: Site
    #: The core router's machine (the core stack's ``core_router`` output).
    core_router: pulumi.Input[str]
    driver: Driver


class MunicipalSite(pulumi.ComponentResource):
    """A municipal building: its LAN, its router on its broadband link (a
    :class:`BroadbandLink` child), and one client host standing for the site's users.
    ``name`` is :func:`naming.site`. Outputs: ``lan`` (its prefix) and ``hosts``."""

    link: BroadbandLink
    hosts: list[pulumi.Output[Any]]

    def __init__(self, name: str, args: MunicipalSiteArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fellesdrift:index:MunicipalSite", name, None, opts)
        driver, site, slug = args.driver, args.site, args.municipality.slug
        made = HostRecords(driver, self)
        groups = (naming.municipality_group(slug), naming.site_group(slug, site.id))
        lan_name = naming.site_lan(slug, site.id)
        lan = driver.network(NetworkSpec(lan_name, site.lan_prefix, "lan"), parent=self)
        self.link = BroadbandLink(
            naming.site_link(slug, site.id),
            BroadbandLinkArgs(topology.link_subnet(args.inventory.centre, site), site,
                              args.core_router, driver),
            pulumi.ResourceOptions(parent=self))
        networks = {lan_name: lan, self.link.spec.name: self.link.network}
        router_ip = topology.site_router_address(site)
        router = made.add(HostSpec(naming.site_router(slug, site.id), "site_router",
                                   (Nic(lan_name, router_ip),
                                    Nic(self.link.spec.name, self.link.site_address,
                                        down_mbps=site.link.down_mbps,
                                        up_mbps=site.link.up_mbps)), groups=groups),
                          networks)
        self.link.enforce(router)
        made.add(HostSpec(naming.site_client(slug, site.id), "site_client",
                          (Nic(lan_name, topology.site_client_address(site)),),
                          gateway=router_ip, groups=groups), networks)
        self.hosts = made.records
        self.register_outputs({"lan": site.lan_prefix, "hosts": self.hosts})
