"""Role inputs: every variable a role gets, rendered from the validated model and the hosts the
stacks declared. Roles never read inventory files; this module is the one place that maps the
model onto role variables (documented in each role's meta/argument_specs.yml).

Endpoint conventions shared by the roles, monitoring and the checks:

- DNS: every host is ``<name>.<domain>``; service names ``apt``, ``gis``, ``okonomi``,
  ``prometheus`` point at the host serving them (:func:`domain`).
- GIS: ``http://gis.<domain>/<slug>/wms`` is municipality ``<slug>``'s WMS endpoint
  (:func:`wms_url`), its layer ``sites`` holds the municipality's sites as points.
- Finance: ``https://okonomi.<domain>/<slug>/`` answers over TLS with a certificate from the
  lab's CA (:func:`finance_url`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fellesdrift.access import credentials, pki
from fellesdrift.converge import nodes
from fellesdrift.inventory.model import Inventory, Municipality, Site
from fellesdrift.paths import CACHE_DIR, ROOT
from fellesdrift.plan import hardening, naming, topology
from fellesdrift.plan.functions import FUNCTIONS, function_of, municipality_of
from fellesdrift.provision.hosts import Host

APT_PROXY_PORT = 3142
#: What an execution node runs, at the control node's versions (requirements.lock).
WORKER_PACKAGES = ("ansible-core", "ansible-runner", "mitogen", "ansible")
LOCK = ROOT / "requirements.lock"
NODE_EXPORTER_PORT = 9100
#: The port of the link bandwidth check's iperf3 servers on the core router: one server per
#: site link, bound to the core's address on that link (role site_router, unit iperf3@ADDRESS).
IPERF3_PORT = 5201
#: The routers' login for the network phase (role site_router; its shell is vtysh).
NETOPS_USER = "netops"
SERVICE_ALIASES = naming.SERVICE_ALIASES
#: Where sites are placed when the inventory has no coordinates: around Telemark (WGS 84).
_ORIGIN = (8.5, 59.4)


domain = naming.domain


@dataclass(frozen=True)
class Context:
    """What every builder may read: the model, the environment and the declared hosts, with
    the hosts other roles point at (the apt proxy, the DNS/NTP servers) found once."""

    model: Inventory
    env: str
    hosts: list[Host]
    netops_key: str
    #: The host that reaches Debian's mirrors (the function with ``egress``), if provisioned.
    apt: Host | None = field(init=False)
    #: The DNS and NTP servers (function ``dns_ntp``).
    dns: list[Host] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "apt", next(
            (h for h in self.hosts if (f := FUNCTIONS.get(function_of(h))) and f.egress), None))
        object.__setattr__(self, "dns", [h for h in self.hosts
                                         if function_of(h) == "dns_ntp"])


#: A function's role variables for one host.
Builder = Callable[[Context, Host], dict[str, Any]]


def wms_url(env: str, slug: str) -> str:
    return f"http://gis.{domain(env)}/{slug}/wms"


def finance_url(env: str, slug: str) -> str:
    return f"https://okonomi.{domain(env)}/{slug}/"


db_name = naming.database


def site_point(m: Municipality, site_id: str) -> tuple[float, float]:
    """A stable (lon, lat) for a site: the municipality's spot plus the site's offset, both
    from a hash of the inventory's identifiers (the model has no coordinates yet)."""
    def unit(text: str) -> tuple[float, float]:
        d = hashlib.sha256(text.encode()).digest()
        return d[0] / 255, d[1] / 255
    mx, my = unit(m.code)
    sx, sy = unit(f"{m.code}/{site_id}")
    return (round(_ORIGIN[0] - 1.5 + 3 * mx + 0.1 * (sx - 0.5), 6),
            round(_ORIGIN[1] - 0.6 + 1.2 * my + 0.05 * (sy - 0.5), 6))


def _tier(model: Inventory, m: Municipality, service: str) -> dict[str, Any]:
    sub = next(s for s in m.services if s.service == service)
    level = next(lv for lv in model.centre.service_levels if lv.id == sub.tier)
    return {"tier": level.id, "availability_percent": float(level.availability_percent),
            "response_hours": level.response_hours}


