"""The `proxmox` driver: networks and VMs on a Proxmox VE node, with the pulumi-proxmoxve provider.

What each request becomes (provider type tokens in brackets; see docs/proxmox.md):

- a ``link`` network: a VLAN on the node's VLAN-aware trunk bridge. Nothing is made on the node:
  the VLAN is the tag on the VM NICs that join it (the site router's), and the core router's
  trunk NIC carries every VLAN of the bridge. The network is a component that records bridge
  and tag, so a stack's tree still shows every link.
- a ``backbone``, ``servers`` or ``lan`` network: a VLAN-aware Linux bridge without ports on the
  node [proxmoxve:network/linux/bridge:Bridge], an isolated segment like the lab's internal
  networks. With ``control_node=True`` the node takes the last usable address of each, as the
  lab's host does, so the node can be the control node.
- a host: a full clone of a cloud-init Debian template [proxmoxve:index/vmLegacy:VmLegacy] with
  the spec's cores, memory and disk, one NIC per ``spec.nics`` (and for the core router one more,
  untagged, on the trunk), static addresses by cloud-init, and cloud-init user data uploaded as
  a snippet [proxmoxve:index/fileLegacy:FileLegacy] that makes the ssh user with the admin key
  and installs an ED25519 host key generated here [tls:index/privateKey:PrivateKey]. The
  host's ``host_key`` is that key's public half, known before the VM boots, so strict host-key
  checking stays on.
- ``attach`` and ``shape`` make no provider resource; see their docstrings.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_proxmoxve as proxmoxve
import pulumi_tls as tls
import yaml

from .base import Driver, Host, HostSpec, Network, NetworkSpec

#: Proxmox VE reads a NIC's ``rate`` as MiB/s: it shapes at int(rate * 1024 * 1024) bytes/s.
MIB = 1024 * 1024
#: Bridge names: letters, digits and underscores, starting with a letter, at most 10 long.
BRIDGE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,9}$")
_KEY_LINE = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|"
                       r"sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( .*)?$")
_DNS_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class ProxmoxError(ValueError):
    """A request the proxmox driver cannot carry out; the message says what would be right."""


def bridge_name(env: str, network: str) -> str:
    """The node's bridge for ``network``: ``fd`` and 8 characters of a hash of env and name.

    Bridge names are at most 10 characters, so a network's own name does not fit; the hash is
    stable (the same network keeps its bridge) and the bridge's comment names the network.
    """
    digest = hashlib.sha256(f"{env}/{network}".encode()).digest()
    return "fd" + base64.b32encode(digest).decode("ascii").lower()[:8]


def rate_limit(mbps: int) -> float:
    """Proxmox's NIC ``rate`` (MiB/s, three decimals) for ``mbps`` Mbit/s, never above it."""
    return math.floor(mbps * 1_000_000 / 8 / MIB * 1000) / 1000


class _CloudConfigDumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data,
                                   style="|" if "\n" in data else None)


_CloudConfigDumper.add_representer(str, _represent_str)


def cloud_config(hostname: str, ssh_user: str, authorized_key: str, host_private_key: str,
                 host_public_key: str) -> str:
    """The cloud-init user data of a VM: its name, the ssh user with the admin key, and the
    given ED25519 host key as the only host key (no other key types are generated)."""
    data: dict[str, Any] = {
        "hostname": hostname,
        "manage_etc_hosts": True,
        "users": [{
            "name": ssh_user,
            "groups": ["sudo"],
            "shell": "/bin/bash",
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "lock_passwd": True,
            "ssh_authorized_keys": [authorized_key],
        }],
        "disable_root": True,
        "ssh_pwauth": False,
        "ssh_deletekeys": True,
        "ssh_genkeytypes": [],
        "ssh_keys": {
            "ed25519_private": host_private_key.strip() + "\n",
            "ed25519_public": _key_line(host_public_key),
        },
    }
    return "#cloud-config\n" + yaml.dump(data, Dumper=_CloudConfigDumper, sort_keys=False,
                                         default_flow_style=False)


def _key_line(public_key: str) -> str:
    """``type base64`` of an OpenSSH public key (no comment, no newline), as known_hosts wants."""
    return " ".join(public_key.split()[:2])


