"""Environments: the one place where an environment names its driver, its inventory and the
driver's settings.

``environments.yaml`` (beside ``Pulumi.yaml``) defines the named ones::

    pve-staging:
      driver: proxmox            # lab (the default) or proxmox: fellesdrift.provision.drivers
      inventory: inventories     # files or folders, relative to the checkout
      settings:                  # the driver's stack configuration (docs/proxmox.md)
        proxmoxNode: pve1
      mocks: true                # plan declares under Pulumi's mocks (no engine, no cluster)
      backend: postgres://fellesdrift@db.example:5432/state?sslmode=verify-full

``backend`` is where the environment's Pulumi state (and its audit log) is kept: the file
backend under ``.state/`` when it is left out, or a ``postgres://`` URL a team shares. This file
is in git, so the URL holds no password (``PGPASSWORD`` or a 0600 ``PGPASSFILE`` gives it);
:func:`fellesdrift.provision.backend.for_environment` reads it, after the process environment's
``FELLESDRIFT_BACKEND``/``FELLESDRIFT_BACKEND_FILE`` (docs/scaling.md).

An environment it does not name is a lab on ``inventories/``. ``fellesdrift up --env E PATH…``
keeps PATH as E's inventory (in ``.lab/E/environment.json``), so every later command on E
(converge, network, verify, status, report …) reads the same files without being told again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from fellesdrift import paths
from fellesdrift.errors import RefusedError
from fellesdrift.files import write_atomic

#: The named environments of this checkout (FELLESDRIFT_ENVIRONMENTS names another file).
FILE = Path(os.environ.get("FELLESDRIFT_ENVIRONMENTS", paths.ROOT / "environments.yaml"))
DEFAULT_DRIVER = "lab"


#: The keys an environment may have.
KEYS = ("driver", "inventory", "settings", "mocks", "backend")


class EnvironmentFileError(RefusedError, ValueError):
    """environments.yaml says something that is not an environment."""


@dataclass(frozen=True)
class Environment:
    name: str
    driver: str = DEFAULT_DRIVER
    #: Inventory files or folders.
    inventory: tuple[Path, ...] = (paths.INVENTORIES,)
    #: The driver's stack configuration (``fellesdrift:<key>``; keys with a ``:`` as they are).
    settings: dict[str, str] = field(default_factory=dict)
    #: Plan declares the stacks under Pulumi's mocks, in this process: no engine, no cluster.
    mocks: bool = False
    #: The state backend's URL (no password), or None for the file backend under .state/.
    backend: str | None = None
    #: Where ``backend`` is set, for messages: ``environments.yaml:LINE:COL: NAME.backend``.
    backend_at: str = ""

    @property
    def folder(self) -> Path:
        """The folder of the inventory files (what the stacks read)."""
        first = self.inventory[0]
        return first if first.is_dir() else first.parent


def _recorded(name: str) -> Path:
    return paths.lab_dir(name) / "environment.json"


def _shown() -> str:
    """The file's name as messages give it: relative to the checkout when it is in it."""
    return str(FILE.relative_to(paths.ROOT)) if FILE.is_relative_to(paths.ROOT) else str(FILE)


def _at(node: yaml.Node) -> str:
    return f"{_shown()}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _value(mapping: yaml.Node, key: str) -> yaml.Node | None:
    """The node under ``key`` of a composed mapping (the last one, as YAML loading takes)."""
    if not isinstance(mapping, yaml.MappingNode):
        return None
    found = [v for k, v in mapping.value if isinstance(k, yaml.ScalarNode) and k.value == key]
    return found[-1] if found else None


def _defined(name: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    """Environment ``name``'s entry in environments.yaml, and where each of its keys' values
    is (file:line:col); None when the file does not name it."""
    if not FILE.exists():
        return None
    text = FILE.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{_shown()}:{mark.line + 1}:{mark.column + 1}" if mark else _shown()
        raise EnvironmentFileError(f"{where}: not YAML ({getattr(e, 'problem', e)}) "
                                   "[environment-yaml]") from None
    if root is None:  # an empty file names no environment
        return None
    if not isinstance(data, dict):
        raise EnvironmentFileError(f"{_at(root)}: a mapping of environment names is expected "
                                   "[environment-file]")
    entry, node = data.get(name), _value(root, name)
    if entry is None or node is None:
        return None
    if not isinstance(entry, dict):
        raise EnvironmentFileError(f"{_at(node)}: {name}: expected a mapping of "
                                   f"{', '.join(KEYS)} [environment-file]")
    at = {str(k.value): _at(v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    for key in entry:
        if key not in KEYS:
            key_node = next(k for k, _ in node.value if str(k.value) == str(key))
            raise EnvironmentFileError(f"{_at(key_node)}: {name}: unknown key {key!r}; an "
                                       f"environment has {', '.join(KEYS)} [environment-key]")
    backend = entry.get("backend")
    if "backend" in entry and not (isinstance(backend, str) and backend.strip()):
        raise EnvironmentFileError(
            f"{at['backend']}: {name}.backend: {backend!r} is not a URL; write "
            "postgres://user@host:5432/database (its password in PGPASSWORD or a 0600 "
            "PGPASSFILE, never here), or leave the key out for the file backend under .state/ "
            "[environment-backend]")
    return entry, at


def _paths(value: Any) -> tuple[Path, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(p if p.is_absolute() else paths.ROOT / p for p in map(Path, items))


def get(name: str, inventory: list[Path] | None = None) -> Environment:
    """Environment ``name``; ``inventory`` (given on the command line) wins over the folder its
    last ``up`` kept, which wins over environments.yaml, which wins over ``inventories/``."""
    entry, at = _defined(name) or ({}, {})
    backend = entry.get("backend")
    env = Environment(
        name, str(entry.get("driver", DEFAULT_DRIVER)),
        _paths(entry["inventory"]) if "inventory" in entry else (paths.INVENTORIES,),
        {str(k): str(v) for k, v in (entry.get("settings") or {}).items()},
        bool(entry.get("mocks", False)),
        backend.strip() if backend else None,
        f"{at['backend']}: {name}.backend" if backend else "")
    if inventory:
        return replace(env, inventory=tuple(inventory))
    recorded = _recorded(name)
    if recorded.exists():
        kept = json.loads(recorded.read_text(encoding="utf-8"))
        return replace(env, inventory=tuple(Path(p) for p in kept["inventory"]))
    return env


def remember(env: Environment) -> None:
    """Keep the environment's inventory for the commands that follow (``up`` calls this)."""
    write_atomic(_recorded(env.name), json.dumps(
        {"driver": env.driver, "inventory": [str(p.resolve()) for p in env.inventory]},
        indent=2) + "\n")