def _gis(ctx: Context, host: Host) -> dict[str, Any]:
    model, env = ctx.model, ctx.env
    return {"gis_hosting__server_name": f"gis.{domain(env)}", "gis_hosting__municipalities": [
        {"slug": m.slug, "name": m.name, "code": m.code,
         "database": db_name("gis", m.slug), "login": db_name("gis", m.slug),
         "password": credentials.password(env, f"gis/{m.slug}"),
         "sites": [{"id": s.id, "name": s.name, "kind": s.kind, "address": s.address,
                    "users": s.users, "lon": site_point(m, s.id)[0],
                    "lat": site_point(m, s.id)[1]} for s in m.sites]}
        for m in topology.subscribers(model, topology.HOSTING_SERVICE["gis_hosting"])]}


def _finance(ctx: Context, host: Host) -> dict[str, Any]:
    model, env = ctx.model, ctx.env
    name = f"okonomi.{domain(env)}"
    tls = pki.server(env, model.centre.name, [name, f"{host.name}.{domain(env)}"],
                     [host.address])
    return {"finance_hosting__server_name": name,
            "finance_hosting__tls_cert": tls.cert, "finance_hosting__tls_key": tls.key,
            "finance_hosting__municipalities": [
                {"slug": m.slug, "name": m.name, "code": m.code,
                 "database": db_name("okonomi", m.slug), "login": db_name("okonomi", m.slug),
                 "password": credentials.password(env, f"okonomi/{m.slug}"),
                 "networks": [s.lan_prefix for s in m.sites]}
                for m in topology.subscribers(model,
                                              topology.HOSTING_SERVICE["finance_hosting"])]}


def _monitoring(ctx: Context, host: Host) -> dict[str, Any]:
    model, env = ctx.model, ctx.env
    probes: list[dict[str, Any]] = []
    for m in model.municipalities:
        for service, url, module in (("gis", wms_url(env, m.slug)
                                      + "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetCapabilities",
                                      "http_2xx"),
                                     ("okonomi", finance_url(env, m.slug), "https_2xx")):
            if any(s.service == service for s in m.services):
                probes.append({"municipality": m.slug, "service": service, "url": url,
                               "module": module, **_tier(model, m, service)})
    return {"monitoring__node_targets": [{"name": h.name, "address": h.address,
                                         "port": NODE_EXPORTER_PORT} for h in ctx.hosts],
            "monitoring__probes": probes}


def link_endpoint(model: Inventory, site: Site) -> str:
    """The core router's address on a site's broadband link: where the site measures its link."""
    return topology.link_addresses(topology.link_subnet(model.centre, site))[0]


def wms_bbox(m: Municipality, margin: float = 0.02) -> list[float]:
    """The municipality's sites' extent in EPSG:4326 as WMS 1.3.0 wants it: lat/lon order
    (min lat, min lon, max lat, max lon), with a margin."""
    points = [site_point(m, s.id) for s in m.sites]
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    return [round(min(lats) - margin, 6), round(min(lons) - margin, 6),
            round(max(lats) + margin, 6), round(max(lons) + margin, 6)]


def _site_client(ctx: Context, host: Host) -> dict[str, Any]:
    model, env, apt, dns = ctx.model, ctx.env, ctx.apt, ctx.dns
    slug = municipality_of(host) or ""
    m = model.municipality(slug)
    subscribed = {s.service for s in m.services}
    site = next(s for s in m.sites if host.name == naming.site_client(slug, s.id))
    core = any(function_of(h) == "core_router" for h in ctx.hosts)
    return {
        # The link's bandwidth, measured against the core router's iperf3 server of this link
        # (its own: sites measure at the same time without queueing for one server).
        "site_client__link": {"down_mbps": site.link.down_mbps, "up_mbps": site.link.up_mbps,
                             "iperf3_server": link_endpoint(model, site) if core else "",
                             "iperf3_port": IPERF3_PORT},
        "site_client__municipality": slug,
        "site_client__dns_servers": [d.address for d in dns],
        "site_client__ntp_servers": [d.address for d in dns],
        "site_client__apt_proxy_url": f"http://{apt.address}:{APT_PROXY_PORT}" if apt else "",
        "site_client__wms": {"url": wms_url(env, slug), "layer": "sites", "bbox": wms_bbox(m)}
        if "gis" in subscribed else {},
        "site_client__finance_url": finance_url(env, slug) if "okonomi" in subscribed else "",
        # Hosts of every other municipality: none of them may be reachable from this site.
        "site_client__foreign_hosts": [
            {"municipality": municipality_of(h), "name": h.name, "address": h.address}
            for h in ctx.hosts if municipality_of(h) not in (None, slug)],
    }