class ProxmoxNetwork(pulumi.ComponentResource):
    """A network as the proxmox driver made it: ``bridge`` is what a VM NIC joins, ``vlan`` the
    tag it carries there (links only)."""

    spec: NetworkSpec
    subnet: ipaddress.IPv4Network
    vlan: int | None
    bridge: pulumi.Output[str]
    network_name: pulumi.Output[str]
    linux_bridge: proxmoxve.network.linux.Bridge | None

    def __init__(self, driver: ProxmoxDriver, spec: NetworkSpec, subnet: ipaddress.IPv4Network,
                 parent: pulumi.Resource) -> None:
        super().__init__("fellesdrift:proxmox:Network", spec.name, None,
                         pulumi.ResourceOptions(parent=parent))
        self.spec = spec
        self.subnet = subnet
        self.vlan = spec.vlan if spec.kind == "link" else None
        self.linux_bridge = None
        if spec.kind == "link":
            self.bridge = pulumi.Output.from_input(driver.trunk_bridge)
            self.network_name = pulumi.Output.from_input(f"{driver.trunk_bridge}.{spec.vlan}")
        else:
            address = None
            if driver.control_node:
                address = f"{subnet.broadcast_address - 1}/{subnet.prefixlen}"
            self.linux_bridge = proxmoxve.network.linux.Bridge(
                spec.name, node_name=driver.node, name=bridge_name(driver.env, spec.name),
                vlan_aware=True, autostart=True, address=address,
                comment=f"fellesdrift {driver.env} {spec.kind} {spec.name} {spec.subnet}",
                opts=driver.options(self))
            self.bridge = self.linux_bridge.name
            self.network_name = self.linux_bridge.name
        self.register_outputs({"network_name": self.network_name, "bridge": self.bridge,
                               "vlan": self.vlan, "subnet": spec.subnet})


