"""Which stacks `plan` and `up` act on, and when they refuse; which hosts a municipality
selection touches."""

from __future__ import annotations

from pathlib import Path

import pytest

from fellesdrift.converge import hostvars
from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import Inventory
from fellesdrift.network import intended
from fellesdrift.pipeline.job import SelectionError, select
from fellesdrift.plan import affected
from fellesdrift.provision.hosts import Host

MODEL = inventory.load([Path(__file__).resolve().parents[1] / "fixtures" / "inventories"])


def test_everything_by_default() -> None:
    s = select(MODEL, [], [], None, [])
    assert s.targets == ["core", "tokke", "vinje"]


def test_named_municipalities_only() -> None:
    s = select(MODEL, ["core", "tokke", "vinje"], ["vinje"], None, [])
    assert s.municipalities == ["vinje"] and not s.core


def test_a_municipality_that_subscribes_to_hosting_applies_the_core_stack_too() -> None:
    """The core sizes GIS and finance hosting from their subscribers' users: `up -m vinje`
    (vinje subscribes to both) applies the core's stack first; its hosts stay the affected
    ones, not every host."""
    s = select(MODEL, ["core", "tokke", "vinje"], ["vinje"], None, [])
    assert s.targets == ["core", "vinje"]
    assert _names(s.hosts(MODEL, HOSTS)) == _names(affected.hosts(MODEL, HOSTS, ["vinje"]))
    assert "apt-proxy" not in _names(s.hosts(MODEL, HOSTS))


def test_a_municipality_without_hosted_services_leaves_the_core_stack_alone() -> None:
    model = _without_services(MODEL, "vinje", {"gis", "okonomi"})
    assert select(model, ["core", "tokke", "vinje"], ["vinje"], None, []).targets == ["vinje"]


def test_the_core_is_named_like_a_municipality() -> None:
    """CI's fan-out applies the centre's stack alone (`-m core`) before the municipalities'."""
    assert select(MODEL, ["core", "tokke", "vinje"], ["core"], None, []).targets == ["core"]
    s = select(MODEL, ["core", "tokke", "vinje"], ["core", "vinje"], None, [])
    assert s.targets == ["core", "vinje"]


def test_unknown_municipality_is_refused() -> None:
    with pytest.raises(SelectionError, match="no inventory file for bo"):
        select(MODEL, [], ["bo"], None, [])


@pytest.mark.parametrize(("changed", "targets"), [
    # Vinje subscribes to hosted services: the core is applied too, to size its hosting.
    (["inventories/vinje.yaml"], ["core", "vinje"]),
    (["inventories/vinje.yaml", "README.md", "inventories/tokke.yaml"],
     ["core", "tokke", "vinje"]),
    (["docs/inventory.md"], []),
    (["inventories/operations-centre.yaml"], ["core", "tokke", "vinje"]),
    (["stacks/components.py"], ["core", "tokke", "vinje"]),
])
def test_only_changed(changed: list[str], targets: list[str]) -> None:
    assert select(MODEL, ["core", "tokke", "vinje"], [], changed, []).targets == targets


def test_only_changed_leaves_the_core_alone_for_a_municipality_without_hosted_services(
        ) -> None:
    model = _without_services(MODEL, "vinje", {"gis", "okonomi"})
    chosen = select(model, ["core", "tokke", "vinje"], [], ["inventories/vinje.yaml"], [])
    assert (chosen.targets, chosen.core) == (["vinje"], False)
    sized = select(MODEL, ["core", "tokke", "vinje"], [], ["inventories/vinje.yaml"], [])
    assert (sized.sizes_core, sized.core) == (True, False)  # applied, but not every host


def test_a_stack_without_its_file_is_destroyed_only_when_named() -> None:
    existing = ["core", "hjartdal", "tokke", "vinje"]
    with pytest.raises(SelectionError, match="--destroy-municipality hjartdal"):
        select(MODEL, existing, [], None, [])
    assert select(MODEL, existing, [], None, ["hjartdal"]).destroy == ["hjartdal"]


def test_destroying_a_municipality_that_still_has_its_file_is_refused() -> None:
    with pytest.raises(SelectionError, match="remove the file first"):
        select(MODEL, ["core", "tokke", "vinje"], [], None, ["vinje"])


# --- Which hosts a municipality selection touches (fellesdrift/plan/affected.py) --------------

def _host(name: str, *groups: str) -> Host:
    return Host(name, f"unit-{name}", groups, "10.104.0.1", "ops", 22, "ssh-ed25519 AAAA")


CENTRE = [_host("core-router", "core_router", "centre"),
          _host("apt-proxy", "apt_proxy", "centre"),
          _host("katalog", "dns_ntp", "centre"),
          _host("overvaking", "monitoring", "centre"),
          _host("gis-01", "gis_hosting", "centre"),
          _host("okonomi-01", "finance_hosting", "centre")]


