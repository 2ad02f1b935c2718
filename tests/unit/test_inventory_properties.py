"""Properties: whatever a file holds, the loader answers with a model or its own error, and every
problem points at a line of the file."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from unittest.mock import patch

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fellesdrift import paths
from fellesdrift.converge import hostvars
from fellesdrift.inventory import load as inventory
from fellesdrift.inventory import model
from fellesdrift.inventory.load import InventoryError
from fellesdrift.inventory.model import Inventory
from fellesdrift.network import config, intended
from fellesdrift.plan import naming, topology
from fellesdrift.provision import stacks as provision
from fellesdrift.provision.hosts import Host
from fellesdrift.report import report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inventories"
VINJE = yaml.safe_load((FIXTURES / "vinje.yaml").read_text())
CENTRE = yaml.safe_load((FIXTURES / "operations-centre.yaml").read_text())

# FD_EXAMPLES=5000 for a long run; 150 keeps the unit tier fast.
SETTINGS = settings(max_examples=int(os.environ.get("FD_EXAMPLES", "150")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def folder(files: dict[str, bytes]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        shutil.copy(FIXTURES / "operations-centre.yaml", path)
        for name, data in files.items():
            (path / name).write_bytes(data)
        yield path


def yaml_lines(data: bytes) -> int:
    """Lines as YAML counts them: besides \\n, also \\r, NEL, LS and PS end a line."""
    text = data.decode("utf-8", errors="replace")
    return len(re.split("\r\n|[\r\n\x85\u2028\u2029]", text))


def load_or_error(files: dict[str, bytes]) -> Inventory | InventoryError:
    """Load; any exception other than InventoryError fails the test."""
    with folder(files) as path:
        try:
            return inventory.load([path])
        except InventoryError as e:
            for p in e.problems:
                data = files.get(Path(p.file).name)
                if data is not None:
                    assert 1 <= p.line <= yaml_lines(data), str(p)
                    assert p.column >= 1
                assert p.rule and p.message, str(p)
            return e


# Text that looks a little like YAML is likelier to reach deep into the loader than noise.
yamlish = st.text(alphabet=st.sampled_from(
    list("abcyYnNo01789 \t\n:-[]{},&*!|>'\"#%@`?~._/+\\") + ["\u00e5", "\x00", "\ufeff", "\x85"]),
    max_size=300)


@SETTINGS
@given(st.one_of(st.text(max_size=300), yamlish))
def test_arbitrary_text(text: str) -> None:
    load_or_error({"vinje.yaml": text.encode("utf-8", "surrogatepass")})


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    load_or_error({"vinje.yaml": data})


@SETTINGS
@given(yamlish)
def test_arbitrary_centre(text: str) -> None:
    load_or_error({"operations-centre.yaml": text.encode("utf-8", "surrogatepass")})


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    st.sampled_from(["NO", "yes", "on", "0402", "1:30", "1_000", "0x1F", "1.10", "2024-02-30",
                     "2024-05-10", "TODO", "10.104.1.0/24", "~", "<<", "!!str", "*a", "&a"]),
    st.dates())
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


@SETTINGS
@given(values, st.booleans())
def test_arbitrary_yaml(value: Any, flow: bool) -> None:
    text = yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True)
    load_or_error({"vinje.yaml": text.encode()})


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = _replace(data[path[0]], path[1:], value)
    return copy


@SETTINGS
@given(st.data(), st.booleans())
def test_one_field_of_a_valid_file_replaced_by_anything(data: st.DataObject, quote: bool) -> None:
    """Changing one value anywhere in a valid file gives a model or problems at real lines."""
    path = data.draw(st.sampled_from(_paths(VINJE)[1:]))
    value = data.draw(values)
    changed = _replace(VINJE, path, value)
    text = yaml.safe_dump(changed, sort_keys=False, allow_unicode=True,
                          default_style='"' if quote else None)
    result = load_or_error({"vinje.yaml": text.encode()})
    if isinstance(result, InventoryError):
        assert result.problems


def test_the_untouched_file_loads() -> None:
    text = yaml.safe_dump(VINJE, sort_keys=False, allow_unicode=True)
    result = load_or_error({"vinje.yaml": text.encode(), "tokke.yaml":
                            (FIXTURES / "tokke.yaml").read_bytes()})
    assert isinstance(result, Inventory), result
    assert CENTRE["schema_version"] == 2


# --- Valid inventories render in every phase -------------------------------------------------
#
# For generated valid inventories (awkward but legal text included: quotes, backslashes, #, ;,
# <, &, non-ASCII), every phase's output renders without an exception, and a router
# configuration has exactly the lines the same inventory has with plain text: no value adds a
# line the inventory did not mean.

RENDER_SETTINGS = settings(max_examples=int(os.environ.get("FD_RENDER_EXAMPLES", "8")),
                           deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENV = "unit"


class DUMPER(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]  # noqa: N801
    """Every string double-quoted, as a municipality writing text should: PyYAML leaves some
    plain (`n`, `y`, `00:00`) that YAML 1.1 reads as booleans or base-60 numbers, and the
    loader refuses those on purpose (tests/unit/bad_inventories)."""


DUMPER.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style='"'))
AWKWARD = "\"'\\#;<>&$`|!%{}[]*?~=,:@^()/\u00e6\u00f8\u00e5\u00c6\u00d8\u00c5\u00e9\u00fc\u00a0"


class Free(str):
    """A generated free text (so the plain twin of an inventory can replace it)."""

    __slots__ = ()


def _legal(text: str) -> bool:
    return model.text_problem(text) is None and not text.startswith(inventory.PLACEHOLDER)


# Letters, digits, punctuation, symbols and spaces of any script, plus the awkward ASCII.
free_text = st.text(
    alphabet=st.one_of(st.characters(categories=("L", "M", "N", "P", "S", "Zs")),
                       st.sampled_from(AWKWARD)),
    min_size=1, max_size=30).filter(_legal).map(Free)
#: A site's name describes its LAN on its router, whose command line takes no '?'.
site_names = free_text.filter(lambda t: not set(t) & set(model.ROUTER_TEXT_REFUSED))
site_ids = st.from_regex(r"[a-z][a-z0-9]{1,8}", fullmatch=True)
SLUGS = ["vinje", "tokke", "seljord", "kviteseid", "nissedal"]
PLATFORMS = ["cisco_ios", "juniper_junos", "linux", "mikrotik_routeros"]


@st.composite
def municipalities(draw: st.DrawFn, text: st.SearchStrategy[str]) -> list[dict[str, Any]]:
    slugs = draw(st.lists(st.sampled_from(SLUGS), min_size=1, max_size=3, unique=True))
    # One /24 of 10.104.1.0–10.104.249.0 per site (the fixture centre's plan), any length.
    blocks = iter(draw(st.lists(st.integers(1, 249), min_size=9, max_size=9, unique=True)))
    out = []
    vlan = 100
    for n, slug in enumerate(slugs):
        sites = []
        for sid in draw(st.lists(site_ids, min_size=1, max_size=3, unique=True)):
            vlan += 1
            site: dict[str, Any] = {
                "id": sid, "name": draw(site_names), "kind": "school", "address": draw(text),
                "users": draw(st.integers(0, 500)),
                "lan_prefix": f"10.104.{next(blocks)}.0/{draw(st.integers(24, 28))}",
                "link": {"access": "fibre", "provider": "vtk", "down_mbps": 1000,
                         "up_mbps": 1000, "vlan": vlan}}
            if draw(st.booleans()):
                site["device"] = {"platform": draw(st.sampled_from(PLATFORMS)),
                                  "model": draw(text), "serial": f"SER{vlan:05d}X",
                                  "installed": "2023-05-02", "lease_end": "2028-05-01"}
            sites.append(site)
        services = draw(st.lists(st.sampled_from(["drift", "breiband", "gis", "okonomi"]),
                                 unique=True))
        out.append({
            "schema_version": 2, "code": f"{4001 + n}", "name": draw(text), "slug": slug,
            "contacts": [{"name": draw(text), "role": "it", "email": f"it@{slug}.kommune.no"}],
            "services": [{"service": s, "tier": "standard"} for s in services],
            "users": {"administration": draw(st.integers(0, 2000)),
                      "technical": draw(st.integers(0, 200))},
            "sites": sites})
    return out


@st.composite
def centres(draw: st.DrawFn, text: st.SearchStrategy[str]) -> dict[str, Any]:
    centre = yaml.safe_load((FIXTURES / "operations-centre.yaml").read_text())
    centre["name"] = draw(text.filter(lambda t: len(t.encode()) <= 40))
    centre["address_plan"]["routing"] = {"protocol": draw(st.sampled_from(["bgp", "static"]))}
    for level in centre["service_levels"]:
        level["name"], level["support_hours"] = draw(text), draw(text)
    for service in centre["services"]:
        service["name"] = draw(text)
    for provider in centre["providers"]:
        provider["name"], provider["handoff"] = draw(text), draw(text)
    return centre


def _plain(data: Any, plain: bool) -> Any:
    """The data as plain Python values; with ``plain``, every generated free text as `x`."""
    if isinstance(data, dict):
        return {k: _plain(v, plain) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v, plain) for v in data]
    if isinstance(data, Free):
        return "x" if plain else str(data)
    return data


@contextmanager
def written(centre: dict[str, Any], munis: list[dict[str, Any]]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        for name, data in [("operations-centre.yaml", centre),
                           *((f"{m['slug']}.yaml", m) for m in munis)]:
            (path / name).write_text(yaml.dump(data, Dumper=DUMPER, sort_keys=False,
                                               allow_unicode=True, width=1 << 20))
        yield path


def _hosts(m: Inventory) -> list[Host]:
    """The hosts the stacks declare for this model, as their outputs describe them."""
    def host(name: str, address: str, *groups: str) -> Host:
        return Host(name, naming.machine(ENV, name), groups, address, "ops", 22,
                    "ssh-ed25519 AAAA")
    nets = topology.centre_networks(m.centre)
    out = [host(naming.CORE_ROUTER, nets[0].router, "core_router", naming.CENTRE_GROUP)]
    for h in m.centre.shared_hosts:
        function = topology.SHARED_FUNCTIONS.get(h.role)
        if function is not None:
            out.append(host(h.hostname, h.address, function, naming.CENTRE_GROUP))
    for mu in m.municipalities:
        for s in mu.sites:
            groups = (naming.municipality_group(mu.slug), naming.site_group(mu.slug, s.id))
            out.append(host(naming.site_router(mu.slug, s.id), topology.nth(s.lan_prefix, 1),
                            "site_router", *groups))
            out.append(host(naming.site_client(mu.slug, s.id), topology.nth(s.lan_prefix, 10),
                            "site_client", *groups))
    return out


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@contextmanager
def lab(tmp: Path) -> Iterator[None]:
    with patch.object(paths, "LAB_DIR", tmp / ".lab"), \
            patch.dict(os.environ, {"PULUMI_CONFIG_PASSPHRASE": "unit-test-passphrase"}):
        yield


def _every_config(m: Inventory) -> dict[tuple[str, str], str]:
    return {(platform, name): intended.render(m, name, platform)
            for name in intended.devices(m) for platform in intended.PLATFORMS}


@RENDER_SETTINGS
@given(st.data())
def test_valid_inventories_render_every_phase(data: st.DataObject) -> None:
    centre = data.draw(centres(free_text))
    munis = data.draw(municipalities(free_text))
    with written(_plain(centre, False), _plain(munis, False)) as folder, written(
            _plain(centre, True), _plain(munis, True)) as plain_folder:
        m = inventory.load([folder])
        plain = inventory.load([plain_folder])

        # Router configurations: the lines of plain text, no more.
        configs, plain_configs = _every_config(m), _every_config(plain)
        for key, text in configs.items():
            assert len(text.split("\n")) == len(plain_configs[key].split("\n")), key
            assert len(text.splitlines()) == len(plain_configs[key].splitlines()), key
        sites = [s for mu in m.municipalities for s in mu.sites]
        core = config.parse(configs["frr", intended.CORE])
        assert len([p for p in core if len(p) == 1 and p[0].startswith("interface ")]) == \
            len(topology.centre_networks(m.centre)) + len(sites)
        for mu in m.municipalities:
            for s in mu.sites:
                paths_ = config.parse(configs["frr", naming.site_router(mu.slug, s.id)])
                assert len([p for p in paths_ if len(p) == 1]) == len(
                    [p for p in config.parse(plain_configs["frr", naming.site_router(
                        mu.slug, s.id)]) if len(p) == 1])

        # What the stacks are given and compute: each stack loads the centre and its own file.
        links = []
        for mu in m.municipalities:
            alone = inventory.load([folder / inventory.CENTRE_FILE, folder / f"{mu.slug}.yaml"])
            assert alone.municipality(mu.slug) == mu
            assert provision.stack_name(ENV, mu.slug) == naming.stack(ENV, mu.slug)
            links += [topology.link_subnet(alone.centre, s) for s in mu.sites]
        assert len(set(links)) == len(links) == len(sites)
        for h in m.centre.shared_hosts:
            topology.network_of(m.centre, h.address)
        topology.hosting_size(m, "gis_hosting")

        # Role variables and the report, on a lab of their own.
        with tempfile.TemporaryDirectory() as tmp, lab(Path(tmp)):
            hosts = _hosts(m)
            variables = hostvars.render(m, ENV, hosts, "ssh-ed25519 AAAA netops")
            assert set(variables) == {h.name for h in hosts}
            gis = next((v for v in variables.values() if "gis_hosting__municipalities" in v), {})
            for entry in gis.get("gis_hosting__municipalities", []):
                assert entry["name"] == m.municipality(entry["slug"]).name
            out = report.write(m, ENV, Path(tmp) / "report")
            parser = _Text()
            parser.feed(out.html.read_text())
            parser.close()
            shown = "".join(parser.text)
            for mu in m.municipalities:
                assert mu.name in shown