class ProxmoxHost(pulumi.ComponentResource):
    """A VM and what was made for it: its host key and its cloud-init user data."""

    spec: HostSpec
    machine: pulumi.Output[str]
    address: pulumi.Output[str]
    host_key: pulumi.Output[str]
    vm: proxmoxve.VmLegacy
    key: tls.PrivateKey
    user_data: proxmoxve.FileLegacy
    #: The VM NIC index (net<N>) of each network the spec names.
    nic_index: dict[str, int]

    def __init__(self, driver: ProxmoxDriver, spec: HostSpec,
                 networks: Mapping[str, ProxmoxNetwork], parent: pulumi.Resource,
                 protect: bool) -> None:
        super().__init__("fellesdrift:proxmox:Host", spec.name, None,
                         pulumi.ResourceOptions(parent=parent, protect=protect))
        self.spec = spec
        self.nic_index = {nic.network: i for i, nic in enumerate(spec.nics)}
        vm_name = driver.vm_name(spec.name)
        self.key = tls.PrivateKey(f"{spec.name}-host-key", algorithm="ED25519",
                                  opts=pulumi.ResourceOptions(parent=self, protect=protect))
        user_data = pulumi.Output.all(self.key.private_key_openssh,
                                      self.key.public_key_openssh).apply(
            lambda k: cloud_config(spec.name, driver.ssh_user, driver.authorized_key, k[0], k[1]))
        self.user_data = proxmoxve.FileLegacy(
            f"{spec.name}-user-data", node_name=driver.node,
            datastore_id=driver.snippets_datastore, content_type="snippets",
            source_raw=proxmoxve.FileLegacySourceRawArgs(
                data=pulumi.Output.secret(user_data),
                file_name=f"fellesdrift-{vm_name}.user-data.yaml"),
            opts=driver.options(self, protect))

        devices: list[proxmoxve.VmLegacyNetworkDeviceArgs] = []
        ip_configs: list[proxmoxve.VmLegacyInitializationIpConfigArgs] = []
        for i, nic in enumerate(spec.nics):
            net = networks[nic.network]
            rate = None
            if nic.down_mbps is not None and nic.up_mbps is not None:
                rate = rate_limit(min(nic.down_mbps, nic.up_mbps))
            devices.append(proxmoxve.VmLegacyNetworkDeviceArgs(
                bridge=net.bridge, vlan_id=net.vlan, model="virtio", firewall=False,
                rate_limit=rate))
            ip_configs.append(proxmoxve.VmLegacyInitializationIpConfigArgs(
                ipv4=proxmoxve.VmLegacyInitializationIpConfigIpv4Args(
                    address=f"{nic.address}/{net.subnet.prefixlen}",
                    gateway=spec.gateway if i == 0 else None)))
        if spec.function == "core_router":
            # The trunk: untagged on a VLAN-aware bridge, so it carries every link VLAN. It has
            # no cloud-init address; the VLAN interfaces on it are configured in the guest.
            devices.append(proxmoxve.VmLegacyNetworkDeviceArgs(
                bridge=driver.trunk_bridge, model="virtio", firewall=False))
        dns = None
        if driver.dns_servers:
            dns = proxmoxve.VmLegacyInitializationDnsArgs(servers=list(driver.dns_servers))

        self.vm = proxmoxve.VmLegacy(
            spec.name, name=vm_name, node_name=driver.node,
            description=f"fellesdrift {driver.env}: {spec.function} {spec.name}",
            tags=sorted({"fellesdrift", driver.tag(driver.env), driver.tag(spec.function)}),
            clone=proxmoxve.VmLegacyCloneArgs(vm_id=driver.template_vm_id, full=True,
                                              node_name=driver.template_node,
                                              datastore_id=driver.datastore),
            cpu=proxmoxve.VmLegacyCpuArgs(cores=spec.cores, type=driver.cpu_type),
            memory=proxmoxve.VmLegacyMemoryArgs(dedicated=spec.memory_mb),
            disks=[proxmoxve.VmLegacyDiskArgs(interface=driver.disk_interface,
                                              datastore_id=driver.datastore,
                                              size=spec.disk_gb)],
            network_devices=devices,
            initialization=proxmoxve.VmLegacyInitializationArgs(
                datastore_id=driver.datastore, ip_configs=ip_configs, dns=dns,
                user_data_file_id=self.user_data.id),
            operating_system=proxmoxve.VmLegacyOperatingSystemArgs(type="l26"),
            agent=proxmoxve.VmLegacyAgentArgs(enabled=driver.guest_agent),
            on_boot=True, started=True, stop_on_destroy=True,
            opts=driver.options(self, protect))

        self.machine = self.vm.name
        self.address = pulumi.Output.from_input(spec.nics[0].address)
        self.host_key = self.key.public_key_openssh.apply(_key_line)
        self.register_outputs({"machine": self.machine, "address": self.address,
                               "host_key": self.host_key, "vm_id": self.vm.vm_id})


class TrunkAttachment(pulumi.ComponentResource):
    """The core router on a site's link: a record, no provider resource (see
    :meth:`ProxmoxDriver.attach`)."""

    machine: pulumi.Output[str]
    network_name: pulumi.Output[str]
    vlan: int
    address: str
    prefix_length: int

    def __init__(self, name: str, machine: pulumi.Input[str], network: ProxmoxNetwork,
                 address: str, parent: pulumi.Resource) -> None:
        super().__init__("fellesdrift:proxmox:TrunkAttachment", name, None,
                         pulumi.ResourceOptions(parent=parent))
        assert network.vlan is not None
        self.machine = pulumi.Output.from_input(machine)
        self.network_name = network.network_name
        self.vlan = network.vlan
        self.address = address
        self.prefix_length = network.subnet.prefixlen
        self.register_outputs({"machine": self.machine, "network_name": self.network_name,
                               "bridge": network.bridge, "vlan": self.vlan,
                               "address": address, "prefix_length": self.prefix_length})