def _apt_proxy(ctx: Context, host: Host) -> dict[str, Any]:
    return {"apt_proxy__port": APT_PROXY_PORT,
            "apt_proxy__allowed_networks": list(ctx.model.centre.address_plan.aggregates)}


def _execution_node(ctx: Context, host: Host) -> dict[str, Any]:
    """The locked Ansible (requirements.lock): the packages a worker runs, and every pin of
    the lock as pip's constraints, so their dependencies are the control node's too; the
    control node's folder of their wheels (one per lock)."""
    text = LOCK.read_text(encoding="utf-8")
    lock = [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    pins = {line.split("==")[0].lower(): line for line in lock}
    return {"execution_node__packages": [pins[name] for name in WORKER_PACKAGES],
            "execution_node__constraints": lock,
            "execution_node__venv": nodes.VENV, "execution_node__work_dir": nodes.WORK,
            "execution_node__user": host.ssh_user,
            "execution_node__wheelhouse": str(CACHE_DIR / "wheels" / hashlib.sha256(
                text.encode()).hexdigest()[:12])}


def _dns_ntp(ctx: Context, host: Host) -> dict[str, Any]:
    records = [{"name": h.name, "address": h.address} for h in ctx.hosts]
    for h in ctx.hosts:
        alias = SERVICE_ALIASES.get(function_of(h))
        if alias and not any(r["name"] == alias for r in records):
            records.append({"name": alias, "address": h.address})
    return {"dns_ntp__domain": domain(ctx.env), "dns_ntp__records": records,
            "dns_ntp__allowed_networks": list(ctx.model.centre.address_plan.aggregates)}


def _router(ctx: Context, host: Host, iperf3_servers: list[str]) -> dict[str, Any]:
    return {"site_router__netops_keys": [ctx.netops_key],
            "site_router__iperf3_servers": iperf3_servers,
            "site_router__iperf3_port": IPERF3_PORT,
            "common__ssh_allow_groups": [NETOPS_USER]}


def _core_router(ctx: Context, host: Host) -> dict[str, Any]:
    # One iperf3 server per provisioned site link (its site router exists).
    names = {h.name for h in ctx.hosts}
    return _router(ctx, host, [link_endpoint(ctx.model, s) for m in ctx.model.municipalities
                               for s in m.sites if naming.site_router(m.slug, s.id) in names])


def _site_router(ctx: Context, host: Host) -> dict[str, Any]:
    return _router(ctx, host, [])


#: The role variables of each host function (every function of :data:`FUNCTIONS` has one;
#: tests/unit/test_hostvars.py holds the two equal).
BUILDERS: dict[str, Builder] = {
    "core_router": _core_router,
    "site_router": _site_router,
    "site_client": _site_client,
    "apt_proxy": _apt_proxy,
    "dns_ntp": _dns_ntp,
    "monitoring": _monitoring,
    "gis_hosting": _gis,
    "finance_hosting": _finance,
    "execution_node": _execution_node,
}


def render(model: Inventory, env: str, hosts: list[Host], netops_key: str
           ) -> dict[str, dict[str, Any]]:
    """Every host's role variables: {host name: {variable: value}}: the baseline's, then those
    of its function (:data:`BUILDERS`). ``netops_key``: the public key the network phase logs
    in to routers with."""
    ctx = Context(model, env, hosts, netops_key)
    dom = domain(env)
    ca = pki.ca_pem(env, model.centre.name)
    out: dict[str, dict[str, Any]] = {}
    for h in hosts:
        function = function_of(h)
        spec = FUNCTIONS.get(function)
        v: dict[str, Any] = {
            "fellesdrift_env": env,
            "fellesdrift_domain": dom,
            "fellesdrift_function": function,
            "fellesdrift_role": spec.role if spec else "",
            "common__apt_proxy_url": "" if ctx.apt is None or h is ctx.apt
            else f"http://{ctx.apt.address}:{APT_PROXY_PORT}",
            # The apt proxy keeps its provisioned resolver: it must resolve the Debian mirrors.
            "common__dns_servers": [] if h is ctx.apt else [d.address for d in ctx.dns],
            "common__dns_search": [dom],
            "common__ntp_servers": [d.address for d in ctx.dns if d is not h],
            "common__ca_certificates": [{"name": f"fellesdrift-{env}-ca", "pem": ca}],
            # The one network hardening baseline (the lab driver sets it on every container).
            "common__sysctl_settings": dict(hardening.NETWORK_SYSCTLS),
        }
        build = BUILDERS.get(function)
        out[h.name] = v | build(ctx, h) if build else v
    return out
