"""Components named after the domain. They say what is needed; a driver decides how."""

from __future__ import annotations

from typing import Any

import pulumi

from fellesdrift.inventory.model import Inventory, Municipality, Site
from fellesdrift.plan import naming, topology
from fellesdrift.plan.functions import FUNCTIONS, Function

from .drivers.base import Driver, Host, HostSpec, Network, NetworkSpec, Nic


def host_record(spec: HostSpec, host: Host, driver: Driver) -> pulumi.Output[Any]:
    """What later phases know of a host: the stack output is the only way in."""
    return pulumi.Output.all(host.machine, host.address, host.host_key).apply(
        lambda v: {"name": spec.name, "machine": v[0], "function": spec.function,
                   "groups": [spec.function, *spec.groups], "address": v[1],
                   "ssh_user": driver.ssh_user, "ssh_port": driver.ssh_port, "host_key": v[2]})


class _Hosts(pulumi.ComponentResource):
    """A component that makes hosts and exposes their records as ``hosts``."""

    def __init__(self, type_: str, name: str, driver: Driver,
                 opts: pulumi.ResourceOptions | None) -> None:
        super().__init__(type_, name, None, opts)
        self.driver = driver
        self.hosts: list[pulumi.Output[Any]] = []

    def add(self, spec: HostSpec, networks: dict[str, Network], protect: bool = False) -> Host:
        host = self.driver.host(spec, networks, parent=self, protect=protect)
        self.hosts.append(host_record(spec, host, self.driver))
        return host


class Hosting(_Hosts):
    """A hosting machine of the centre (GIS or finance), sized from its users in the catalogue."""

    def __init__(self, kind: str, inventory: Inventory, hostname: str, address: str,
                 networks: dict[str, Network], driver: Driver,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"fellesdrift:index:{kind}", hostname, driver, opts)
        function: Function = "gis_hosting" if kind == "GisHosting" else "finance_hosting"
        size = topology.hosting_size(inventory, function)
        net = topology.network_of(inventory.centre, address)
        self.add(HostSpec(hostname, function, (Nic(naming.centre_network(net.name), address),),
                          gateway=net.router, cores=size.cores, memory_mb=size.memory_mb,
                          disk_gb=size.disk_gb, groups=(naming.CENTRE_GROUP,)), networks,
                 protect=True)
        self.register_outputs({"hosts": self.hosts})


class OperationsCentre(_Hosts):
    """The centre: backbone and server networks, the core router and the shared servers."""

    def __init__(self, inventory: Inventory, driver: Driver,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fellesdrift:index:OperationsCentre", "centre", driver, opts)
        centre = inventory.centre
        nets = topology.centre_networks(centre)
        self.networks: dict[str, Network] = {}
        for n in nets:
            spec = NetworkSpec(naming.centre_network(n.name), n.prefix,
                               "backbone" if n.name == "backbone" else "servers")
            self.networks[spec.name] = driver.network(spec, parent=self)
        core = HostSpec(naming.CORE_ROUTER, "core_router",
                        tuple(Nic(naming.centre_network(n.name), n.router) for n in nets),
                        groups=(naming.CENTRE_GROUP,))
        self.core_router = self.add(core, self.networks, protect=True)
        self.hostings: list[Hosting] = []
        for shared in centre.shared_hosts:
            function = topology.SHARED_FUNCTIONS.get(shared.role)
            net = topology.network_of(centre, shared.address)
            if function in ("gis_hosting", "finance_hosting"):
                kind = "GisHosting" if function == "gis_hosting" else "FinanceHosting"
                self.hostings.append(Hosting(kind, inventory, shared.hostname, shared.address,
                                             self.networks, driver,
                                             pulumi.ResourceOptions(parent=self)))
            elif function is not None:
                # The apt proxy's default route is its egress; the lab comes back through the
                # core router.
                egress = FUNCTIONS[function].egress
                back = tuple((a, net.router) for a in centre.address_plan.aggregates)
                self.add(HostSpec(shared.hostname, function,
                                  (Nic(naming.centre_network(net.name), shared.address),),
                                  gateway=None if egress else net.router,
                                  routes=back if egress else (),
                                  groups=(naming.CENTRE_GROUP,)), self.networks, protect=True)
        self.hosts += [h for hosting in self.hostings for h in hosting.hosts]
        self.register_outputs({"hosts": self.hosts})


class BroadbandLink(pulumi.ComponentResource):
    """A site's broadband link: a /30 between the site router and the core router, delivered on
    the provider's VLAN, with the inventory's bandwidth enforced on the site router's end."""

    def __init__(self, name: str, centre_prefix: str, site: Site, core_router: pulumi.Input[str],
                 driver: Driver, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fellesdrift:index:BroadbandLink", name, None, opts)
        self.driver = driver
        self.site = site
        self.subnet = centre_prefix
        self.core_address = topology.nth(centre_prefix, 1)
        self.site_address = topology.nth(centre_prefix, 2)
        self.spec = NetworkSpec(name, centre_prefix, "link", vlan=site.link.vlan)
        self.network = driver.network(self.spec, parent=self)
        driver.attach(f"{name}-core", core_router, self.network, self.core_address, parent=self)

    def enforce(self, router: Host) -> None:
        link = self.site.link
        self.driver.shape(f"{self.spec.name}-shaping", router, self.network, link.down_mbps,
                          link.up_mbps, parent=self)
        self.register_outputs({"subnet": self.subnet})


class MunicipalSite(_Hosts):
    """A municipal building: its LAN, its router on its broadband link, and one client host
    standing for the site's users."""

    def __init__(self, inventory: Inventory, municipality: Municipality, site: Site,
                 core_router: pulumi.Input[str], driver: Driver,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        slug = municipality.slug
        name = naming.site(slug, site.id)
        super().__init__("fellesdrift:index:MunicipalSite", name, driver, opts)
        groups = (naming.municipality_group(slug), naming.site_group(slug, site.id))
        lan_name = naming.site_lan(slug, site.id)
        lan = driver.network(NetworkSpec(lan_name, site.lan_prefix, "lan"), parent=self)
        link = BroadbandLink(naming.site_link(slug, site.id),
                             topology.link_subnet(inventory.centre, site), site,
                             core_router, driver, pulumi.ResourceOptions(parent=self))
        networks = {lan_name: lan, link.spec.name: link.network}
        router_ip = topology.nth(site.lan_prefix, 1)
        router = self.add(HostSpec(naming.site_router(slug, site.id), "site_router",
                                   (Nic(lan_name, router_ip),
                                    Nic(link.spec.name, link.site_address,
                                        down_mbps=site.link.down_mbps,
                                        up_mbps=site.link.up_mbps)), groups=groups),
                          networks)
        link.enforce(router)
        self.add(HostSpec(naming.site_client(slug, site.id), "site_client",
                          (Nic(lan_name, topology.nth(site.lan_prefix, 10)),),
                          gateway=router_ip, groups=groups), networks)
        self.register_outputs({"hosts": self.hosts})
