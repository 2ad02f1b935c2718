"""The environment decides the driver and the inventory: `plan --env` of a proxmox environment
runs the real provision code path (the CLI, the environment's driver, the stack configuration,
stacks/__main__.py, the components and the proxmox driver) under Pulumi's mocks; an
environment's inventory, once `up` was given it, is the one every later command reads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fellesdrift import environment, paths
from fellesdrift.inventory import load as inventory
from fellesdrift.plan import functions, naming

VM = "proxmoxve:index/vmLegacy:VmLegacy"
BRIDGE = "proxmoxve:network/linux/bridge:Bridge"
USER_DATA = "proxmoxve:index/fileLegacy:FileLegacy"
HOST_KEY = "tls:index/privateKey:PrivateKey"


def fellesdrift(*args: str, environments: Path | None = None
                ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if environments is not None:
        env["FELLESDRIFT_ENVIRONMENTS"] = str(environments)
    return subprocess.run([sys.executable, "-m", "fellesdrift", *args], cwd=paths.ROOT,
                          capture_output=True, text=True, timeout=300, check=False, env=env)


@pytest.fixture
def lab_dir_of() -> Iterator[list[str]]:
    """Environments a test makes; their .lab/<env> folders are removed after it."""
    made: list[str] = []
    yield made
    for name in made:
        shutil.rmtree(paths.lab_dir(name), ignore_errors=True)


def test_plan_of_a_proxmox_environment_declares_its_vms_under_mocks(
        tmp_path: Path, fixture_inventories: Path, lab_dir_of: list[str]) -> None:
    env = "pve-unit"
    lab_dir_of.append(env)
    file = tmp_path / "environments.yaml"
    file.write_text(f"""
{env}:
  driver: proxmox
  inventory: {fixture_inventories}
  mocks: true
  settings: {{proxmoxNode: pve1, proxmoxTemplate: "9000", proxmoxDatastore: local-lvm}}
""")
    proc = fellesdrift("plan", "--env", env, "--json", environments=file)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    model = inventory.load([fixture_inventories])
    stacks = {s["stack"]: s for s in result["stacks"]}
    assert set(stacks) == {naming.stack(env, t) for t in
                           [naming.CORE_STACK, *(m.slug for m in model.municipalities)]}
    declared = {(d["type"], d["name"]) for s in stacks.values() for d in s["declared"]}
    # Every host the model makes is a VM with its own user data and host key; nothing else is.
    hosts = {naming.CORE_ROUTER}
    hosts |= {h.hostname for h in model.centre.shared_hosts
              if h.role in functions.SHARED_FUNCTIONS}
    for m in model.municipalities:
        for site in m.sites:
            hosts |= {naming.site_router(m.slug, site.id), naming.site_client(m.slug, site.id)}
    assert {n for t, n in declared if t == VM} == hosts
    assert {n for t, n in declared if t == USER_DATA} == {f"{h}-user-data" for h in hosts}
    assert {n for t, n in declared if t == HOST_KEY} == {f"{h}-host-key" for h in hosts}
    # Each site LAN is a bridge of its own; no lab (Podman) resource is declared at all.
    lans = {naming.site_lan(m.slug, s.id) for m in model.municipalities for s in m.sites}
    assert lans <= {n for t, n in declared if t == BRIDGE}
    assert not [t for t, _ in declared if "dynamic" in t], declared


def test_a_proxmox_environment_without_its_settings_is_one_clear_error(
        tmp_path: Path, fixture_inventories: Path, lab_dir_of: list[str]) -> None:
    env = "pve-unit2"
    lab_dir_of.append(env)
    file = tmp_path / "environments.yaml"
    file.write_text(f"{env}: {{driver: proxmox, inventory: {fixture_inventories}, mocks: true, "
                    "settings: {proxmoxNode: pve1}}\n")
    proc = fellesdrift("plan", "--env", env, environments=file)
    assert proc.returncode == 2
    assert "proxmoxTemplate, proxmoxDatastore" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_inventory_up_was_given_is_the_environments_from_then_on(
        fixture_inventories: Path, lab_dir_of: list[str]) -> None:
    env = "r3unit"
    lab_dir_of.append(env)
    assert environment.get(env).inventory == (paths.INVENTORIES,)  # never up: the samples
    environment.remember(environment.get(env, [fixture_inventories]))  # what `up` keeps
    assert environment.get(env).inventory == (fixture_inventories.resolve(),)
    proc = fellesdrift("status", "--env", env, "--json")
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    rows = json.loads(proc.stdout)
    fixture = inventory.load([fixture_inventories])
    shown = {r["municipality"] for r in rows["rows"]} - {"centre"}
    assert shown == {m.slug for m in fixture.municipalities}
    # A path on the command line still wins.
    assert environment.get(env, [paths.INVENTORIES]).inventory == (paths.INVENTORIES,)


# --- environments.yaml itself: each mistake is one line at its place ---------------------------


@pytest.fixture
def environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    file = tmp_path / "environments.yaml"
    monkeypatch.setattr(environment, "FILE", file)
    return file


NOT_A_URL = ("; write postgres://user@host:5432/database (its password in PGPASSWORD or a 0600 "
             "PGPASSFILE, never here), or leave the key out for the file backend under .state/ "
             "[environment-backend]")


@pytest.mark.parametrize(("text", "where", "message"), [
    ("pg:\n  driver: lab\n  backend: {url: postgres://db/state}\n", "3:12",
     f"pg.backend: {{'url': 'postgres://db/state'}} is not a URL{NOT_A_URL}"),
    ("pg:\n  backend: 5432\n", "2:12", f"pg.backend: 5432 is not a URL{NOT_A_URL}"),
    ("pg:\n  backend: ''\n", "2:12", f"pg.backend: '' is not a URL{NOT_A_URL}"),
    ("pg:\n  driver: lab\n  backnd: postgres://db/state\n", "3:3",
     "pg: unknown key 'backnd'; an environment has driver, inventory, settings, mocks, backend, "
     "execution_nodes [environment-key]"),
    ("pg:\n  driver: lab\n  backend: postgres://db/state\n   mocks: true\n", "4:9",
     "not YAML (mapping values are not allowed here) [environment-yaml]"),
    ("pg:\n  driver: lab\n  5: x\n", "3:3",
     "pg: unknown key 5; an environment has driver, inventory, settings, mocks, backend, "
     "execution_nodes [environment-key]"),
    ("- pg\n", "1:1", "a mapping of environment names is expected [environment-file]"),
    ("lab:\n  driver: lab\npg: postgres://db/state\n", "3:5",
     "pg: expected a mapping of driver, inventory, settings, mocks, backend, execution_nodes "
     "[environment-file]"),
])
def test_a_mistake_in_environments_yaml_is_one_line_at_its_place(
        environments: Path, text: str, where: str, message: str) -> None:
    environments.write_text(text)
    with pytest.raises(environment.EnvironmentFileError) as e:
        environment.get("pg")
    assert str(e.value) == f"{environments}:{where}: {message}"
    assert "\n" not in str(e.value) and e.value.exit_code == 1


def test_an_empty_environments_yaml_names_no_environment(environments: Path) -> None:
    environments.write_text("# nothing yet\n")
    assert environment.get("pg") == environment.Environment("pg")


def test_the_checkouts_environments_are_valid_and_keep_the_file_backend() -> None:
    for name in ("lab", "pve-staging"):
        env = environment.get(name)
        assert env.backend is None and env.backend_at == ""
