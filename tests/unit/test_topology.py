"""The topology rules every driver shares: addresses, links and hosting sizes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from fellesdrift.inventory import load as inventory
from fellesdrift.plan import topology

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = inventory.load([ROOT / "inventories"])


def test_links_are_distinct_slash30s_inside_the_links_range() -> None:
    links = [topology.link_subnet(SAMPLES.centre, s) for m in SAMPLES.municipalities
             for s in m.sites]
    assert len(set(links)) == len(links) == 20
    pool = next(ipaddress.IPv4Network(r.prefix) for r in SAMPLES.centre.address_plan.centre_ranges
                if r.name == "links")
    assert all(ipaddress.IPv4Network(n).prefixlen == 30 and ipaddress.IPv4Network(n)
               .subnet_of(pool) for n in links)


def test_a_new_municipality_moves_no_other_link() -> None:
    alone = inventory.load([ROOT / "inventories" / "operations-centre.yaml",
                            ROOT / "inventories" / "seljord.yaml"])
    site = alone.municipality("seljord").sites[0]
    assert topology.link_subnet(alone.centre, site) == topology.link_subnet(
        SAMPLES.centre, SAMPLES.municipality("seljord").sites[0])


def test_centre_networks_put_the_backbone_first_and_skip_reserved_ranges() -> None:
    nets = topology.centre_networks(SAMPLES.centre)
    assert nets[0].name == "backbone"
    assert {n.name for n in nets}.isdisjoint({"management", "links"})
    assert all(n.router == str(ipaddress.IPv4Network(n.prefix).network_address + 1) for n in nets)


def test_hosting_grows_with_the_subscribers_users() -> None:
    users = topology.hosting_users(SAMPLES, "gis")
    expected = sum(m.users.total(["administration", "technical"])
                   for m in SAMPLES.municipalities if any(s.service == "gis" for s in m.services))
    assert users == expected > 0
    size = topology.hosting_size(SAMPLES, "gis_hosting")
    assert size.cores == min(16, max(2, -(-users // 500)))
    assert size.memory_mb == 1024 * size.cores


def test_every_host_function_names_a_role_and_suites_that_exist() -> None:
    from fellesdrift.plan.functions import FUNCTIONS

    suites = ROOT / "fellesdrift" / "verify" / "suites"
    for f in FUNCTIONS.values():
        assert (ROOT / "roles" / f.role / "meta" / "argument_specs.yml").exists(), f.name
        assert f.suites and all((suites / f"{s}.py").exists() for s in f.suites), f.name
    # Exactly one host reaches the mirrors; the routers are the ones the network phase configures.
    assert [f.name for f in FUNCTIONS.values() if f.egress] == ["apt_proxy"]
    assert {f.name for f in FUNCTIONS.values() if f.router} == {"core_router", "site_router"}
