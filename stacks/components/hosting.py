"""A hosting machine of the centre (GIS or finance)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pulumi

from fellesdrift.inventory.model import Inventory
from fellesdrift.plan import naming, topology
from stacks.components.hosts import HostRecords
from stacks.drivers.base import Driver, HostSpec, Network, Nic

HostingFunction = Literal["gis_hosting", "finance_hosting"]
#: The component's type name, by the host function it hosts.
KINDS: dict[HostingFunction, str] = {"gis_hosting": "GisHosting",
                                     "finance_hosting": "FinanceHosting"}


@dataclass(frozen=True)
class HostingArgs:
    #: The model: the machine is sized from every subscriber of its service in the catalogue.
    inventory: Inventory
    function: HostingFunction
    address: str
    #: The centre's networks (the machine's NIC is on the one that holds ``address``).
    networks: dict[str, Network]
    driver: Driver


class Hosting(pulumi.ComponentResource):
    """A hosting machine of the centre, sized from its users in the catalogue; its type is
    ``fellesdrift:index:GisHosting`` or ``…:FinanceHosting`` (:data:`KINDS`). ``name`` is the
    machine's host name."""

    hosts: list[pulumi.Output[Any]]

    def __init__(self, name: str, args: HostingArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"fellesdrift:index:{KINDS[args.function]}", name, None, opts)
        made = HostRecords(args.driver, self)
        size = topology.hosting_size(args.inventory, args.function)
        net = topology.network_of(args.inventory.centre, args.address)
        made.add(HostSpec(name, args.function,
                          (Nic(naming.centre_network(net.name), args.address),),
                          gateway=net.router, cores=size.cores, memory_mb=size.memory_mb,
                          disk_gb=size.disk_gb, groups=(naming.CENTRE_GROUP,)), args.networks,
                 protect=True)
        self.hosts = made.records
        self.register_outputs({"hosts": self.hosts})
