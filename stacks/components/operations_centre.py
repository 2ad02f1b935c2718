"""The operations centre: its networks, the core router and the shared servers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from fellesdrift.inventory.model import Inventory
from fellesdrift.plan import naming, topology
from fellesdrift.plan.functions import FUNCTIONS
from stacks.components.hosting import Hosting, HostingArgs
from stacks.components.hosts import HostRecords
from stacks.drivers.base import Driver, Host, HostSpec, Network, NetworkSpec, Nic


@dataclass(frozen=True)
class OperationsCentreArgs:
    #: The whole model: the centre, and every subscriber (the hosting is sized from them).
    inventory: Inventory
    driver: Driver


class OperationsCentre(pulumi.ComponentResource):
    """The centre: backbone and server networks, the core router and the shared servers (the
    GIS and finance hosting as :class:`Hosting` children). Outputs: ``core_router`` (its
    machine, which every municipality's links attach to) and ``hosts``."""

    networks: dict[str, Network]
    core_router: Host
    hostings: list[Hosting]
    hosts: list[pulumi.Output[Any]]

    def __init__(self, name: str, args: OperationsCentreArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fellesdrift:index:OperationsCentre", name, None, opts)
        driver, centre = args.driver, args.inventory.centre
        made = HostRecords(driver, self)
        nets = topology.centre_networks(centre)
        self.networks = {}
        for n in nets:
            spec = NetworkSpec(naming.centre_network(n.name), n.prefix,
                               "backbone" if n.name == "backbone" else "servers")
            self.networks[spec.name] = driver.network(spec, parent=self)
        core = HostSpec(naming.CORE_ROUTER, "core_router",
                        tuple(Nic(naming.centre_network(n.name), n.router) for n in nets),
                        groups=(naming.CENTRE_GROUP,))
        self.core_router = made.add(core, self.networks, protect=True)
        self.hostings = []
        for shared in centre.shared_hosts:
            function = topology.SHARED_FUNCTIONS.get(shared.role)
            net = topology.network_of(centre, shared.address)
            if function == "gis_hosting" or function == "finance_hosting":
                self.hostings.append(Hosting(
                    shared.hostname, HostingArgs(args.inventory, function, shared.address,
                                                 self.networks, driver),
                    pulumi.ResourceOptions(parent=self)))
            elif function is not None:
                # The apt proxy's default route is its egress; the lab comes back through the
                # core router.
                what = FUNCTIONS[function]
                back = tuple((a, net.router) for a in centre.address_plan.aggregates)
                made.add(HostSpec(shared.hostname, function,
                                  (Nic(naming.centre_network(net.name), shared.address),),
                                  gateway=None if what.egress else net.router,
                                  routes=back if what.egress else (),
                                  groups=(naming.CENTRE_GROUP,)), self.networks,
                         protect=not what.disposable)
        self.hosts = made.records + [h for hosting in self.hostings for h in hosting.hosts]
        self.register_outputs({"core_router": self.core_router.machine, "hosts": self.hosts})