class NicShaping(pulumi.ComponentResource):
    """A link's bandwidth as the VM NIC's rate limit: a record of what :meth:`ProxmoxHost`
    set on the NIC (see :meth:`ProxmoxDriver.shape`)."""

    machine: pulumi.Output[str]
    nic: str
    down_mbps: int
    up_mbps: int
    enforced_mbps: int
    rate_limit: float

    def __init__(self, name: str, host: ProxmoxHost, index: int, down_mbps: int, up_mbps: int,
                 parent: pulumi.Resource) -> None:
        super().__init__("fellesdrift:proxmox:NicShaping", name, None,
                         pulumi.ResourceOptions(parent=parent, depends_on=[host.vm]))
        self.machine = host.machine
        self.nic = f"net{index}"
        self.down_mbps = down_mbps
        self.up_mbps = up_mbps
        self.enforced_mbps = min(down_mbps, up_mbps)
        self.rate_limit = rate_limit(self.enforced_mbps)
        self.register_outputs({"machine": self.machine, "nic": self.nic,
                               "down_mbps": down_mbps, "up_mbps": up_mbps,
                               "enforced_down_mbps": self.enforced_mbps,
                               "enforced_up_mbps": self.enforced_mbps,
                               "rate_limit_mib_s": self.rate_limit})