def _site_hosts(model: Inventory) -> list[Host]:
    return [_host(f"{m.slug}-{s.id}-{kind}", f"site_{kind}", f"municipality_{m.slug}",
                  f"site_{m.slug}-{s.id}")
            for m in model.municipalities for s in m.sites for kind in ("router", "client")]


HOSTS = CENTRE + _site_hosts(MODEL)


def _names(hosts: list[Host]) -> set[str]:
    return {h.name for h in hosts}


def _without_services(model: Inventory, slug: str, services: set[str]) -> Inventory:
    return model.model_copy(update={"municipalities": [
        m.model_copy(update={"services": [s for s in m.services if s.service not in services]})
        if m.slug == slug else m for m in model.municipalities]})


def test_a_municipality_touches_its_sites_and_the_centre_hosts_rendered_from_it() -> None:
    vinje = {h.name for h in HOSTS if "municipality_vinje" in h.groups}
    assert vinje and all(n.startswith("vinje-") for n in vinje)
    # vinje subscribes to GIS and finance: both hosting servers hold its database.
    assert _names(affected.hosts(MODEL, HOSTS, ["vinje"])) == vinje | {
        "core-router", "katalog", "overvaking", "gis-01", "okonomi-01"}


def test_a_hosting_server_is_touched_only_by_its_subscribers() -> None:
    model = _without_services(MODEL, "vinje", {"okonomi"})
    touched = _names(affected.hosts(model, HOSTS, ["vinje"]))
    assert "gis-01" in touched and "okonomi-01" not in touched
    model = _without_services(MODEL, "vinje", {"gis", "okonomi"})
    touched = _names(affected.hosts(model, HOSTS, ["vinje"]))
    assert not touched & {"gis-01", "okonomi-01", "apt-proxy"}
    assert not any(n.startswith("tokke-") for n in touched)


def test_a_removed_municipality_touches_every_hosting_server() -> None:
    model = MODEL.model_copy(update={"municipalities": [
        m for m in MODEL.municipalities if m.slug != "tokke"]})
    every = CENTRE + _site_hosts(model)
    assert _names(affected.hosts(model, every, [], removed=["tokke"])) == {
        "core-router", "katalog", "overvaking", "gis-01", "okonomi-01"}


def test_no_municipality_touches_nothing() -> None:
    assert affected.hosts(MODEL, HOSTS, []) == []


def test_the_neighbours_are_the_other_municipalities_clients() -> None:
    assert _names(affected.neighbours(HOSTS, ["vinje"])) == {
        h.name for h in HOSTS if "municipality_tokke" in h.groups and "site_client" in h.groups}


@pytest.mark.parametrize("services", [set(), {"gis"}, {"okonomi"}, {"gis", "okonomi"}])
def test_exactly_the_centre_hosts_whose_configuration_depends_on_the_municipality(
        services: set[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Render every centre host's configuration (role variables, router configuration) with
    and without vinje: the centre hosts that differ are exactly the ones vinje touches."""
    monkeypatch.setattr("fellesdrift.paths.LAB_DIR", tmp_path)
    monkeypatch.setattr("fellesdrift.access.credentials.lab_dir", lambda env: tmp_path / env)
    monkeypatch.setattr("fellesdrift.access.pki.lab_dir", lambda env: tmp_path / env)
    with_vinje = _without_services(MODEL, "vinje", {"gis", "okonomi"} - services)
    without = with_vinje.model_copy(update={"municipalities": [
        m for m in with_vinje.municipalities if m.slug != "vinje"]})

    def configuration(model: Inventory) -> dict[str, object]:
        every = CENTRE + _site_hosts(model)
        rendered: dict[str, object] = dict(hostvars.render(model, "unit", every, "key"))
        rendered["core-router"] = (rendered["core-router"],
                                   intended.render(model, "core-router", "frr"))
        return rendered

    before, after = configuration(without), configuration(with_vinje)
    differ = {h.name for h in CENTRE if before[h.name] != after[h.name]}
    touched = _names(affected.hosts(with_vinje, CENTRE + _site_hosts(with_vinje), ["vinje"]))
    assert differ == touched & _names(CENTRE)


def test_naming_a_removed_municipality_selects_only_its_removal() -> None:
    s = select(MODEL, ["core", "hjartdal", "tokke", "vinje"], ["hjartdal"], None, ["hjartdal"])
    assert (s.core, s.municipalities, s.destroy) == (False, [], ["hjartdal"])
    assert _names(s.hosts(MODEL, HOSTS)) == {"core-router", "katalog", "overvaking", "gis-01",
                                              "okonomi-01"}
