"""The `lab` driver: networks and machines made on this machine with Podman.

They are true Pulumi resources (dynamic providers): create, read, update and delete act on
Podman through :mod:`fellesdrift.lab`, so `pulumi refresh` notices a container removed or
changed behind Pulumi's back and the next `up` makes it right. Every input of a lab network or
host is fixed at creation: a change replaces it, and nothing else does.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import (
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from fellesdrift.lab import hosts as lab_hosts
from fellesdrift.lab import networks as lab_networks
from fellesdrift.lab import shaping as lab_shaping
from fellesdrift.plan import hardening

from .base import HostSpec, NetworkSpec


def _replace_on(olds: dict[str, Any], news: dict[str, Any], keys: tuple[str, ...]) -> DiffResult:
    changed = [k for k in keys if olds.get(k) != news.get(k)]
    return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)


class NetworkProvider(ResourceProvider):
    KEYS = ("env", "network_name", "subnet", "bridge")

    def create(self, props: dict[str, Any]) -> CreateResult:
        net = lab_networks.ensure_network(props["env"], props["network_name"], props["subnet"],
                                 gateway=props["bridge"] or None)
        return CreateResult(id_=props["network_name"], outs={**props, "gateway": net["gateway"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        net = lab_networks.inspect_network(id_)
        if net is None:
            return ReadResult(id_="", outs={})
        return ReadResult(id_=id_, outs={**props, "subnet": net["subnet"]})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _replace_on(olds, news, self.KEYS)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        lab_networks.remove_network(id_)


class HostProvider(ResourceProvider):
    KEYS = ("env", "machine", "image", "networks", "router", "egress", "gateway", "routes",
            "sysctls", "authorized_key")

    def create(self, props: dict[str, Any]) -> CreateResult:
        (network, ip), *extra = [tuple(n) for n in props["networks"]]
        host = lab_hosts.create_host(
            props["env"], props["machine"], props["image"], network, ip, props["authorized_key"],
            extra_networks=extra, router=props["router"], egress=props["egress"],
            gateway=props["gateway"] or None,
            routes=[tuple(r) for r in props.get("routes", [])], sysctls=props["sysctls"])
        return CreateResult(id_=props["machine"], outs={
            **props, "address": ip, "host_key": host["host_key"],
            "interfaces": host["interfaces"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        host = lab_hosts.inspect_host(id_)
        if host is None:
            return ReadResult(id_="", outs={})
        live = [list(p) for p in lab_networks.parse_pairs(host["networks"])]
        declared = [n for n in live if n[0] in {d[0] for d in props.get("networks", [])}]
        outs = {**props, "image": host["image"], "networks": declared,
                "gateway": host.get("gateway", "") if not props.get("router") else "",
                "routes": [list(r) for r in lab_networks.parse_pairs(host.get("routes", ""))]
                if not props.get("router") else []}
        return ReadResult(id_=id_, outs=outs)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _replace_on(olds, news, self.KEYS)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        lab_hosts.remove_host(id_)


class AttachmentProvider(ResourceProvider):
    """One more network on an existing host (the core router on a site's link)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        iface = lab_networks.connect_host(props["machine"], props["network"], props["address"])
        return CreateResult(id_=f"{props['machine']}@{props['network']}",
                            outs={**props, "interface": iface})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        address = lab_networks.attachment(props["machine"], props["network"])
        if address is None:
            return ReadResult(id_="", outs={})
        return ReadResult(id_=id_, outs={**props, "address": address})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _replace_on(olds, news, ("machine", "network", "address"))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        lab_networks.disconnect_host(props["machine"], props["network"])


class ShapingProvider(ResourceProvider):
    """A link's bandwidth: tbf both ways on one host interface (fellesdrift.lab.shape_link)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        lab_shaping.shape_link(props["machine"], props["interface"], props["down_mbps"],
                       props["up_mbps"])
        return CreateResult(id_=f"{props['machine']}:{props['interface']}", outs=props)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        got = lab_shaping.link_shaping(props["machine"], props["interface"])
        if got is None:
            return ReadResult(id_="", outs={})
        return ReadResult(id_=id_, outs={**props, "down_mbps": round(got["down_mbit"]),
                                         "up_mbps": round(got["up_mbit"])})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("down_mbps", "up_mbps") if olds.get(k) != news.get(k)]
        moved = [k for k in ("machine", "interface") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed or moved), replaces=moved)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        lab_shaping.shape_link(news["machine"], news["interface"], news["down_mbps"],
                               news["up_mbps"])
        return UpdateResult(outs=news)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if lab_hosts.inspect_host(props["machine"]) is not None:
            lab_shaping.unshape_link(props["machine"], props["interface"])


class LabNetwork(Resource):
    network_name: pulumi.Output[str]
    subnet: pulumi.Output[str]

    def __init__(self, resource_name: str, props: dict[str, Any],
                 opts: pulumi.ResourceOptions) -> None:
        super().__init__(NetworkProvider(), resource_name, {**props, "gateway": None}, opts)


class LabHost(Resource):
    machine: pulumi.Output[str]
    address: pulumi.Output[str]
    host_key: pulumi.Output[str]
    interfaces: pulumi.Output[str]

    def __init__(self, resource_name: str, props: dict[str, Any],
                 opts: pulumi.ResourceOptions) -> None:
        super().__init__(HostProvider(), resource_name,
                         {**props, "address": None, "host_key": None, "interfaces": None}, opts)


class LabAttachment(Resource):
    interface: pulumi.Output[str]

    def __init__(self, resource_name: str, props: dict[str, Any],
                 opts: pulumi.ResourceOptions) -> None:
        super().__init__(AttachmentProvider(), resource_name, {**props, "interface": None}, opts)


class LabShaping(Resource):
    def __init__(self, resource_name: str, props: dict[str, Any],
                 opts: pulumi.ResourceOptions) -> None:
        super().__init__(ShapingProvider(), resource_name, props, opts)


def kernel_baseline() -> dict[str, str]:
    """The network hardening every lab host starts with (:mod:`fellesdrift.plan.hardening`).

    In a container /proc/sys is read-only, so the sysctls the `common` role writes to
    /etc/sysctl.d cannot be applied from inside; the lab sets the same values when it makes
    the container (on a VM the role applies them itself). Role and lab read one table.
    """
    return hardening.as_sysctl()


class LabDriver:
    """Makes networks and machines as Podman networks and systemd containers on this machine."""

    ssh_user = lab_hosts.ADMIN_USER
    ssh_port = 22

    def __init__(self, env: str, image: str, authorized_key: str) -> None:
        self.env = env
        self.image = image
        self.authorized_key = authorized_key

    @classmethod
    def from_config(cls, env: str, config: pulumi.Config) -> LabDriver:
        return cls(env=env, image=config.require("image"),
                   authorized_key=config.require("authorizedKey"))

    def _name(self, name: str) -> str:
        return f"{self.env}-{name}"

    def network(self, spec: NetworkSpec, parent: pulumi.Resource) -> LabNetwork:
        # Routed networks: the router takes the first address, this machine's bridge the last
        # (so the control node reaches every host directly). Links carry no bridge at all.
        bridge = (lab_networks.NO_BRIDGE if spec.kind == "link"
                  else lab_networks.control_address(spec.subnet))
        return LabNetwork(spec.name, {"env": self.env, "network_name": self._name(spec.name),
                                      "subnet": spec.subnet, "bridge": bridge},
                          pulumi.ResourceOptions(parent=parent))

    def host(self, spec: HostSpec, networks: dict[str, Any], parent: pulumi.Resource,
             protect: bool = False) -> LabHost:
        nics = [pulumi.Output.all(networks[n.network].network_name, n.address)
                for n in spec.nics]
        return LabHost(spec.name, {
            "env": self.env, "machine": self._name(spec.name), "image": self.image,
            "networks": pulumi.Output.all(*nics), "router": spec.router,
            "egress": spec.egress, "gateway": spec.gateway or "",
            "routes": [list(r) for r in spec.routes],
            "sysctls": kernel_baseline(), "authorized_key": self.authorized_key,
        }, pulumi.ResourceOptions(parent=parent, protect=protect))

    def attach(self, name: str, machine: pulumi.Input[str], network: Any, address: str,
               parent: pulumi.Resource) -> LabAttachment:
        return LabAttachment(name, {"machine": machine, "network": network.network_name,
                                    "address": address},
                             pulumi.ResourceOptions(parent=parent))

    def shape(self, name: str, host: Any, network: Any, down_mbps: int, up_mbps: int,
              parent: pulumi.Resource) -> LabShaping:
        interface = pulumi.Output.all(host.interfaces, network.network_name).apply(
            lambda v: dict(lab_networks.parse_pairs(v[0]))[v[1]])
        return LabShaping(name, {"machine": host.machine, "interface": interface,
                                 "down_mbps": down_mbps, "up_mbps": up_mbps},
                          pulumi.ResourceOptions(parent=parent))
