"""Components named after the domain. They ask a driver for machines and networks."""

from __future__ import annotations

from typing import Any, Protocol

import pulumi

from fellesdrift.model import Municipality, Site


class Network(Protocol):
    name: pulumi.Output[str]


class Host(Protocol):
    name: pulumi.Output[str]
    ip: pulumi.Output[str]
    host_key: pulumi.Output[str]


class Driver(Protocol):
    ssh_user: str
    ssh_port: int

    def network(self, name: str, subnet: str, parent: pulumi.Resource) -> Any: ...

    def host(self, name: str, network: Any, ip: str, parent: pulumi.Resource) -> Any: ...


def host_record(name: str, groups: list[str], host: Host, driver: Driver) -> pulumi.Output[Any]:
    """What downstream phases know of a host: the stack output is the only way in."""
    return pulumi.Output.all(host.name, host.ip, host.host_key).apply(
        lambda v: {"name": name, "machine": v[0], "groups": groups, "address": v[1],
                   "ssh_user": driver.ssh_user, "ssh_port": driver.ssh_port, "host_key": v[2]})


class MunicipalSite(pulumi.ComponentResource):
    """A municipal building: its LAN and one client host standing for the site's users."""

    hosts: list[pulumi.Output[Any]]

    def __init__(self, municipality: Municipality, site: Site, driver: Driver,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        name = f"{municipality.slug}-{site.id}"
        super().__init__("fellesdrift:index:MunicipalSite", name, None, opts)
        lan = driver.network(name, site.lan_prefix, parent=self)
        client_ip = str(site.lan.network_address + 10)
        client = driver.host(f"{name}-client", lan, client_ip, parent=self)
        groups = ["site_client", f"municipality_{municipality.slug}", f"site_{name}"]
        self.hosts = [host_record(f"{name}-client", groups, client, driver)]
        self.register_outputs({"hosts": self.hosts})
