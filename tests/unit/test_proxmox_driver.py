"""The proxmox driver under Pulumi's own mocks: what it would ask Proxmox VE for, built from the
sample inventories in inventories/.

Every resource registration goes through a mock monitor that keeps its type, name, inputs and
protect flag; the assertions read those, as Proxmox would receive them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor, MockResourceArgs

from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import Inventory, Municipality
from fellesdrift.plan import naming, topology
from stacks.components import (
    MunicipalSite,
    MunicipalSiteArgs,
    OperationsCentre,
    OperationsCentreArgs,
)
from stacks.drivers.base import HostSpec, NetworkSpec, Nic
from stacks.drivers.proxmox import (
    BRIDGE_NAME,
    MIB,
    NicShaping,
    ProxmoxDriver,
    ProxmoxError,
    ProxmoxHost,
    TrunkAttachment,
    bridge_name,
    cloud_config,
    rate_limit,
)

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = ROOT / "inventories"
MUNICIPALITIES = sorted(p.stem for p in INVENTORIES.glob("*.yaml")
                        if p.stem != "operations-centre")
ENV = "test"
TRUNK = "vmbr0"
ADMIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAdminKeyForTheTests admin@centre"
CORE_ROUTER = f"{ENV}-core-router"

VM = "proxmoxve:index/vmLegacy:VmLegacy"
FILE = "proxmoxve:index/fileLegacy:FileLegacy"
BRIDGE = "proxmoxve:network/linux/bridge:Bridge"
KEY = "tls:index/privateKey:PrivateKey"

# A mock key's armour, spelled in parts so no private-key marker stands in the source.
PEM_BEGIN = "-----BEGIN OPENSSH " + "PRIVATE KEY-----"
PEM_END = "-----END OPENSSH " + "PRIVATE KEY-----"


# --- Pulumi mocks that remember what was registered -------------------------------------------


def fake_public_key(name: str) -> str:
    return f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5{name.replace('-', '')} generated\n"


def fake_private_key(name: str) -> str:
    return (f"{PEM_BEGIN}\nb3BlbnNzaC1rZXktdjEAAAA{name.replace('-', '')}\n{PEM_END}\n")


class Recorder(pulumi.runtime.Mocks):
    """Returns a resource's inputs as its outputs (a TLS key gets fake key text; a snippet the
    id format of the provider)."""

    def __init__(self) -> None:
        self.resources: list[MockResourceArgs] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(args)
        outputs = dict(args.inputs)
        if args.typ == KEY:
            outputs["publicKeyOpenssh"] = fake_public_key(args.name)
            outputs["privateKeyOpenssh"] = fake_private_key(args.name)
        if args.typ == FILE:
            raw = unsecret(args.inputs["sourceRaw"])
            return f"{args.inputs['datastoreId']}:snippets/{raw['fileName']}", outputs
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


class ProtectMonitor(MockMonitor):
    """The mock engine, also keeping each registration's protect flag and the outputs each
    component registers (``register_outputs``), by (type, name)."""

    def __init__(self, mocks: Recorder) -> None:
        super().__init__(mocks)
        self.protect: dict[tuple[str, str], bool] = {}
        self.registered: dict[tuple[str, str], dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method's name)
        self.protect[(request.type, request.name)] = bool(request.protect)
        return super().RegisterResource(request)

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (the gRPC method)
        # urn:pulumi:<stack>::<project>::<parent type>$…$<type>::<name>
        _, _, types, name = request.urn.split("::", 3)
        self.registered[(types.split("$")[-1], name)] = unsecret(
            rpc.deserialize_properties(request.outputs))
        return super().RegisterResourceOutputs(request)


def unsecret(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return unsecret(value["value"])
        return {k: unsecret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unsecret(v) for v in value]
    return value


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


@dataclass
class Run:
    recorder: Recorder
    monitor: ProtectMonitor
    outputs: Any = None

    def of(self, typ: str) -> dict[str, dict[str, Any]]:
        """name -> inputs of every registered resource of ``typ`` (secrets unwrapped)."""
        return {r.name: unsecret(r.inputs) for r in self.recorder.resources if r.typ == typ}

    def raw(self, typ: str, name: str) -> dict[str, Any]:
        return next(r.inputs for r in self.recorder.resources if (r.typ, r.name) == (typ, name))


def run(program: Callable[[ProxmoxDriver, pulumi.Resource], Any], **driver_args: Any) -> Run:
    """Run ``program`` as a Pulumi program under mocks; every registration has finished when
    this returns. ``outputs`` holds what the program returned, resolved."""
    recorder = Recorder()
    monitor = ProtectMonitor(recorder)
    pulumi.runtime.set_mocks(recorder, project="fellesdrift", stack=f"{ENV}.unit",
                             preview=False, monitor=monitor)
    result = Run(recorder, monitor)
    args: dict[str, Any] = dict(env=ENV, node="pve1", template_vm_id=9000,
                                datastore="local-lvm", trunk_bridge=TRUNK,
                                authorized_key=ADMIN_KEY)
    args.update(driver_args)
    driver = ProxmoxDriver(**args)

    @pulumi.runtime.test
    def body() -> pulumi.Output[Any]:
        root = pulumi.ComponentResource("test:index:Root", "root")
        out = pulumi.Output.from_input(program(driver, root))
        return out.apply(lambda v: setattr(result, "outputs", v))

    body()
    return result


# --- Specs from the inventory, by the same rules as the components ----------------------------


@pytest.fixture(scope="module")
def model() -> Inventory:
    return inventory.load([INVENTORIES])


@dataclass
class SitePlan:
    name: str
    vlan: int
    down_mbps: int
    up_mbps: int
    lan: NetworkSpec
    link: NetworkSpec
    router: HostSpec
    client: HostSpec
    core_address: str
    hosts: dict[str, Any] = field(default_factory=dict)
    shaping: NicShaping | None = None
    attachment: TrunkAttachment | None = None


def site_plans(model: Inventory, municipality: Municipality, *,
               announce: bool = True) -> list[SitePlan]:
    """Networks and hosts of every site: the router on the LAN (first) and on the link, the
    client on the LAN. Sizes grow with the site's users, so none is a default."""
    plans = []
    for site in municipality.sites:
        name = f"{municipality.slug}-{site.id}"
        lan = NetworkSpec(f"{name}-lan", site.lan_prefix, "lan")
        link_prefix = topology.link_subnet(model.centre, site)
        link = NetworkSpec(f"{name}-link", link_prefix, "link", vlan=site.link.vlan)
        router_ip = topology.nth(site.lan_prefix, 1)
        bandwidth: dict[str, Any] = {}
        if announce:
            bandwidth = {"down_mbps": site.link.down_mbps, "up_mbps": site.link.up_mbps}
        router = HostSpec(f"{name}-router", "site_router",
                          (Nic(lan.name, router_ip),
                           Nic(link.name, topology.nth(link_prefix, 2), **bandwidth)),
                          cores=2 + site.users // 100, memory_mb=1024 + site.users,
                          disk_gb=10 + site.users // 50)
        client = HostSpec(f"{name}-client", "site_client",
                          (Nic(lan.name, topology.nth(site.lan_prefix, 10)),),
                          gateway=router_ip, cores=1 + site.users // 150,
                          memory_mb=768 + 2 * site.users, disk_gb=12 + site.users // 40)
        plans.append(SitePlan(name, site.link.vlan, site.link.down_mbps, site.link.up_mbps,
                              lan, link, router, client, topology.nth(link_prefix, 1)))
    return plans


def build_sites(plans: list[SitePlan]) -> Callable[[ProxmoxDriver, pulumi.Resource], Any]:
    def program(driver: ProxmoxDriver, root: pulumi.Resource) -> Any:
        keys = {}
        for p in plans:
            site = pulumi.ComponentResource("test:index:Site", p.name,
                                            opts=pulumi.ResourceOptions(parent=root))
            lan = driver.network(p.lan, site)
            link = driver.network(p.link, site)
            p.attachment = driver.attach(f"{p.link.name}-core", CORE_ROUTER, link,
                                         p.core_address, site)
            nets = {p.lan.name: lan, p.link.name: link}
            router = driver.host(p.router, nets, site)
            p.shaping = driver.shape(f"{p.link.name}-shaping", router, link, p.down_mbps,
                                     p.up_mbps, site)
            client = driver.host(p.client, nets, site)
            p.hosts = {"router": router, "client": client}
            for h in (router, client):
                keys[h.spec.name] = pulumi.Output.all(h.machine, h.address, h.host_key)
        return keys
    return program


def vm_name(host: str) -> str:
    return f"{ENV}-{host}"


def prefixlen(spec: NetworkSpec) -> int:
    return ipaddress.IPv4Network(spec.subnet).prefixlen


# --- Sites of a municipality ------------------------------------------------------------------


@pytest.mark.parametrize("slug", MUNICIPALITIES)
def test_every_site_gets_one_router_vm_and_one_client_vm(model: Inventory, slug: str) -> None:
    municipality = model.municipality(slug)
    plans = site_plans(model, municipality)
    result = run(build_sites(plans))
    vms = result.of(VM)
    expected = {vm_name(f"{slug}-{s.id}-{role}") for s in municipality.sites
                for role in ("router", "client")}
    assert {v["name"] for v in vms.values()} == expected
    assert len(vms) == 2 * len(municipality.sites)
    for p in plans:
        assert "site_router" in vms[p.router.name]["tags"]
        assert "site_client" in vms[p.client.name]["tags"]
        for spec in (p.router, p.client):  # every VM is a full clone of the template
            assert vms[spec.name]["clone"] == {"vmId": 9000, "full": True,
                                               "datastoreId": "local-lvm"}
            assert vms[spec.name]["nodeName"] == "pve1"
    # what the component returns names the VM and its management address
    for p in plans:
        for spec in (p.router, p.client):
            machine, address, _ = result.outputs[spec.name]
            assert (machine, address) == (vm_name(spec.name), spec.nics[0].address)


@pytest.mark.parametrize("slug", MUNICIPALITIES)
def test_nics_and_vlans_follow_the_inventory(model: Inventory, slug: str) -> None:
    municipality = model.municipality(slug)
    plans = site_plans(model, municipality)
    vms = run(build_sites(plans)).of(VM)
    for p in plans:
        lan_bridge = bridge_name(ENV, p.lan.name)
        router = vms[p.router.name]["networkDevices"]
        assert len(router) == 2
        assert router[0]["bridge"] == lan_bridge and "vlanId" not in router[0]
        assert router[1]["bridge"] == TRUNK and router[1]["vlanId"] == p.vlan
        client = vms[p.client.name]["networkDevices"]
        assert len(client) == 1
        assert client[0]["bridge"] == lan_bridge and "vlanId" not in client[0]
    tagged = sorted(d["vlanId"] for v in vms.values() for d in v["networkDevices"]
                    if "vlanId" in d)
    assert tagged == sorted(s.link.vlan for s in municipality.sites)


def test_vm_sizes_are_the_specs(model: Inventory) -> None:
    plans = site_plans(model, model.municipality("skien"))
    vms = run(build_sites(plans)).of(VM)
    sizes = {(s.cores, s.memory_mb, s.disk_gb) for p in plans for s in (p.router, p.client)}
    assert len(sizes) == 2 * len(plans)  # the plan gives every VM its own size
    for p in plans:
        for spec in (p.router, p.client):
            vm = vms[spec.name]
            assert vm["cpu"]["cores"] == spec.cores
            assert vm["memory"]["dedicated"] == spec.memory_mb
            assert [(d["interface"], d["size"], d["datastoreId"]) for d in vm["disks"]] == \
                [("scsi0", spec.disk_gb, "local-lvm")]


@pytest.mark.parametrize("slug", ["seljord", "drangedal"])
def test_cloud_init_addresses_are_the_spec_addresses(model: Inventory, slug: str) -> None:
    plans = site_plans(model, model.municipality(slug))
    result = run(build_sites(plans))
    vms, files = result.of(VM), result.of(FILE)
    for p in plans:
        router = vms[p.router.name]["initialization"]
        assert [c["ipv4"] for c in router["ipConfigs"]] == [
            {"address": f"{p.router.nics[0].address}/{prefixlen(p.lan)}"},
            {"address": f"{p.router.nics[1].address}/{prefixlen(p.link)}"},
        ]  # a router has no default route from cloud-init
        client = vms[p.client.name]["initialization"]
        assert [c["ipv4"] for c in client["ipConfigs"]] == [
            {"address": f"{p.client.nics[0].address}/{prefixlen(p.lan)}",
             "gateway": p.router.nics[0].address}]
        for spec in (p.router, p.client):
            raw = files[f"{spec.name}-user-data"]["sourceRaw"]
            assert vms[spec.name]["initialization"]["userDataFileId"] == \
                f"local:snippets/{raw['fileName']}"


def test_the_gateway_is_on_the_first_nic_only() -> None:
    def program(driver: ProxmoxDriver, root: pulumi.Resource) -> None:
        servers = driver.network(NetworkSpec("servers", "10.100.1.0/24", "servers"), root)
        backbone = driver.network(NetworkSpec("backbone", "10.100.0.0/24", "backbone"), root)
        driver.host(HostSpec("two", "monitoring", (Nic("servers", "10.100.1.40"),
                                                   Nic("backbone", "10.100.0.40")),
                             gateway="10.100.1.1"), {"servers": servers, "backbone": backbone},
                    root)

    configs = run(program).of(VM)["two"]["initialization"]["ipConfigs"]
    assert [c["ipv4"] for c in configs] == [
        {"address": "10.100.1.40/24", "gateway": "10.100.1.1"}, {"address": "10.100.0.40/24"}]


def test_host_key_is_the_key_cloud_init_installs(model: Inventory) -> None:
    plans = site_plans(model, model.municipality("bamble"))
    result = run(build_sites(plans))
    files = result.of(FILE)
    for p in plans:
        for spec in (p.router, p.client):
            _, _, host_key = result.outputs[spec.name]
            assert host_key == " ".join(fake_public_key(f"{spec.name}-host-key").split()[:2])
            raw = result.raw(FILE, f"{spec.name}-user-data")
            assert is_secret(raw["sourceRaw"])  # it holds the private host key
            user_data = files[f"{spec.name}-user-data"]["sourceRaw"]["data"]
            assert user_data.startswith("#cloud-config\n")
            config = yaml.safe_load(user_data)
            assert config["ssh_keys"]["ed25519_public"] == host_key
            assert config["ssh_keys"]["ed25519_private"] == \
                fake_private_key(f"{spec.name}-host-key")
            assert config["ssh_genkeytypes"] == []  # no other host key to be offered
            assert config["hostname"] == spec.name
            assert config["users"][0]["name"] == "ops"
            assert config["users"][0]["ssh_authorized_keys"] == [ADMIN_KEY]
    assert set(result.of(KEY)) == {f"{s.name}-host-key" for p in plans
                                   for s in (p.router, p.client)}
    assert all(k["algorithm"] == "ED25519" for k in result.of(KEY).values())


# --- Links: shaping and the core router --------------------------------------------------------


def test_link_bandwidth_is_the_rate_limit_of_the_routers_link_nic(model: Inventory) -> None:
    municipality = model.municipality("drangedal")  # 250/50 Mbit/s over DSL
    plans = site_plans(model, municipality)
    vms = run(build_sites(plans)).of(VM)
    for p in plans:
        lan_nic, link_nic = vms[p.router.name]["networkDevices"]
        assert "rateLimit" not in lan_nic
        assert link_nic["rateLimit"] == rate_limit(min(p.down_mbps, p.up_mbps))
        assert "rateLimit" not in vms[p.client.name]["networkDevices"][0]
        assert p.shaping is not None
        assert (p.shaping.nic, p.shaping.enforced_mbps) == ("net1", min(p.down_mbps, p.up_mbps))
    assert plans[0].shaping is not None and plans[0].shaping.rate_limit == 5.96  # 50 Mbit/s


def test_rate_limit_is_in_mib_per_second_and_never_above_the_link() -> None:
    assert rate_limit(1000) == 119.209
    step = 0.001 * MIB * 8  # the rate has three decimals of MiB/s
    for mbps in (1, 7, 50, 100, 250, 1000, 10_000, 100_000):
        shaped_bits = int(rate_limit(mbps) * MIB) * 8  # what Proxmox makes of it
        assert mbps * 1_000_000 - step <= shaped_bits <= mbps * 1_000_000


def test_shape_needs_the_bandwidth_announced_on_the_nic(model: Inventory) -> None:
    plans = site_plans(model, model.municipality("drangedal"), announce=False)
    with pytest.raises(ProxmoxError, match=r"down_mbps=250, up_mbps=50\)"):
        run(build_sites(plans))


def test_attach_records_the_core_router_on_the_link_vlan(model: Inventory) -> None:
    plans = site_plans(model, model.municipality("kviteseid"))
    result = run(build_sites(plans))
    for p in plans:
        a = p.attachment
        assert a is not None
        assert (a.vlan, a.address, a.prefix_length) == (p.vlan, p.core_address, 30)
    # a record only: no provider resource carries an attachment's name
    names = {r.name for r in result.recorder.resources if not r.typ.startswith("fellesdrift:")}
    assert not any(n.endswith("-link-core") for n in names)


def test_attach_to_anything_but_a_link_is_refused() -> None:
    def program(driver: ProxmoxDriver, root: pulumi.Resource) -> None:
        lan = driver.network(NetworkSpec("x-lan", "10.101.9.0/24", "lan"), root)
        driver.attach("x-lan-core", CORE_ROUTER, lan, "10.101.9.1", root)

    with pytest.raises(ProxmoxError, match="only links reach the core router"):
        run(program)


# --- Networks ----------------------------------------------------------------------------------


def test_lans_are_vlan_aware_bridges_and_links_make_no_bridge(model: Inventory) -> None:
    municipality = model.municipality("porsgrunn")
    plans = site_plans(model, municipality)
    bridges = run(build_sites(plans)).of(BRIDGE)
    assert set(bridges) == {p.lan.name for p in plans}
    for p in plans:
        b = bridges[p.lan.name]
        assert BRIDGE_NAME.match(b["name"]) and b["name"] == bridge_name(ENV, p.lan.name)
        assert b["vlanAware"] is True and b["nodeName"] == "pve1"
        assert "ports" not in b and "address" not in b  # isolated; the node is not on it
        assert p.lan.name in b["comment"] and p.lan.subnet in b["comment"]
    assert len({b["name"] for b in bridges.values()}) == len(bridges)


def test_control_node_takes_the_last_address_of_a_bridge() -> None:
    def program(driver: ProxmoxDriver, root: pulumi.Resource) -> None:
        driver.network(NetworkSpec("centre-backbone", "10.100.0.0/24", "backbone"), root)

    bridges = run(program, control_node=True).of(BRIDGE)
    assert bridges["centre-backbone"]["address"] == "10.100.0.254/24"


@pytest.mark.parametrize(("spec", "message"), [
    (NetworkSpec("l", "10.100.16.0/30", "link"), "needs a VLAN"),
    (NetworkSpec("l", "10.100.16.0/30", "link", vlan=1), "needs a VLAN"),
    (NetworkSpec("b", "10.100.0.0/24", "backbone", vlan=10), "only links are VLANs"),
    (NetworkSpec("b", "10.100.0.1/24", "lan"), "has host bits set"),
])
def test_networks_it_cannot_make_are_refused(spec: NetworkSpec, message: str) -> None:
    with pytest.raises(ProxmoxError, match=message):
        run(lambda driver, root: driver.network(spec, root))


def test_two_links_on_one_vlan_are_refused() -> None:
    def program(driver: ProxmoxDriver, root: pulumi.Resource) -> None:
        driver.network(NetworkSpec("a-link", "10.100.16.0/30", "link", vlan=1011), root)
        driver.network(NetworkSpec("b-link", "10.100.16.4/30", "link", vlan=1011), root)

    with pytest.raises(ProxmoxError, match="VLAN 1011 is already link a-link"):
        run(program)


@pytest.mark.parametrize(("nics", "gateway", "message"), [
    ((Nic("lan", "10.101.1.10"), Nic("wan", "10.0.0.2")), None, "not among the networks"),
    ((Nic("lan", "10.101.2.10"),), None, "not a host address of 10.101.1.0/24"),
    ((Nic("lan", "10.101.1.255"),), None, "not a host address"),
    ((Nic("lan", "10.101.1.10"),), "10.101.2.1", "gateway: 10.101.2.1 is not a host address"),
    ((Nic("lan", "10.101.1.10", down_mbps=10),), None, "give both down_mbps and up_mbps"),
])
def test_hosts_it_cannot_make_are_refused(nics: tuple[Nic, ...], gateway: str | None,
                                          message: str) -> None:
    def program(driver: ProxmoxDriver, root: pulumi.Resource) -> None:
        lan = driver.network(NetworkSpec("lan", "10.101.1.0/24", "lan"), root)
        driver.host(HostSpec("h", "site_client", nics, gateway=gateway), {"lan": lan}, root)

    with pytest.raises(ProxmoxError, match=message):
        run(program)


# --- The core: protection and the trunk --------------------------------------------------------


def test_protect_is_set_on_the_resources_of_protected_hosts_only() -> None:
    def program(driver: ProxmoxDriver, root: pulumi.Resource) -> None:
        net = driver.network(NetworkSpec("centre-servers", "10.100.1.0/24", "servers"), root)
        nets = {"centre-servers": net}
        driver.host(HostSpec("core-host", "dns_ntp", (Nic("centre-servers", "10.100.1.20"),)),
                    nets, root, protect=True)
        driver.host(HostSpec("spare-host", "dns_ntp", (Nic("centre-servers", "10.100.1.30"),)),
                    nets, root)

    protect = run(program).monitor.protect
    for typ, suffix in ((VM, ""), (KEY, "-host-key"), (FILE, "-user-data")):
        assert protect[(typ, f"core-host{suffix}")] is True
        assert protect[(typ, f"spare-host{suffix}")] is False
    assert protect[(BRIDGE, "centre-servers")] is False


def test_core_stack_from_the_real_component_is_protected_and_has_the_trunk(
        model: Inventory) -> None:
    def program(driver: ProxmoxDriver, root: pulumi.Resource) -> Any:
        centre = OperationsCentre("centre", OperationsCentreArgs(model, driver),
                                  pulumi.ResourceOptions(parent=root))
        return centre.core_router.machine

    result = run(program)
    assert result.outputs == CORE_ROUTER
    vms = result.of(VM)
    shared = {h.hostname for h in model.centre.shared_hosts}
    assert {v["name"] for v in vms.values()} == {vm_name(n) for n in {"core-router", *shared}}
    for name in vms:  # the centre asks for protection of every machine
        assert result.monitor.protect[(VM, name)] is True
        assert result.monitor.protect[(KEY, f"{name}-host-key")] is True
    nets = topology.centre_networks(model.centre)
    core = vms["core-router"]
    devices = core["networkDevices"]
    assert len(devices) == len(nets) + 1
    assert [d["bridge"] for d in devices[:-1]] == \
        [bridge_name(ENV, f"centre-{n.name}") for n in nets]
    assert devices[-1] == {"bridge": TRUNK, "model": "virtio", "firewall": False}  # untagged
    assert [c["ipv4"]["address"] for c in core["initialization"]["ipConfigs"]] == \
        [f"{n.router}/{ipaddress.IPv4Network(n.prefix).prefixlen}" for n in nets]
    # What the components registered as their outputs: the core router, and every host's
    # record as later phases read it (the VM's name, the management address, the host key
    # cloud-init installs).
    registered = result.monitor.registered
    centre = registered[("fellesdrift:index:OperationsCentre", "centre")]
    assert centre["core_router"] == CORE_ROUTER
    records = {h["name"]: h for h in centre["hosts"]}
    addresses = {"core-router": nets[0].router,
                 **{h.hostname: h.address for h in model.centre.shared_hosts}}
    assert set(records) == set(addresses)
    for name, record in records.items():
        assert record["machine"] == vm_name(name)
        assert record["address"] == addresses[name]
        assert record["host_key"] == " ".join(fake_public_key(f"{name}-host-key").split()[:2])
        assert (record["ssh_user"], record["ssh_port"]) == ("ops", 22)
        assert record["groups"] == [record["function"], naming.CENTRE_GROUP]
        host = registered[("fellesdrift:proxmox:Host", name)]
        assert (host["machine"], host["address"], host["host_key"]) == \
            (record["machine"], record["address"], record["host_key"])
    hostings = {name: hosts for (typ, name), out in registered.items()
                if typ in ("fellesdrift:index:GisHosting", "fellesdrift:index:FinanceHosting")
                for hosts in [[h["name"] for h in out["hosts"]]]}
    assert hostings and all(hosts == [name] for name, hosts in hostings.items())
    assert {records[n]["function"] for n in hostings} == {"gis_hosting", "finance_hosting"}


def test_an_execution_node_is_the_one_centre_machine_left_unprotected(tmp_path: Path) -> None:
    """A node holds nothing the lock does not rebuild: taking it out of the centre file must
    delete it, where every host holding data stays protected."""
    for file in INVENTORIES.glob("*.yaml"):
        (tmp_path / file.name).write_bytes(file.read_bytes())
    centre = tmp_path / "operations-centre.yaml"
    text = centre.read_text(encoding="utf-8")
    assert "\nshared_hosts:\n" in text
    centre.write_text(text.replace("\nshared_hosts:\n", "\nshared_hosts:\n  - hostname: exec-01\n"
                                   "    role: execution_node\n    address: 10.100.1.40\n"),
                      encoding="utf-8")
    with_node = inventory.load([tmp_path])

    def program(driver: ProxmoxDriver, root: pulumi.Resource) -> Any:
        return OperationsCentre("centre", OperationsCentreArgs(with_node, driver),
                                pulumi.ResourceOptions(parent=root)).core_router.machine

    result = run(program)
    vms = result.of(VM)
    assert vm_name("exec-01") in {v["name"] for v in vms.values()}
    for name, vm in vms.items():
        protected = vm["name"] != vm_name("exec-01")
        assert result.monitor.protect[(VM, name)] is protected, name
        assert result.monitor.protect[(KEY, f"{name}-host-key")] is protected, name


@pytest.mark.parametrize("slug", ["drangedal", "skien"])
def test_municipal_sites_from_the_real_component_register_their_links_and_hosts(
        model: Inventory, slug: str) -> None:
    municipality = model.municipality(slug)

    def program(driver: ProxmoxDriver, root: pulumi.Resource) -> None:
        for site in municipality.sites:
            MunicipalSite(naming.site(slug, site.id),
                          MunicipalSiteArgs(model, municipality, site, CORE_ROUTER, driver),
                          pulumi.ResourceOptions(parent=root))

    registered = run(program).monitor.registered
    for site in municipality.sites:
        link_name = naming.site_link(slug, site.id)
        subnet = topology.link_subnet(model.centre, site)
        core_address, site_address = topology.nth(subnet, 1), topology.nth(subnet, 2)
        assert registered[("fellesdrift:index:BroadbandLink", link_name)] == {
            "subnet": subnet, "vlan": site.link.vlan,
            "network_name": f"{TRUNK}.{site.link.vlan}",
            "core_address": core_address, "site_address": site_address}
        out = registered[("fellesdrift:index:MunicipalSite", naming.site(slug, site.id))]
        assert out["lan"] == site.lan_prefix
        router, client = naming.site_router(slug, site.id), naming.site_client(slug, site.id)
        records = {h["name"]: h for h in out["hosts"]}
        assert set(records) == {router, client}
        groups = [naming.municipality_group(slug), naming.site_group(slug, site.id)]
        for name, function, address in ((router, "site_router", topology.nth(site.lan_prefix, 1)),
                                        (client, "site_client",
                                         topology.nth(site.lan_prefix, 10))):
            assert records[name]["machine"] == vm_name(name)
            assert (records[name]["function"], records[name]["address"]) == (function, address)
            assert records[name]["groups"] == [function, *groups]
        # The driver's own records of the link: the core router on its VLAN, and the
        # bandwidth on the site router's link NIC.
        attached = registered[("fellesdrift:proxmox:TrunkAttachment", f"{link_name}-core")]
        assert (attached["machine"], attached["vlan"], attached["address"],
                attached["prefix_length"]) == (CORE_ROUTER, site.link.vlan, core_address, 30)
        shaping = registered[("fellesdrift:proxmox:NicShaping", f"{link_name}-shaping")]
        enforced = min(site.link.down_mbps, site.link.up_mbps)
        assert (shaping["machine"], shaping["nic"], shaping["down_mbps"], shaping["up_mbps"],
                shaping["enforced_down_mbps"], shaping["rate_limit_mib_s"]) == \
            (vm_name(router), "net1", site.link.down_mbps, site.link.up_mbps, enforced,
             rate_limit(enforced))


# --- Pure parts ---------------------------------------------------------------------------------


def test_cloud_config_is_yaml_with_the_key_as_a_block() -> None:
    text = cloud_config("gis-01", "ops", ADMIN_KEY, fake_private_key("k"), fake_public_key("k"))
    assert f"ed25519_private: |\n    {PEM_BEGIN}\n" in text
    config = yaml.safe_load(text)
    assert config["ssh_pwauth"] is False and config["disable_root"] is True
    assert config["users"][0]["sudo"] == "ALL=(ALL) NOPASSWD:ALL"
    assert config["ssh_keys"]["ed25519_public"].count(" ") == 1  # no comment


def test_bridge_names_are_short_stable_and_apart() -> None:
    names = {bridge_name(ENV, f"site-{i}-lan") for i in range(2000)}
    assert len(names) == 2000 and all(BRIDGE_NAME.match(n) for n in names)
    assert bridge_name(ENV, "a") == bridge_name(ENV, "a") != bridge_name("prod", "a")


@pytest.mark.parametrize(("args", "message"), [
    ({"trunk_bridge": "vmbr0.101"}, "not a Linux bridge name"),
    ({"authorized_key": "AAAA"}, "not an OpenSSH public key"),
    ({"template_vm_id": 42}, "VM ids are 100"),
    ({"env": "Test_1"}, "lower-case"),
])
def test_driver_settings_are_checked(args: dict[str, Any], message: str) -> None:
    settings: dict[str, Any] = dict(env=ENV, node="pve1", template_vm_id=9000,
                                    datastore="local-lvm", trunk_bridge=TRUNK,
                                    authorized_key=ADMIN_KEY)
    with pytest.raises(ProxmoxError, match=message):
        ProxmoxDriver(**{**settings, **args})


def test_proxmox_host_is_what_host_returns(model: Inventory) -> None:
    plans = site_plans(model, model.municipality("tokke"))
    run(build_sites(plans))
    assert all(isinstance(h, ProxmoxHost) for p in plans for h in p.hosts.values())
