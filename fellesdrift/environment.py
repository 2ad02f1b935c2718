"""Environments: the one place where an environment names its driver, its inventory and the
driver's settings.

``environments.yaml`` (beside ``Pulumi.yaml``) defines the named ones::

    pve-staging:
      driver: proxmox            # lab (the default) or proxmox: fellesdrift.provision.drivers
      inventory: inventories     # files or folders, relative to the checkout
      settings:                  # the driver's stack configuration (docs/proxmox.md)
        proxmoxNode: pve1
      mocks: true                # plan declares under Pulumi's mocks (no engine, no cluster)

An environment it does not name is a lab on ``inventories/``. ``fellesdrift up --env E PATH…``
keeps PATH as E's inventory (in ``.lab/E/environment.json``), so every later command on E
(converge, network, verify, status, report …) reads the same files without being told again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fellesdrift import paths
from fellesdrift.errors import FellesdriftError
from fellesdrift.files import write_atomic

#: The named environments of this checkout (FELLESDRIFT_ENVIRONMENTS names another file).
FILE = Path(os.environ.get("FELLESDRIFT_ENVIRONMENTS", paths.ROOT / "environments.yaml"))
DEFAULT_DRIVER = "lab"


class EnvironmentFileError(FellesdriftError, ValueError):
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

    @property
    def folder(self) -> Path:
        """The folder of the inventory files (what the stacks read)."""
        first = self.inventory[0]
        return first if first.is_dir() else first.parent


def _recorded(name: str) -> Path:
    return paths.lab_dir(name) / "environment.json"


def _defined(name: str) -> dict[str, Any] | None:
    if not FILE.exists():
        return None
    data = yaml.safe_load(FILE.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise EnvironmentFileError(f"{FILE}: a mapping of environment names is expected")
    entry = data.get(name)
    if entry is None:
        return None
    if not isinstance(entry, dict) or not set(entry) <= {"driver", "inventory", "settings",
                                                        "mocks"}:
        raise EnvironmentFileError(f"{FILE}: {name}: expected the keys driver, inventory, "
                                "settings, mocks")
    return entry


def _paths(value: Any) -> tuple[Path, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(p if p.is_absolute() else paths.ROOT / p for p in map(Path, items))


def get(name: str, inventory: list[Path] | None = None) -> Environment:
    """Environment ``name``; ``inventory`` (given on the command line) wins over the folder its
    last ``up`` kept, which wins over environments.yaml, which wins over ``inventories/``."""
    entry = _defined(name) or {}
    env = Environment(
        name, str(entry.get("driver", DEFAULT_DRIVER)),
        _paths(entry["inventory"]) if "inventory" in entry else (paths.INVENTORIES,),
        {str(k): str(v) for k, v in (entry.get("settings") or {}).items()},
        bool(entry.get("mocks", False)))
    if inventory:
        return Environment(env.name, env.driver, tuple(inventory), env.settings, env.mocks)
    recorded = _recorded(name)
    if recorded.exists():
        kept = json.loads(recorded.read_text(encoding="utf-8"))
        return Environment(env.name, env.driver, tuple(Path(p) for p in kept["inventory"]),
                           env.settings, env.mocks)
    return env


def remember(env: Environment) -> None:
    """Keep the environment's inventory for the commands that follow (``up`` calls this)."""
    write_atomic(_recorded(env.name), json.dumps(
        {"driver": env.driver, "inventory": [str(p.resolve()) for p in env.inventory]},
        indent=2) + "\n")
