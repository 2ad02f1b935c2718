"""Role inputs rendered from the model and the hosts: what each host's roles are told."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from fellesdrift.access.credentials import Secret
from fellesdrift.converge import hostvars
from fellesdrift.inventory import load as inventory
from fellesdrift.plan.functions import FUNCTIONS
from fellesdrift.provision.hosts import Host

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "inventories"
GOLDEN = Path(__file__).parent / "golden" / "hostvars" / "fixtures.yml"
UPDATE = os.environ.get("FELLESDRIFT_UPDATE_GOLDEN") == "1"


def _host(name: str, address: str, *groups: str) -> Host:
    return Host(name, f"unit-{name}", groups, address, "ops", 22, "ssh-ed25519 AAAA")


HOSTS = [
    _host("core-router", "10.104.0.1", "core_router", "centre"),
    _host("apt-proxy", "10.104.0.130", "apt_proxy", "centre"),
    _host("katalog", "10.104.0.140", "dns_ntp", "centre"),
    _host("overvaking", "10.104.0.150", "monitoring", "centre"),
    _host("gis-01", "10.104.0.160", "gis_hosting", "centre"),
    _host("okonomi-01", "10.104.0.170", "finance_hosting", "centre"),
    _host("vinje-radhus-router", "10.104.1.1", "site_router", "municipality_vinje",
          "site_vinje-radhus"),
    _host("vinje-radhus-client", "10.104.1.10", "site_client", "municipality_vinje",
          "site_vinje-radhus"),
    _host("tokke-skule-router", "10.104.2.1", "site_router", "municipality_tokke",
          "site_tokke-skule"),
    _host("tokke-skule-client", "10.104.2.10", "site_client", "municipality_tokke",
          "site_tokke-skule"),
]


@pytest.fixture
def rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    monkeypatch.setattr("fellesdrift.paths.LAB_DIR", tmp_path)
    monkeypatch.setattr("fellesdrift.access.credentials.lab_dir", lambda env: tmp_path / env)
    monkeypatch.setattr("fellesdrift.access.pki.lab_dir", lambda env: tmp_path / env)
    model = inventory.load([FIXTURES])
    return hostvars.render(model, "unit", HOSTS, "ssh-ed25519 AAAA netops")


def test_every_host_installs_through_the_apt_proxy_but_the_proxy_itself(
        rendered: dict[str, dict[str, Any]]) -> None:
    for name, v in rendered.items():
        want = "" if name == "apt-proxy" else "http://10.104.0.130:3142"
        assert v["common__apt_proxy_url"] == want, name


def test_sites_resolve_and_sync_time_at_the_centre(rendered: dict[str, dict[str, Any]]) -> None:
    client = rendered["vinje-radhus-client"]
    assert client["common__dns_servers"] == ["10.104.0.140"]
    assert client["common__ntp_servers"] == ["10.104.0.140"]
    assert rendered["katalog"]["common__ntp_servers"] == []  # not its own upstream


def test_dns_knows_every_host_and_the_service_names(rendered: dict[str, dict[str, Any]]) -> None:
    records = {r["name"]: r["address"] for r in rendered["katalog"]["dns_ntp__records"]}
    assert {h.name for h in HOSTS} <= set(records)
    assert records["gis"] == "10.104.0.160" and records["okonomi"] == "10.104.0.170"


def test_hosted_services_get_one_database_per_subscriber(
        rendered: dict[str, dict[str, Any]]) -> None:
    gis = rendered["gis-01"]["gis_hosting__municipalities"]
    assert sorted(m["database"] for m in gis) == ["gis_tokke", "gis_vinje"]
    finance = {m["slug"]: m for m in rendered["okonomi-01"]["finance_hosting__municipalities"]}
    assert finance["vinje"]["networks"] == ["10.104.1.0/24"]
    assert finance["vinje"]["password"] != finance["tokke"]["password"]
    assert "BEGIN CERTIFICATE" in rendered["okonomi-01"]["finance_hosting__tls_cert"]


def test_passwords_are_stable_between_renders(tmp_path: Path,
                                              rendered: dict[str, dict[str, Any]],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    again = hostvars.render(inventory.load([FIXTURES]), "unit", HOSTS, "k")
    assert again["gis-01"]["gis_hosting__municipalities"] == \
        rendered["gis-01"]["gis_hosting__municipalities"]


def test_a_site_must_not_reach_other_municipalities(rendered: dict[str, dict[str, Any]]) -> None:
    foreign = rendered["vinje-radhus-client"]["site_client__foreign_hosts"]
    assert {h["municipality"] for h in foreign} == {"tokke"}
    assert {h["name"] for h in foreign} == {"tokke-skule-router", "tokke-skule-client"}


def test_monitoring_probes_every_subscribed_endpoint_with_its_target(
        rendered: dict[str, dict[str, Any]]) -> None:
    probes = rendered["overvaking"]["monitoring__probes"]
    assert {(p["municipality"], p["service"]) for p in probes} == {
        ("vinje", "gis"), ("vinje", "okonomi"), ("tokke", "gis"), ("tokke", "okonomi")}
    assert all(p["availability_percent"] == 99.5 for p in probes)


@pytest.mark.parametrize("role", ["common", "apt_proxy", "dns_ntp", "gis_hosting",
                                  "finance_hosting", "monitoring", "site_router", "site_client"])
def test_every_rendered_input_is_documented_in_the_role(
        rendered: dict[str, dict[str, Any]], role: str) -> None:
    spec = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    documented = set(spec["argument_specs"]["main"]["options"] or {})
    given = {k for v in rendered.values() for k in v if k.startswith(f"{role}__")}
    assert given <= documented, f"undocumented inputs of {role}: {given - documented}"


def test_every_site_link_has_its_own_iperf3_server_on_the_core(
        rendered: dict[str, dict[str, Any]]) -> None:
    servers = rendered["core-router"]["site_router__iperf3_servers"]
    clients = {n: v["site_client__link"] for n, v in rendered.items() if n.endswith("-client")}
    assert sorted(c["iperf3_server"] for c in clients.values()) == sorted(servers)
    assert len(set(servers)) == len(clients) == 2  # one each, none shared
    for name, link in clients.items():
        # The core's end of this site's own /30: the measurement crosses exactly its link.
        router = rendered[name.replace("-client", "-router")]
        assert link["iperf3_port"] == rendered["core-router"]["site_router__iperf3_port"]
        assert router["site_router__iperf3_servers"] == []
        address = ipaddress.IPv4Address(link["iperf3_server"])
        assert address in ipaddress.IPv4Network("10.104.252.0/22")  # the centre's links range
        assert int(address) % 4 == 1  # the first address of a /30: the core's end


def test_every_host_function_has_its_role_variables_and_nothing_else_does() -> None:
    assert set(hostvars.BUILDERS) == set(FUNCTIONS)


def test_every_function_of_a_host_gets_its_roles_inputs(
        rendered: dict[str, dict[str, Any]]) -> None:
    # A host of each function is told the role of its function and gets that role's inputs.
    for h in HOSTS:
        v = rendered[h.name]
        role = FUNCTIONS[h.groups[0]].role
        assert v["fellesdrift_role"] == role, h.name
        assert any(k.startswith(f"{role}__") for k in v), h.name


def test_the_lab_and_the_common_role_apply_the_one_kernel_baseline(
        rendered: dict[str, dict[str, Any]]) -> None:
    from stacks.drivers.lab import kernel_baseline

    for name, v in rendered.items():
        given = {k: str(value) for k, value in v["common__sysctl_settings"].items()}
        assert given == kernel_baseline(), name
    assert kernel_baseline()["net.ipv4.tcp_syncookies"] == "1"
    # The role keeps no copy of the values to drift from the lab's.
    defaults = yaml.safe_load((ROOT / "roles" / "common" / "defaults" / "main.yml").read_text())
    assert not any(k.startswith("common__sysctl_settings") for k in defaults)


# --- The roles' conventions (docs/roles.md, "Conventions") -----------------------------------

ROLE_NAMES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.exists() else None


def _tasks(role: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for t in items:
            found.append(t)
            for key in ("block", "rescue", "always"):
                walk(t.get(key) or [])
    for path in sorted((ROOT / "roles" / role).glob("*/*.yml")):
        if path.parent.name in ("tasks", "handlers"):
            walk(_yaml(path) or [])
    return found


def test_the_roles_are_the_functions_roles_and_the_baseline() -> None:
    assert set(ROLE_NAMES) == {f.role for f in FUNCTIONS.values()} | {"common", "node_exporter"}


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_variable_a_role_sets_is_in_its_namespace(role: str) -> None:
    prefix = f"{role}__"
    names: set[str] = set()
    for part in ("defaults", "vars"):
        names |= set(_yaml(ROOT / "roles" / role / part / "main.yml") or {})
    for t in _tasks(role):
        names |= set(t.get("vars") or {})
        if "register" in t:
            names.add(t["register"])
        for module in ("ansible.builtin.set_fact", "set_fact"):
            names |= {k for k in (t.get(module) or {}) if k != "cacheable"}
    outside = sorted(n for n in names if not n.startswith(prefix))
    assert names and not outside, f"{role}: variables outside {prefix}: {outside}"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_variable_of_a_role_it_names_is_defined_and_none_shadows_an_input(
        role: str) -> None:
    spec = _yaml(ROOT / "roles" / role / "meta" / "argument_specs.yml")
    inputs = set(spec["argument_specs"]["main"]["options"] or {})
    derived = set(_yaml(ROOT / "roles" / role / "vars" / "main.yml") or {})
    local: set[str] = set()
    for t in _tasks(role):
        task_vars = set(t.get("vars") or {})
        assert not task_vars & (inputs | derived), f"{t['name']}: shadows {task_vars & inputs}"
        local |= task_vars | {t["register"]} if "register" in t else task_vars
        for module in ("ansible.builtin.set_fact", "set_fact"):
            local |= set(t.get(module) or {})
        local |= {(t.get("loop_control") or {}).get("loop_var", "item")}
    named: set[str] = set()
    for path in (ROOT / "roles" / role).rglob("*"):
        if path.is_file() and path.suffix in (".yml", ".j2") and path.parent.name != "meta":
            named |= set(re.findall(rf"\b{role}__[a-z0-9_]+", path.read_text()))
    undefined = sorted(named - inputs - derived - local)
    assert not undefined, f"{role}: named but never defined: {undefined}"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_default_is_documented_and_typed_in_the_argument_specs(role: str) -> None:
    spec = _yaml(ROOT / "roles" / role / "meta" / "argument_specs.yml")
    options: dict[str, Any] = spec["argument_specs"]["main"]["options"] or {}
    defaults: dict[str, Any] = _yaml(ROOT / "roles" / role / "defaults" / "main.yml") or {}
    for name, option in options.items():
        assert option.get("type") and option.get("description"), f"{name}: no type/description"
        if name in defaults:
            assert option.get("default") == defaults[name], f"{name}: default out of step"
        else:
            assert option.get("required") is True, f"{name}: neither a default nor required"
    assert set(defaults) <= set(options), f"undocumented: {set(defaults) - set(options)}"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_templates_mirror_the_path_they_are_written_to(role: str) -> None:
    templates = ROOT / "roles" / role / "templates"
    sources = {str(p.relative_to(templates)) for p in templates.rglob("*.j2")}
    assert all(s.split("/")[0] in ("etc", "usr", "var") for s in sources), sources
    for t in _tasks(role):
        args = t.get("ansible.builtin.template")
        if args and "{{" not in str(args["dest"]):
            assert args["src"] == str(args["dest"]).lstrip("/") + ".j2", t["name"]


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_default_is_documented_where_it_is_set(role: str) -> None:
    lines = (ROOT / "roles" / role / "defaults" / "main.yml").read_text().splitlines()
    header = next(i for i, line in enumerate(lines[1:], 1) if not line.startswith("#"))
    bare = [line.split(":")[0] for i, line in enumerate(lines)
            if i >= header and line[:1].isalpha()
            and not (lines[i - 1].startswith("#") and not lines[i - 1].startswith("# ---"))]
    assert not bare, f"defaults with no comment right above them: {bare}"


def test_what_every_host_gets_is_written_once_and_every_host_still_has_it(
        rendered: dict[str, dict[str, Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import VaultSecret
    from ansible.vars.manager import VariableManager

    from fellesdrift.access import credentials
    from fellesdrift.provision import hosts

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "unit-test passphrase")
    monkeypatch.delenv(credentials.PASSPHRASE_SOCKET, raising=False)
    (tmp_path / "unit").mkdir(exist_ok=True)
    written = hosts.ansible_inventory("unit", HOSTS, rendered)
    ca = rendered["apt-proxy"]["common__ca_certificates"][0]["pem"]
    text = written.read_text()
    # The lab's CA certificate once (all.vars), not once per host.
    assert text.count(ca.splitlines()[1]) == 1
    loader = DataLoader()
    loader.set_vault_secrets([("default", VaultSecret(b"unit-test passphrase"))])
    managed = InventoryManager(loader=loader, sources=[str(written)])
    manager = VariableManager(loader=loader, inventory=managed)
    for h in HOSTS:
        seen = manager.get_vars(host=managed.get_host(h.name), include_hostvars=False)
        for name in ("common__ca_certificates", "common__sysctl_settings", "fellesdrift_domain",
                     "common__dns_servers", "fellesdrift_function"):
            assert seen[name] == rendered[h.name][name], (h.name, name)


def _stable(value: Any) -> Any:
    """The rendered value without what each lab makes anew: secrets, certificates."""
    if isinstance(value, Secret):
        return "<secret>"
    if isinstance(value, str) and "-----BEGIN" in value:
        return "<pem>"
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def test_golden(rendered: dict[str, dict[str, Any]]) -> None:
    """Every variable of every host of the fixtures, as the roles get it (secrets and
    certificates masked): a renamed, lost or changed input shows here first."""
    text = yaml.safe_dump(_stable(rendered), sort_keys=True, allow_unicode=True, width=100)
    if UPDATE:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), f"{GOLDEN} missing: run with FELLESDRIFT_UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "the role variables differ from their golden file; if intended, regenerate with "
        "FELLESDRIFT_UPDATE_GOLDEN=1")


def test_every_hosts_roles_accept_what_it_is_given(rendered: dict[str, dict[str, Any]]) -> None:
    """Each role's argument specs, as Ansible checks them before the role runs, accept each
    host's rendered inputs over the role's defaults: types, required inputs, choices."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    for h in HOSTS:
        given = rendered[h.name]
        for role in ("common", "node_exporter", given["fellesdrift_role"]):
            spec = _yaml(ROOT / "roles" / role / "meta" / "argument_specs.yml")
            options = spec["argument_specs"]["main"]["options"]
            defaults = _yaml(ROOT / "roles" / role / "defaults" / "main.yml") or {}
            inputs = {k: v for k, v in (defaults | given).items() if k in options}
            result = ArgumentSpecValidator(options).validate(inputs)
            assert not result.error_messages, (h.name, role, result.error_messages)