class ProxmoxDriver:
    """Makes the machines and networks of components on one Proxmox VE node.

    The provider's connection (endpoint, API token, and SSH to the node, which uploading a
    snippet needs) comes from the ``proxmoxve:*`` stack configuration, or from ``provider``.
    """

    ssh_port = 22

    @classmethod
    def from_config(cls, env: str, config: pulumi.Config) -> ProxmoxDriver:
        """Its settings in the stack's configuration (docs/proxmox.md, "Selecting the
        driver")."""
        return cls(env=env, node=config.require("proxmoxNode"),
                   template_vm_id=config.require_int("proxmoxTemplate"),
                   datastore=config.require("proxmoxDatastore"),
                   trunk_bridge=config.get("proxmoxTrunkBridge") or "vmbr0",
                   authorized_key=config.require("authorizedKey"))

    def __init__(self, *, env: str, node: str, template_vm_id: int, datastore: str,
                 trunk_bridge: str, authorized_key: str, ssh_user: str = "ops",
                 snippets_datastore: str = "local", template_node: str | None = None,
                 disk_interface: str = "scsi0", cpu_type: str = "x86-64-v2-AES",
                 dns_servers: Sequence[str] = (), guest_agent: bool = False,
                 control_node: bool = False,
                 provider: pulumi.ProviderResource | None = None) -> None:
        """
        :param env: the environment; VM, bridge and snippet names start from it, so several
            environments can share a cluster.
        :param node: the node that runs every VM and bridge of this driver.
        :param template_vm_id: the VM id of a cloud-init-ready Debian template to clone.
        :param datastore: where VM disks and cloud-init drives go (e.g. ``local-lvm``).
        :param trunk_bridge: the VLAN-aware bridge the providers' trunks arrive on (``vmbr0``).
        :param authorized_key: the admin's SSH public key, for ``ssh_user``.
        :param snippets_datastore: a datastore with the ``snippets`` content type (user data).
        :param template_node: the template's node when it is not ``node``.
        :param disk_interface: the template's boot disk, resized to the spec's ``disk_gb``.
        :param guest_agent: enable the QEMU guest agent (the template must have it installed,
            or the provider waits for it until it times out).
        :param control_node: give the node the last usable address of every routed network,
            as the lab's host has, so it can be the control node (staging only: the hypervisor
            then answers on every site LAN).
        """
        if not _DNS_NAME.match(env.lower()):
            raise ProxmoxError(f"env {env!r}: use lower-case letters, digits and hyphens")
        if not BRIDGE_NAME.match(trunk_bridge):
            raise ProxmoxError(f"trunk_bridge {trunk_bridge!r} is not a Linux bridge name "
                               "(letters, digits, _; at most 10), e.g. vmbr0")
        if not 100 <= template_vm_id <= 999_999_999:
            raise ProxmoxError(f"template_vm_id {template_vm_id}: Proxmox VM ids are "
                               "100 to 999999999")
        if not _KEY_LINE.match(authorized_key.strip()):
            raise ProxmoxError("authorized_key is not an OpenSSH public key line "
                               "(e.g. ssh-ed25519 AAAA… admin@example)")
        if not _DNS_NAME.match(ssh_user):
            raise ProxmoxError(f"ssh_user {ssh_user!r} is not a user name")
        self.env = env
        self.node = node
        self.template_vm_id = template_vm_id
        self.template_node = template_node
        self.datastore = datastore
        self.snippets_datastore = snippets_datastore
        self.trunk_bridge = trunk_bridge
        self.authorized_key = authorized_key.strip()
        self.ssh_user = ssh_user
        self.disk_interface = disk_interface
        self.cpu_type = cpu_type
        self.dns_servers = tuple(dns_servers)
        self.guest_agent = guest_agent
        self.control_node = control_node
        self.provider = provider
        self._vlans: dict[int, str] = {}

    # --- naming -----------------------------------------------------------------------------

    def vm_name(self, name: str) -> str:
        vm = f"{self.env}-{name}".lower()
        if not _DNS_NAME.match(vm):
            raise ProxmoxError(f"host {name}: the VM name {vm!r} is not a DNS name of at most "
                               "63 characters")
        return vm

    @staticmethod
    def tag(text: str) -> str:
        return re.sub(r"[^a-z0-9_+.-]", "-", text.lower())

    def options(self, parent: pulumi.Resource, protect: bool = False) -> pulumi.ResourceOptions:
        """Options of a provider resource: its parent, protection and the Proxmox provider."""
        return pulumi.ResourceOptions(parent=parent, protect=protect, provider=self.provider)

    # --- the driver interface ---------------------------------------------------------------

    def network(self, spec: NetworkSpec, parent: pulumi.Resource) -> ProxmoxNetwork:
        """A link: the VLAN ``spec.vlan`` on the trunk bridge. Anything else: a VLAN-aware
        Linux bridge without ports on the node."""
        try:
            subnet = ipaddress.IPv4Network(spec.subnet)
        except ValueError as e:
            raise ProxmoxError(f"network {spec.name}: subnet {spec.subnet!r}: {e}") from None
        if spec.kind == "link":
            if spec.vlan is None or not 2 <= spec.vlan <= 4094:
                raise ProxmoxError(f"network {spec.name}: a link needs a VLAN from 2 to 4094 "
                                   f"on the trunk, not {spec.vlan}")
            other = self._vlans.get(spec.vlan)
            if other is not None and other != spec.name:
                raise ProxmoxError(f"network {spec.name}: VLAN {spec.vlan} is already link "
                                   f"{other}; all links share the trunk {self.trunk_bridge}")
            self._vlans[spec.vlan] = spec.name
        elif spec.vlan is not None:
            raise ProxmoxError(f"network {spec.name}: only links are VLANs on proxmox; a "
                               f"{spec.kind} network is a bridge of its own (drop vlan)")
        return ProxmoxNetwork(self, spec, subnet, parent)

    def host(self, spec: HostSpec, networks: Mapping[str, Network], parent: pulumi.Resource,
             protect: bool = False) -> ProxmoxHost:
        """A VM cloned from the template (see the module docstring). NIC ``i`` of the spec is
        the VM's ``net<i>``; the core router gets the trunk as one more NIC after them.
        A NIC that announces ``down_mbps``/``up_mbps`` gets the rate limit :meth:`shape`
        describes. ``protect`` protects the VM, its host key and its user data."""
        if not spec.nics:
            raise ProxmoxError(f"host {spec.name}: a host needs at least one NIC")
        if spec.cores < 1 or spec.memory_mb < 64 or spec.disk_gb < 1:
            raise ProxmoxError(f"host {spec.name}: {spec.cores} cores, {spec.memory_mb} MiB, "
                               f"{spec.disk_gb} GB is not a VM size")
        self.vm_name(spec.name)
        made: dict[str, ProxmoxNetwork] = {}
        for nic in spec.nics:
            net = networks.get(nic.network)
            if net is None:
                raise ProxmoxError(f"host {spec.name}: NIC on network {nic.network}, which is "
                                   f"not among the networks given ({', '.join(networks)})")
            if not isinstance(net, ProxmoxNetwork):
                raise TypeError(f"host {spec.name}: network {nic.network} was not made by the "
                                "proxmox driver")
            if nic.network in made:
                raise ProxmoxError(f"host {spec.name}: two NICs on network {nic.network}")
            _check_address(f"host {spec.name}: NIC on {nic.network}", nic.address, net.subnet)
            if (nic.down_mbps is None) != (nic.up_mbps is None) or any(
                    v is not None and v < 1 for v in (nic.down_mbps, nic.up_mbps)):
                raise ProxmoxError(f"host {spec.name}: NIC on {nic.network}: give both "
                                   "down_mbps and up_mbps (at least 1), or neither")
            made[nic.network] = net
        if spec.gateway is not None:
            first = made[spec.nics[0].network]
            _check_address(f"host {spec.name}: gateway", spec.gateway, first.subnet)
            if spec.gateway == spec.nics[0].address:
                raise ProxmoxError(f"host {spec.name}: the gateway is the host's own address")
        return ProxmoxHost(self, spec, made, parent, protect)

    def attach(self, name: str, machine: pulumi.Input[str], network: Network, address: str,
               parent: pulumi.Resource) -> TrunkAttachment:
        """Put the core router (made by the core stack) on a link: a record, no resource.

        The core router's last NIC is untagged on the VLAN-aware trunk bridge, so it already
        carries every link's VLAN; the provider cannot change a VM of another stack anyway.
        What remains is in the guest: a VLAN interface (``vlan`` on the trunk NIC) with
        ``address``/``prefix_length``, which the converge phase configures from this record's
        outputs. Only links can be attached: another network would need a NIC of its own.
        """
        if not isinstance(network, ProxmoxNetwork):
            raise TypeError(f"attach {name}: the network was not made by the proxmox driver")
        if network.vlan is None:
            raise ProxmoxError(f"attach {name}: {network.spec.name} is a {network.spec.kind} "
                               "network; on proxmox only links reach the core router (over "
                               "its trunk)")
        _check_address(f"attach {name}", address, network.subnet)
        return TrunkAttachment(name, machine, network, address, parent)

    def shape(self, name: str, host: Host, network: Network, down_mbps: int, up_mbps: int,
              parent: pulumi.Resource) -> NicShaping:
        """The link's bandwidth as the rate limit of ``host``'s NIC on ``network``.

        Proxmox limits a NIC with one ``rate`` (MiB/s) in both directions, and only as part of
        the VM's NIC, which exists from the moment :meth:`host` made the VM. So the host's
        NIC must announce the bandwidth (``Nic(..., down_mbps=, up_mbps=)``), and the VM gets
        it when it is made; this call checks that it was announced and records it. Both
        directions are limited to the smaller of the two numbers (an asymmetric link is never
        faster than its contract, but its faster direction is slowed to the slower one); the
        record's ``enforced_*`` outputs say what is enforced.
        """
        if not isinstance(host, ProxmoxHost) or not isinstance(network, ProxmoxNetwork):
            raise TypeError(f"shape {name}: host and network must come from the proxmox driver")
        if down_mbps < 1 or up_mbps < 1:
            raise ProxmoxError(f"shape {name}: bandwidths are at least 1 Mbit/s")
        index = host.nic_index.get(network.spec.name)
        if index is None:
            raise ProxmoxError(f"shape {name}: host {host.spec.name} has no NIC on "
                               f"{network.spec.name}")
        nic = host.spec.nics[index]
        if (nic.down_mbps, nic.up_mbps) != (down_mbps, up_mbps):
            raise ProxmoxError(
                f"shape {name}: proxmox sets a NIC's rate when it makes the VM, so host "
                f"{host.spec.name} must announce it: Nic({nic.network!r}, {nic.address!r}, "
                f"down_mbps={down_mbps}, up_mbps={up_mbps}) (it has down_mbps={nic.down_mbps}, "
                f"up_mbps={nic.up_mbps})")
        return NicShaping(name, host, index, down_mbps, up_mbps, parent)


def _check_address(what: str, address: str, subnet: ipaddress.IPv4Network) -> None:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError as e:
        raise ProxmoxError(f"{what}: {e}") from None
    hosts = subnet.num_addresses > 2
    if ip not in subnet or (hosts and ip in (subnet.network_address, subnet.broadcast_address)):
        raise ProxmoxError(f"{what}: {address} is not a host address of {subnet}")


if TYPE_CHECKING:
    def _is_a_driver(driver: ProxmoxDriver) -> Driver:
        return driver
