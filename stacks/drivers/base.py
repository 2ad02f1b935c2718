"""What a driver is: the one interface components use to get networks and machines.

Components (stacks/components/, one per module) describe what they need with these specs; a
driver (lab: Podman on this machine, proxmox: a Proxmox VE cluster) decides how to make it.
Every method returns Pulumi resources whose outputs name what was made; components never look
inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import pulumi

from fellesdrift.plan.functions import FUNCTIONS, Function

NetworkKind = Literal["backbone", "servers", "lan", "link"]


@dataclass(frozen=True)
class NetworkSpec:
    """A layer-2 segment with one IPv4 prefix.

    ``kind`` says what it is for: the centre's backbone and server networks and a site LAN have
    a router at their first usable address; a ``link`` is a broadband link between a site
    router and the core router, delivered on ``vlan``.
    """

    name: str
    subnet: str
    kind: NetworkKind
    vlan: int | None = None


@dataclass(frozen=True)
class Nic:
    """One interface of a host.

    ``down_mbps``/``up_mbps`` announce the bandwidth :meth:`Driver.shape` will enforce on this
    interface (towards the host / from it). A driver that can only limit a NIC when it makes the
    machine (proxmox: the rate is part of the VM's NIC) takes it from here, and its ``shape``
    checks that it was announced; a driver that shapes afterwards (lab) may ignore it. A
    component that shapes a host's interface announces the same numbers here.
    """

    network: str  # NetworkSpec.name
    address: str
    down_mbps: int | None = None
    up_mbps: int | None = None


@dataclass(frozen=True)
class HostSpec:
    """A machine. Its first NIC is its management address (where SSH reaches it)."""

    name: str
    function: Function
    nics: tuple[Nic, ...]
    gateway: str | None = None  # default route via this address (not for routers)
    #: Static (prefix, via) routes the machine has from birth (not for routers, whose routes
    #: the network phase configures): the apt proxy's way back to the lab's aggregates.
    routes: tuple[tuple[str, str], ...] = ()
    cores: int = 1
    memory_mb: int = 512
    disk_gb: int = 8
    groups: tuple[str, ...] = field(default_factory=tuple)

    @property
    def router(self) -> bool:
        return FUNCTIONS[self.function].router

    @property
    def egress(self) -> bool:
        """Only the centre's apt proxy reaches the package mirrors; everything else uses it."""
        return FUNCTIONS[self.function].egress


class Network(Protocol):
    @property
    def network_name(self) -> pulumi.Output[str]: ...


class Host(Protocol):
    @property
    def machine(self) -> pulumi.Output[str]: ...

    @property
    def address(self) -> pulumi.Output[str]: ...

    @property
    def host_key(self) -> pulumi.Output[str]: ...


class Driver(Protocol):
    ssh_user: str
    ssh_port: int

    def network(self, spec: NetworkSpec, parent: pulumi.Resource) -> Network: ...

    def host(self, spec: HostSpec, networks: dict[str, Network],
             parent: pulumi.Resource, protect: bool = False) -> Host: ...

    def attach(self, name: str, machine: pulumi.Input[str], network: Network, address: str,
               parent: pulumi.Resource) -> pulumi.Resource:
        """Connect an existing machine (e.g. the core router, made by another stack) to a
        network of this stack."""
        ...

    def shape(self, name: str, host: Host, network: Network, down_mbps: int, up_mbps: int,
              parent: pulumi.Resource) -> pulumi.Resource:
        """Enforce a link's bandwidth on ``host``'s interface on ``network``: ``down_mbps``
        towards the host, ``up_mbps`` from it."""
        ...
