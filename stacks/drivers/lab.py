"""The `lab` driver: networks and hosts made on this machine with Podman.

They are true Pulumi resources (dynamic providers): create, read, update and delete act on
Podman through :mod:`fellesdrift.lab`, so `pulumi refresh` notices a container removed behind
Pulumi's back and the next `up` makes it again.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from fellesdrift import lab


def _diff(olds: dict[str, Any], news: dict[str, Any], keys: tuple[str, ...]) -> DiffResult:
    changed = [k for k in keys if olds.get(k) != news.get(k)]
    # Every input of a lab resource is fixed at creation: a change means a new one.
    return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)


class NetworkProvider(ResourceProvider):
    KEYS = ("env", "name", "subnet")

    def create(self, props: dict[str, Any]) -> CreateResult:
        net = lab.ensure_network(props["env"], props["name"], props["subnet"])
        return CreateResult(id_=props["name"], outs={**props, "gateway": net["gateway"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        net = lab.inspect_network(id_)
        if net is None:
            return ReadResult(id_="", outs={})
        return ReadResult(id_=id_, outs={**props, "subnet": net["subnet"],
                                         "gateway": net["gateway"]})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _diff(olds, news, self.KEYS)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        lab.remove_network(id_)


class HostProvider(ResourceProvider):
    KEYS = ("env", "name", "image", "network", "ip", "authorized_key")

    def create(self, props: dict[str, Any]) -> CreateResult:
        host = lab.create_host(props["env"], props["name"], props["image"], props["network"],
                               props["ip"], props["authorized_key"])
        return CreateResult(id_=props["name"], outs={**props, "host_key": host["host_key"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        host = lab.inspect_host(id_)
        if host is None:
            return ReadResult(id_="", outs={})
        return ReadResult(id_=id_, outs={**props, "ip": host["ip"], "image": host["image"]})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _diff(olds, news, self.KEYS)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        lab.remove_host(id_)


class LabNetwork(Resource):
    name: pulumi.Output[str]
    subnet: pulumi.Output[str]
    gateway: pulumi.Output[str]

    def __init__(self, resource_name: str, *, env: str, name: str, subnet: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(NetworkProvider(), resource_name,
                         {"env": env, "name": name, "subnet": subnet, "gateway": None}, opts)


class LabHost(Resource):
    name: pulumi.Output[str]
    ip: pulumi.Output[str]
    host_key: pulumi.Output[str]

    def __init__(self, resource_name: str, *, env: str, name: str, image: str,
                 network: pulumi.Input[str], ip: str, authorized_key: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(HostProvider(), resource_name,
                         {"env": env, "name": name, "image": image, "network": network,
                          "ip": ip, "authorized_key": authorized_key, "host_key": None}, opts)


class LabDriver:
    """Makes the machines and networks of components on this machine."""

    ssh_user = "ops"
    ssh_port = 22

    def __init__(self, env: str, image: str, authorized_key: str) -> None:
        self.env = env
        self.image = image
        self.authorized_key = authorized_key

    def network(self, name: str, subnet: str, parent: pulumi.Resource) -> LabNetwork:
        return LabNetwork(name, env=self.env, name=f"{self.env}-{name}", subnet=subnet,
                          opts=pulumi.ResourceOptions(parent=parent))

    def host(self, name: str, network: LabNetwork, ip: str, parent: pulumi.Resource) -> LabHost:
        return LabHost(name, env=self.env, name=f"{self.env}-{name}", image=self.image,
                       network=network.name, ip=ip, authorized_key=self.authorized_key,
                       opts=pulumi.ResourceOptions(parent=parent))
