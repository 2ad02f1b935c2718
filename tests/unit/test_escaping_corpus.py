"""Legal but hostile values, rendered through every destination and parsed back.

The corpus: an inventory whose free text holds quotes, backslashes, comment and block
characters, markup, shell and Jinja-free template characters and non-ASCII letters (all legal:
validate refuses only line breaks, control/format characters and Jinja markers). Each
destination's output is *parsed* with that destination's rules (vtysh itself for FRR, a
tokenizer that follows the server's own for pg_hba.conf, mapfiles, nginx, Junos, and
Python's HTML parser for the report) and compared with the same inventory under plain names:
the structure is identical, and every hostile value comes back literally, only where it was
meant to be.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecret
from ansible.plugins.loader import add_all_plugin_dirs
from ansible.template import Templar, generate_ansible_template_vars, trust_as_template
from ansible.vars.manager import VariableManager
from markdown_it import MarkdownIt
from test_hostvars import HOSTS  # the centre's and two sites' hosts
from test_network_templates import vtysh_dryrun

from fellesdrift import paths, syntax
from fellesdrift.access import credentials
from fellesdrift.converge import hostvars
from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import Inventory
from fellesdrift.network import config, intended
from fellesdrift.provision import hosts
from fellesdrift.report import report

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "inventories"

#: Every printable character some destination treats as syntax, and non-ASCII letters.
MUNICIPALITY = ("Vinje \"kommune\" 'x' \\ # ; } { <script>alert(1)</script> | $HOME %s æøå & "
                "`tick` *b* _i_ [l](u) !x ~s~ -- /* c */ &amp; @all")
#: Ends in a backslash (a pg_hba.conf line that ends so continues on the next one).
MUNICIPALITY_2 = "Tokke ' \" ; # } all \\"
#: A site name reaches the routers, whose CLI has no way to write '?' or '|' (validate refuses
#: them there: fellesdrift.syntax.UNREPRESENTABLE).
SITE = "Rådhus \"A\" 'B' ; ! # } <b>x</b> $x %% &amp; \\n end !  two  spaces \\"
SITE_2 = "# skule } { ; exit"
ADDRESS = "Vegen 1 <i>&lt;</i> \"x\" | `y` \\"
CENTRE = "Senter \"<x>\" & 'y' | \\"
SERVICE = "GIS & kart <svg onload=x> | *z*"


def _hostile(folder: Path) -> Path:
    shutil.copytree(FIXTURES, folder)

    def edit(name: str, change: Any) -> None:
        path = folder / name
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")

    def vinje(d: dict[str, Any]) -> None:
        d["name"] = MUNICIPALITY
        d["sites"][0].update(name=SITE, address=ADDRESS)
        d["contacts"][0]["name"] = SERVICE

    def tokke(d: dict[str, Any]) -> None:
        d["name"] = MUNICIPALITY_2
        d["sites"][0]["name"] = SITE_2
        d["sites"][0]["device"]["model"] = "C1111 | <4P> *"

    def centre(d: dict[str, Any]) -> None:
        d["name"] = CENTRE
        d["services"][2]["name"] = SERVICE
        d["service_levels"][0]["support_hours"] = "08-16 | <b> `x` #"

    edit("vinje.yaml", vinje)
    edit("tokke.yaml", tokke)
    edit("operations-centre.yaml", centre)
    return folder


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    return inventory.load([_hostile(tmp_path_factory.mktemp("corpus") / "inventories")])


@pytest.fixture(scope="module")
def clean() -> Inventory:
    return inventory.load([FIXTURES])


def test_the_corpus_is_legal_and_reaches_the_model(hostile: Inventory) -> None:
    assert hostile.municipality("vinje").name == MUNICIPALITY
    assert hostile.municipality("vinje").sites[0].name == SITE
    assert hostile.municipality("tokke").name == MUNICIPALITY_2
    assert hostile.centre.name == CENTRE


# --- Routers ---------------------------------------------------------------------------------

SITE_ROUTERS = ("vinje-radhus-router", "tokke-skule-router")


def _descriptions(paths_: list[config.Path]) -> list[str]:
    return [p[-1] for p in paths_ if p[-1].startswith("description ")]


@pytest.mark.skipif(shutil.which("vtysh") is None, reason="FRR (vtysh) is not installed here")
def test_frr_vtysh_reads_the_hostile_configuration(hostile: Inventory, tmp_path: Path) -> None:
    for name in intended.devices(hostile):
        vtysh_dryrun(intended.render(hostile, name, "frr"), tmp_path / f"{name}.conf")


def test_frr_hostile_names_stay_inside_their_description(hostile: Inventory,
                                                         clean: Inventory) -> None:
    for name in SITE_ROUTERS:
        bad = config.parse(intended.render(hostile, name, "frr"))
        good = config.parse(intended.render(clean, name, "frr"))
        # The same commands in the same blocks: only the descriptions' text differs.
        shape = [p[:-1] + ((p[-1],) if not p[-1].startswith("description ") else ("d",))
                 for p in bad]
        assert shape == [p[:-1] + ((p[-1],) if not p[-1].startswith("description ") else ("d",))
                         for p in good]
        site = next(s for m in hostile.municipalities for s in m.sites
                    if intended.device_name(m, s) == name)
        lan = intended.device(hostile, name).interfaces[0]
        # vtysh joins a description's words with one space, and prints it back so.
        assert "description " + re.sub(" +", " ", f"LAN {site.name} ({lan.cidr})").strip() \
            in _descriptions(bad)


def test_frr_parse_splits_lines_only_where_vtysh_does() -> None:
    text = "interface eth0\n description a\u2028b\u0085c\x0bd\u00a0e\nexit\n"
    assert config.parse(text) == [("interface eth0",),
                                  ("interface eth0", "description a\u2028b\u0085c\x0bd\u00a0e")]


def test_ios_hostile_names_never_start_a_command(hostile: Inventory, clean: Inventory) -> None:
    for name in SITE_ROUTERS:
        bad = intended.render(hostile, name, "cisco_ios").split("\n")
        good = intended.render(clean, name, "cisco_ios").split("\n")
        assert len(bad) == len(good)
        for b, g in zip(bad, good, strict=True):
            if g.startswith(" description "):
                assert b.startswith(" description ")
            else:
                assert b == g
        site = next(s for m in hostile.municipalities for s in m.sites
                    if intended.device_name(m, s) == name)
        assert f" description LAN {re.sub(' +', ' ', site.name).strip()}" in bad


def _scan(pattern: re.Pattern[str], text: str, reader: str) -> Iterator[re.Match[str]]:
    """Every token of ``text`` in order; a place no token matches is a syntax error."""
    pos = 0
    while pos < len(text):
        m = pattern.match(text, pos)
        assert m, f"{reader} cannot read {text[pos:pos + 40]!r}"
        pos = m.end()
        yield m


_JUNOS_TOKEN = re.compile(r'\s+|/\*.*?\*/|#[^\n]*|"((?:\\.|[^"\\])*)"|([{};\[\]])|([^\s{};\[\]"]+)',
                          re.S)


def _junos(text: str) -> list[tuple[str, str]]:
    """Junos curly-brace text as tokens: ("str", decoded), ("op", {};[]), ("word", w)."""
    tokens: list[tuple[str, str]] = []
    for m in _scan(_JUNOS_TOKEN, text, "Junos"):
        if m.group(1) is not None:
            tokens.append(("str", re.sub(r"\\(.)", r"\1", m.group(1))))
        elif m.group(2):
            tokens.append(("op", m.group(2)))
        elif m.group(3):
            tokens.append(("word", m.group(3)))
    return tokens


def test_junos_one_quote_does_not_leave_the_description(hostile: Inventory,
                                                        clean: Inventory) -> None:
    for name in SITE_ROUTERS:
        bad = _junos(intended.render(hostile, name, "juniper_junos"))
        good = _junos(intended.render(clean, name, "juniper_junos"))
        assert [t if t[0] != "str" else "str" for t in bad] == [
            t if t[0] != "str" else "str" for t in good]
        site = next(s for m in hostile.municipalities for s in m.sites
                    if intended.device_name(m, s) == name)
        assert ("str", f"LAN {site.name}") in bad


# --- Role templates, rendered by Ansible ----------------------------------------------------

ROLES = {"gis_hosting": "gis-01", "finance_hosting": "okonomi-01", "dns_ntp": "katalog",
         "monitoring": "overvaking", "common": "tokke-skule-client"}
#: (role, template, output file; "item" templates are rendered once per municipality).
TEMPLATES = [
    ("gis_hosting", "etc/postgresql/main/pg_hba.conf.j2", "gis/pg_hba.conf"),
    ("gis_hosting", "etc/nginx/sites-available/fellesdrift-gis.conf.j2", "gis/nginx.conf"),
    ("gis_hosting", "etc/mapserver/municipality.map.j2", "gis/{{ item.slug }}.map"),
    ("finance_hosting", "etc/postgresql/main/pg_hba.conf.j2", "finance/pg_hba.conf"),
    ("finance_hosting", "etc/nginx/conf.d/finance-hosting.conf.j2", "finance/nginx.conf"),
    ("finance_hosting", "etc/systemd/system/finance-backup.service.j2",
     "finance/finance-backup.service"),
    ("finance_hosting", "etc/systemd/system/finance-backup.timer.j2",
     "finance/finance-backup.timer"),
    ("finance_hosting", "usr/local/sbin/finance-backup.j2", "finance/finance-backup"),
    ("dns_ntp", "etc/unbound/unbound.conf.d/fellesdrift.conf.j2", "dns/unbound.conf"),
    ("dns_ntp", "etc/chrony/conf.d/fellesdrift-ntp-server.conf.j2", "dns/chrony.conf"),
    ("common", "etc/resolv.conf.j2", "common/resolv.conf"),
    ("monitoring", "etc/prometheus/prometheus.yml.j2", "monitoring/prometheus.yml"),
    ("monitoring", "etc/prometheus/fellesdrift-rules.yml.j2", "monitoring/rules.yml"),
]
PASSPHRASE = "unit-test passphrase"
#: Role settings that are no model data but reach systemd units: hostile too.
SETTINGS = {"finance_hosting__backup_dir": "/var/backups/finance 100% ü \"q\" \\"}


def _render_roles(model: Inventory, out: Path, settings: dict[str, Any]) -> Path:
    """Render the role templates the way Ansible's template action does, in this process: the
    lab's inventory as the pipeline writes it (every model string ``!unsafe``, secrets
    ``!vault``), read by Ansible's own inventory and variable managers; each role's defaults
    and vars (trusted, as Ansible loads them); Ansible's Templar with trim_blocks and its
    template variables; and the filters of playbooks/filter_plugins, found the way a play
    finds them (a filter_plugins folder beside the playbook)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paths, "LAB_DIR", out / "lab")
        mp.setattr("fellesdrift.access.credentials.lab_dir", lambda env: out / "lab" / env)
        mp.setattr("fellesdrift.access.pki.lab_dir", lambda env: out / "lab" / env)
        mp.setattr("fellesdrift.provision.hosts.lab_dir", lambda env: out / "lab" / env)
        mp.setenv("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
        mp.delenv(credentials.PASSPHRASE_SOCKET, raising=False)
        (out / "lab" / "unit").mkdir(parents=True)
        given = hostvars.render(model, "unit", HOSTS, "ssh-ed25519 AAAA netops")
        written = hosts.ansible_inventory("unit", HOSTS, given)
    # The endpoint's certificate where the nginx site names it (nginx -t opens it).
    tls = out / "files" / "finance" / "tls"
    tls.mkdir(parents=True)
    (tls / "finance-hosting.crt").write_text(given["okonomi-01"]["finance_hosting__tls_cert"])
    (tls / "finance-hosting.key").write_text(given["okonomi-01"]["finance_hosting__tls_key"])
    loader = DataLoader()
    loader.set_vault_secrets([("default", VaultSecret(PASSPHRASE.encode()))])
    managed = InventoryManager(loader=loader, sources=[str(written)])
    host_vars = VariableManager(loader=loader, inventory=managed)
    variables: dict[str, Any] = {"inventory_hostname": "katalog"}
    for role in ROLES:
        path = ROOT / "roles" / role / "defaults" / "main.yml"
        variables |= loader.load_from_file(str(path), trusted_as_template=True)
    for role, host in ROLES.items():
        given = host_vars.get_vars(host=managed.get_host(host), include_hostvars=False)
        variables |= {k: v for k, v in given.items() if k.startswith(role)}
    for role in ROLES:
        path = ROOT / "roles" / role / "vars" / "main.yml"
        if path.exists():
            variables |= loader.load_from_file(str(path), trusted_as_template=True)
    variables |= settings | {"finance_hosting__tls_dir": str(tls)}
    play = out / "play"
    play.mkdir(parents=True)
    (play / "filter_plugins").symlink_to(ROOT / "playbooks" / "filter_plugins")
    add_all_plugin_dirs(str(play))
    templar = Templar(loader=loader, variables=variables)
    for role, src, dest in TEMPLATES:
        source = ROOT / "roles" / role / "templates" / src
        data = trust_as_template(source.read_text(encoding="utf-8"))
        for item in variables[f"{role}__municipalities"] if "item" in dest else [None]:
            target = out / "files" / dest.replace("{{ item.slug }}", item["slug"] if item else "")
            scope = variables | generate_ansible_template_vars(str(source), str(source),
                                                               str(target))
            if item is not None:
                scope["item"] = item
            text = templar.copy_with_new_env(
                searchpath=[str(source.parent)], available_variables=scope).template(
                data, escape_backslashes=False,
                overrides={"trim_blocks": True, "lstrip_blocks": False})
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return out / "files"


@pytest.fixture(scope="module")
def roles_hostile(hostile: Inventory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _render_roles(hostile, tmp_path_factory.mktemp("hostile"), SETTINGS)


@pytest.fixture(scope="module")
def roles_clean(clean: Inventory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _render_roles(clean, tmp_path_factory.mktemp("clean"), {})


def _pg_hba(text: str) -> list[tuple[list[str], str]]:
    """pg_hba.conf as PostgreSQL reads it: a line ending in a backslash continues on the next;
    '#' outside quotes starts a comment; fields split at blanks outside double quotes
    (quotes removed). Returns (fields, comment) per logical line."""
    logical: list[str] = []
    current = ""
    for line in text.split("\n"):
        if line.endswith("\\"):
            current += line[:-1]
            continue
        logical.append(current + line)
        current = ""
    out: list[tuple[list[str], str]] = []
    for line in logical:
        fields: list[str] = []
        token, quoted, comment, i = "", False, "", 0
        while i < len(line):
            c = line[i]
            if c == '"':
                quoted = not quoted
            elif c == "#" and not quoted:
                comment = line[i + 1:]
                break
            elif c in " \t" and not quoted:
                if token:
                    fields.append(token)
                token = ""
            else:
                token += c
            i += 1
        assert not quoted, f"unterminated quote in {line!r}"
        if token:
            fields.append(token)
        out.append((fields, comment))
    return out


@pytest.mark.parametrize("service", ["gis", "finance"])
def test_pg_hba_rules_are_the_same_and_names_stay_in_comments(
        roles_hostile: Path, roles_clean: Path, service: str) -> None:
    bad = _pg_hba((roles_hostile / service / "pg_hba.conf").read_text(encoding="utf-8"))
    good = _pg_hba((roles_clean / service / "pg_hba.conf").read_text(encoding="utf-8"))
    assert [f for f, _ in bad if f] == [f for f, _ in good if f]
    for fields, _ in bad:
        assert len(fields) in (0, 4, 5), fields
        assert fields[:1] in ([], ["local"], ["host"], ["hostssl"]), fields
    comments = [c for _, c in bad]
    for name in (MUNICIPALITY, MUNICIPALITY_2):
        assert any(name in c for c in comments), name
        assert not any(name in " ".join(f) for f, _ in bad)


_MAP_TOKEN = re.compile(r"\s+|#[^\n]*|\"((?:\\.|[^\"\\])*)\"|'((?:\\.|[^'\\])*)'|([^\s\"'#]+)")


def _mapfile(text: str) -> list[tuple[str, str]]:
    """A mapfile as MapServer's lexer reads it: strings in double or single quotes with \\\\,
    \\" and \\' escapes, '#' comments to the end of the line, words."""
    tokens: list[tuple[str, str]] = []
    for m in _scan(_MAP_TOKEN, text, "MapServer"):
        value = m.group(1) if m.group(1) is not None else m.group(2)
        if value is not None:
            tokens.append(("str", re.sub(r"\\([\\\"'])", r"\1", value)))
        elif m.group(3):
            tokens.append(("word", m.group(3)))
    return tokens


def test_mapfile_strings_carry_the_names_literally(roles_hostile: Path,
                                                   roles_clean: Path) -> None:
    for slug, name, code in (("vinje", MUNICIPALITY, "4036"), ("tokke", MUNICIPALITY_2, "4034")):
        bad = _mapfile((roles_hostile / "gis" / f"{slug}.map").read_text(encoding="utf-8"))
        good = _mapfile((roles_clean / "gis" / f"{slug}.map").read_text(encoding="utf-8"))
        assert [t if t[0] == "word" else "str" for t in bad] == [
            t if t[0] == "word" else "str" for t in good]
        strings = {v for k, v in bad if k == "str"}
        assert {f"{name} – GIS", f"Sites of {name} (municipality {code})",
                f"{name}: sites"} <= strings


_NGINX_TOKEN = re.compile(r"\s+|#[^\n]*|\"((?:\\.|[^\"\\])*)\"|'((?:\\.|[^'\\])*)'|([{};])|"
                          r"([^\s\"'{};]+)")


def _nginx(text: str) -> tuple[list[Any], list[str]]:
    """nginx's configuration as its tokenizer reads it: a nested list of directives
    [name, args, block], and the comments."""
    root: list[Any] = []
    stack, words, comments = [root], [], []
    for m in _scan(_NGINX_TOKEN, text, "nginx"):
        if m.group(0).startswith("#"):
            comments.append(m.group(0)[1:].strip())
        elif m.group(1) is not None or m.group(2) is not None:
            words.append(re.sub(r"\\(.)", r"\1", m.group(1) if m.group(1) is not None
                                else m.group(2)))
        elif m.group(3) == ";":
            stack[-1].append([words[0], words[1:], None])
            words = []
        elif m.group(3) == "{":
            block: list[Any] = []
            stack[-1].append([words[0], words[1:], block])
            stack.append(block)
            words = []
        elif m.group(3) == "}":
            assert not words and len(stack) > 1, "unbalanced }"
            stack.pop()
        elif m.group(4):
            words.append(m.group(4))
    assert len(stack) == 1 and not words, "unterminated block or directive"
    return root, comments


@pytest.mark.parametrize("service", ["gis", "finance"])
def test_nginx_directives_are_the_same_and_names_stay_in_comments(
        roles_hostile: Path, roles_clean: Path, service: str) -> None:
    def read(files: Path) -> str:  # each rendering has the TLS files in its own folder
        return (files / service / "nginx.conf").read_text(encoding="utf-8").replace(
            str(files), "FILES")
    bad, comments = _nginx(read(roles_hostile))
    good, _ = _nginx(read(roles_clean))
    assert bad == good
    assert any(c.startswith(MUNICIPALITY) for c in comments)
    assert any(c.startswith(MUNICIPALITY_2) for c in comments)


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed here")
@pytest.mark.parametrize("service", ["gis", "finance"])
def test_nginx_reads_the_hostile_site(roles_hostile: Path, tmp_path: Path, service: str) -> None:
    shutil.copy("/etc/nginx/fastcgi_params", tmp_path / "fastcgi_params")
    main = tmp_path / "nginx.conf"
    main.write_text(f"error_log {tmp_path}/error.log;\npid {tmp_path}/nginx.pid;\nevents {{}}\n"
                    f"http {{\n  include {roles_hostile / service / 'nginx.conf'};\n}}\n")
    proc = subprocess.run(["nginx", "-t", "-q", "-p", str(tmp_path), "-c", str(main)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(shutil.which("unbound-checkconf") is None, reason="no unbound-checkconf")
def test_unbound_checkconf_reads_the_zone(roles_hostile: Path) -> None:
    proc = subprocess.run(["unbound-checkconf", str(roles_hostile / "dns" / "unbound.conf")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_resolver_and_time_settings_read_back(roles_hostile: Path) -> None:
    resolv = (roles_hostile / "common" / "resolv.conf").read_text(encoding="utf-8")
    assert "search unit.fellesdrift.internal\nnameserver 10.104.0.140\n" in resolv
    chrony = (roles_hostile / "dns" / "chrony.conf").read_text(encoding="utf-8")
    assert "allow 10.104.0.0/16\n" in chrony


def test_unbound_zone_reads_back(roles_hostile: Path, roles_clean: Path) -> None:
    text = (roles_hostile / "dns" / "unbound.conf").read_text(encoding="utf-8")
    assert text == (roles_clean / "dns" / "unbound.conf").read_text(encoding="utf-8")
    for line in text.split("\n"):
        body = line.strip()
        if body and not body.startswith("#") and body != "server:":
            key, _, value = body.partition(": ")
            assert re.fullmatch(r"[a-z0-9-]+", key) and value.count('"') in (0, 2), line


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_units_verify_with_a_hostile_path(roles_hostile: Path, tmp_path: Path) -> None:
    folder = roles_hostile / "finance"
    service = (folder / "finance-backup.service").read_text(encoding="utf-8")
    # The unit's own script is not installed on this machine: point it at one that is.
    unit = tmp_path / "finance-backup.service"
    unit.write_text(service.replace("/usr/local/sbin/finance-backup", "/bin/true"),
                    encoding="utf-8")
    shutil.copy(folder / "finance-backup.timer", tmp_path / "finance-backup.timer")
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit),
                           str(tmp_path / "finance-backup.timer")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and "finance-backup" not in proc.stderr, proc.stderr
    path = SETTINGS["finance_hosting__backup_dir"]
    lines = dict(line.split("=", 1) for line in service.split("\n") if "=" in line)
    assert lines["ReadWritePaths"] == '"' + path.replace("%", "%%").replace("\\", "\\\\")\
        .replace('"', '\\"') + '"'
    assert lines["Description"].endswith(path.replace("%", "%%") + " ")


def test_backup_script_names_each_database_as_one_shell_word(roles_hostile: Path) -> None:
    script = (roles_hostile / "finance" / "finance-backup").read_text(encoding="utf-8")
    line = next(x for x in script.split("\n") if x.startswith("DATABASES=("))
    assert line == "DATABASES=(okonomi_tokke okonomi_vinje)"


def test_prometheus_labels_read_back(roles_hostile: Path, hostile: Inventory) -> None:
    conf = yaml.safe_load((roles_hostile / "monitoring" / "prometheus.yml").read_text("utf-8"))
    job = next(j for j in conf["scrape_configs"] if j["job_name"] == "blackbox")
    assert {c["labels"]["municipality"] for c in job["static_configs"]} == {
        m.slug for m in hostile.municipalities}
    rules = yaml.safe_load((roles_hostile / "monitoring" / "rules.yml").read_text("utf-8"))
    assert rules["groups"][0]["rules"]


# --- The report ---------------------------------------------------------------------------

class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(sorted(a for a, _ in attrs))))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parsed(html: str) -> _Html:
    parser = _Html()
    parser.feed(html)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def reports(hostile: Inventory, clean: Inventory,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, report.Written]]:
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paths, "LAB_DIR", out / "lab")
        yield {"hostile": report.write(hostile, "unit", out / "hostile", today=date(2026, 6, 1)),
               "clean": report.write(clean, "unit", out / "clean", today=date(2026, 6, 1))}


HOSTILE_TEXT = (MUNICIPALITY, MUNICIPALITY_2, SITE, SITE_2, ADDRESS, CENTRE, SERVICE)


def test_html_report_shows_the_values_as_text_and_nothing_else(
        reports: dict[str, report.Written]) -> None:
    bad = _parsed(reports["hostile"].html.read_text(encoding="utf-8"))
    good = _parsed(reports["clean"].html.read_text(encoding="utf-8"))
    assert bad.tags == good.tags  # no element or attribute came from a value
    text = "".join(bad.text)
    for value in HOSTILE_TEXT:
        if value is not ADDRESS:  # the HTML report shows no street address
            assert value in text, value


def _markdown_html(path: Path) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(
        path.read_text(encoding="utf-8"))


def test_markdown_report_shows_the_values_as_text_and_nothing_else(
        reports: dict[str, report.Written]) -> None:
    bad = _parsed(_markdown_html(reports["hostile"].markdown))
    good = _parsed(_markdown_html(reports["clean"].markdown))
    assert bad.tags == good.tags  # no table cell, emphasis, link, code or HTML from a value
    text = "".join(bad.text)
    for value in (MUNICIPALITY, MUNICIPALITY_2, SITE_2, CENTRE, SERVICE):
        assert value in text, value
    assert re.sub(" +", " ", SITE).strip() in re.sub(" +", " ", text)


# --- What no destination can write -------------------------------------------------------

@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\u2028b", "a\u0085b", "a\x0bb", "a\x00b",
                                   "a\u200bb", "a\u202eb"])
def test_line_breaks_and_control_characters_have_no_syntax_anywhere(value: str) -> None:
    for name, f in syntax.FILTERS.items():
        if name == "markdown_text":  # a report shows a status detail on one line, never fails
            assert f(value) == "a b"
            continue
        with pytest.raises(syntax.Unrepresentable):
            f(value)


def test_every_unrepresentable_character_is_refused_by_its_filter() -> None:
    for destination, chars, _why in syntax.UNREPRESENTABLE:
        for c in chars:
            with pytest.raises(syntax.Unrepresentable):
                syntax.FILTERS[destination](f"a{c}b")
