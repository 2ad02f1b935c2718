"""A site's broadband link to the core router."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from fellesdrift.inventory.model import Site
from fellesdrift.plan import topology
from stacks.drivers.base import Driver, Host, Network, NetworkSpec


@dataclass(frozen=True)
class BroadbandLinkArgs:
    #: The link's /30 in the centre's link range (topology.link_subnet).
    subnet: str
    site: Site
    #: The core router's machine (the core stack's ``core_router`` output).
    core_router: pulumi.Input[str]
    driver: Driver


class BroadbandLink(pulumi.ComponentResource):
    """A site's broadband link: a /30 between the site router and the core router, delivered on
    the provider's VLAN. The core router's end is attached here; the site router, made by the
    site on this link's network, enforces the inventory's bandwidth on its end
    (:meth:`enforce`, once it exists). Outputs: ``subnet``, ``vlan``, ``network_name``,
    ``core_address``, ``site_address``."""

    spec: NetworkSpec
    network: Network
    core_address: str
    site_address: str

    def __init__(self, name: str, args: BroadbandLinkArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fellesdrift:index:BroadbandLink", name, None, opts)
        self.args = args
        self.core_address, self.site_address = topology.link_addresses(args.subnet)
        self.spec = NetworkSpec(name, args.subnet, "link", vlan=args.site.link.vlan)
        self.network = args.driver.network(self.spec, parent=self)
        args.driver.attach(f"{name}-core", args.core_router, self.network, self.core_address,
                           parent=self)
        self.register_outputs({"subnet": args.subnet, "vlan": args.site.link.vlan,
                               "network_name": self.network.network_name,
                               "core_address": self.core_address,
                               "site_address": self.site_address})

    def enforce(self, router: Host) -> pulumi.Resource:
        """The link's bandwidth on the site router's end (a child of this link)."""
        link = self.args.site.link
        return self.args.driver.shape(f"{self.spec.name}-shaping", router, self.network,
                                      link.down_mbps, link.up_mbps, parent=self)
