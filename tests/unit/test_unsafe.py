"""Role variables are data, never templates: the generated inventory marks every string from the
model ``!unsafe`` and every secret ``!vault``, and real Ansible renders them as the literal text.

Each test writes the inventory with :func:`fellesdrift.hosts.ansible_inventory` and runs the
real ``ansible-playbook``/``ansible-inventory`` of the venv against ``localhost`` (connection
local) with the project's ansible.cfg (its vault password script included).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fellesdrift.access import credentials
from fellesdrift.provision import hosts

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: Values an inventory file could smuggle in: Jinja expressions, statements, comments, a
#: lookup with a side effect (it would create the file ``{marker}``), line breaks of every kind.
HOSTILE = [
    "{{ lookup('pipe','id') }}",
    "{% raw %}x{% endraw %}",
    "{# hidden #}visible",
    "{{ lookup('pipe', 'touch {marker}') }}",
    "x\u2028{{ 7 * 6 }}\u0085y\r\nz",
    "'\"\\ {{",
]


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A lab folder of its own and a passphrase of its own (never the operator's)."""
    monkeypatch.setattr("fellesdrift.paths.LAB_DIR", tmp_path / "lab")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "unit-test passphrase")
    monkeypatch.delenv(credentials.PASSPHRASE_SOCKET, raising=False)
    return tmp_path


def _hostile(marker: Path) -> list[str]:
    return [v.replace("{marker}", str(marker)) for v in HOSTILE]


def _inventory(variables: dict[str, Any]) -> Path:
    localhost = hosts.Host("localhost", "unit-localhost", ("probe",), "127.0.0.1", "ops", 22,
                           "ssh-ed25519 AAAA")
    return hosts.ansible_inventory("unit", [localhost], {"localhost": variables})


def _ansible(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / tool), *args], cwd=cwd, capture_output=True, text=True,
                          check=False, env={**os.environ,
                                            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                                            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cwd / "facts"),
                                            "ANSIBLE_FORCE_COLOR": "0"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


PLAYBOOK = """
- hosts: probe
  gather_facts: false
  connection: local
  tasks:
    - name: Write what the variables hold, as JSON
      ansible.builtin.copy:
        content: "{{ {'text': probe_text, 'nested': probe_nested, 'secret': probe_secret,
                      'joined': probe_nested['items'] | map(attribute='name') | join('|')}
                     | to_json }}"
        dest: "{{ out_dir }}/vars.json"
        mode: "0600"
    - name: Render a template that uses them
      ansible.builtin.template:
        src: probe.j2
        dest: "{{ out_dir }}/probe.txt"
        mode: "0600"
"""

TEMPLATE = "{{ probe_text }}\n{% for i in probe_nested['items'] %}{{ i.name }}\n{% endfor %}"


def test_role_variables_holding_template_markers_render_as_their_literal_text(
        lab: Path) -> None:
    marker = lab / "lookup-ran"
    values = _hostile(marker)
    variables = {"probe_text": values[0],
                 "probe_nested": {"items": [{"name": v} for v in values]},
                 "probe_secret": credentials.Secret(values[1]),
                 "out_dir": str(lab)}
    inventory = _inventory(variables)
    (lab / "site.yml").write_text(PLAYBOOK)
    (lab / "templates").mkdir()
    (lab / "templates" / "probe.j2").write_text(TEMPLATE)
    _ansible("ansible-playbook", "-i", str(inventory), str(lab / "site.yml"), cwd=lab)

    seen = json.loads((lab / "vars.json").read_text())
    assert seen == {"text": values[0], "nested": {"items": [{"name": v} for v in values]},
                    "secret": values[1], "joined": "|".join(values)}
    assert (lab / "probe.txt").read_bytes().decode() == "\n".join([values[0], *values]) + "\n"
    assert not marker.exists(), "a lookup in a role variable ran on the control node"


def test_ad_hoc_debug_of_a_variable_shows_the_markers_unevaluated(lab: Path) -> None:
    inventory = _inventory({"probe_text": "{{ lookup('pipe','id') }}"})
    out = _ansible("ansible", "-i", str(inventory), "probe", "-c", "local",
                   "-m", "ansible.builtin.debug", "-a", "var=probe_text", cwd=lab).stdout
    # The project's ansible.cfg prints results as YAML: "localhost | SUCCESS => <yaml>".
    assert yaml.safe_load(out.partition("=>")[2]) == {"probe_text": "{{ lookup('pipe','id') }}"}
    assert "uid=" not in out


def test_every_string_is_unsafe_and_every_secret_a_vault_value(lab: Path) -> None:
    password = credentials.password("unit", "gis/vinje")
    inventory = _inventory({"probe_text": "Vinje kommune", "probe_port": 5432,
                            "probe_list": [{"password": password, "name": "rådhus"}]})
    text = inventory.read_text()
    assert password not in text
    tags: list[str] = []

    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> str:
        tags.append(node.tag)
        return str(loader.construct_scalar(node))  # type: ignore[arg-type]

    yaml.add_multi_constructor("!", tagged, Loader=Loader)
    host = yaml.load(text, Loader)["all"]["hosts"]["localhost"]  # noqa: S506 - SafeLoader
    assert host["probe_text"] == "Vinje kommune" and host["probe_port"] == 5432
    assert sorted(tags) == ["!unsafe", "!unsafe", "!vault"]
    # The platform's own connection settings stay plain (testinfra reads them as they are).
    assert host["ansible_host"] == "127.0.0.1"


def test_ansible_inventory_output_reveals_to_the_role_variables(lab: Path) -> None:
    """What testinfra reads (`ansible-inventory --list`) turns back into the role variables."""
    variables = {"probe_text": "{{ x }}", "probe_list": [{"n": "a\nb", "port": 1}],
                 "probe_secret": credentials.password("unit", "okonomi/tokke")}
    inventory = _inventory(variables)
    listed = json.loads(_ansible("ansible-inventory", "-i", str(inventory), "--list",
                                 cwd=lab).stdout)
    hostvars = listed["_meta"]["hostvars"]["localhost"]
    assert hostvars["probe_text"] == {"__ansible_unsafe": "{{ x }}"}
    assert "__ansible_vault" in hostvars["probe_secret"]
    revealed = credentials.reveal(hostvars)
    assert {k: revealed[k] for k in variables} == variables
    assert isinstance(revealed["probe_secret"], credentials.Secret)
    assert "okonomi" not in repr(revealed) and variables["probe_secret"] not in repr(revealed)
