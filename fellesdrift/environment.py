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
      execution_nodes:           # converge these municipalities' hosts from a node near them
        - name: exec-vest
          host: 10.20.0.180      # reached over SSH with the environment's key and known_hosts
          user: ops              # the default: the login user the drivers make
          municipalities: [tokke, vinje]

``backend`` is where the environment's Pulumi state (and its audit log) is kept: the file
backend under ``.state/`` when it is left out, or a ``postgres://`` URL a team shares. This file
is in git, so the URL holds no password (``PGPASSWORD`` or a 0600 ``PGPASSFILE`` gives it);
:func:`fellesdrift.provision.backend.for_environment` reads it, after the process environment's
``FELLESDRIFT_BACKEND``/``FELLESDRIFT_BACKEND_FILE`` (docs/scaling.md).

``execution_nodes`` are hosts carrying the locked Ansible (ansible-runner's worker) that
converge the hosts of the municipalities each serves, over ansible-runner's
``transmit | worker | process`` protocol (:mod:`fellesdrift.converge.nodes`, docs/scaling.md);
every other host is converged from this machine. A municipality is served by one node at most.

An environment it does not name is a lab on ``inventories/``. ``fellesdrift up --env E PATH…``
keeps PATH as E's inventory (in ``.lab/E/environment.json``), so every later command on E
(converge, network, verify, status, report …) reads the same files without being told again.
"""

from __future__ import annotations

import json
import os
import re
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
KEYS = ("driver", "inventory", "settings", "mocks", "backend", "execution_nodes")
#: The fields of one execution node (``user`` may be left out: ops, the login user the lab and
#: Proxmox drivers make on every host).
NODE_FIELDS = ("name", "host", "user", "municipalities")
NODE_USER = "ops"
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class EnvironmentFileError(RefusedError, ValueError):
    """environments.yaml says something that is not an environment."""


@dataclass(frozen=True)
class ExecutionNode:
    """A host that converges the hosts of ``municipalities`` (ansible-runner's worker)."""

    name: str
    #: Its address (or DNS name) for SSH, with the environment's key and known_hosts.
    host: str
    municipalities: tuple[str, ...]
    user: str = NODE_USER
    #: Where it is defined, for messages: ``environments.yaml:LINE:COL: ENV.execution_nodes[I]``.
    at: str = ""

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}"


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
    #: The execution nodes and the municipalities each serves (none: everything runs here).
    execution_nodes: tuple[ExecutionNode, ...] = ()

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


def _defined(name: str) -> tuple[dict[str, Any], dict[str, str], yaml.Node] | None:
    """Environment ``name``'s entry in environments.yaml, where each of its keys' values is
    (file:line:col) and its composed node; None when the file does not name it."""
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
    return entry, at, node


_NODE_RULE = "[environment-execution-nodes]"
_NODE_SHAPE = ("a list of mappings, each `name: exec-01`, `host: ADDRESS`, `municipalities: "
               "[slug, …]` (and `user:`, ops when left out)")


def _nodes(name: str, node: yaml.Node | None, entry: dict[str, Any]) -> tuple[ExecutionNode, ...]:
    """The environment's ``execution_nodes``, each field checked; the first wrong one is
    refused with its place (file:line:col), what is wrong and what would be right."""
    if node is None or "execution_nodes" not in entry:
        return ()
    value = entry["execution_nodes"]
    where = f"{name}.execution_nodes"

    def refuse(at: yaml.Node, field: str, wrong: str, right: str) -> EnvironmentFileError:
        return EnvironmentFileError(f"{_at(at)}: {field}: {wrong}; {right} {_NODE_RULE}")

    if not isinstance(value, list) or not isinstance(node, yaml.SequenceNode) or not value:
        raise refuse(node, where, f"{value!r} is not a list of execution nodes",
                     f"write {_NODE_SHAPE}, or leave the key out to converge everything here")
    found: list[ExecutionNode] = []
    served: dict[str, str] = {}
    for i, (item, item_node) in enumerate(zip(value, node.value, strict=True)):
        field = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise refuse(item_node, field, f"{item!r} is not a mapping", f"write {_NODE_SHAPE}")
        for key in item:
            if key not in NODE_FIELDS:
                key_node = next(k for k, _ in item_node.value if str(k.value) == str(key))
                raise refuse(key_node, f"{field}.{key}", "unknown field",
                             f"an execution node has {', '.join(NODE_FIELDS)}")
        for key in ("name", "host", "municipalities"):
            if key not in item:
                raise refuse(item_node, f"{field}.{key}", "missing",
                             "every execution node has a name, a host and its municipalities")
        for key in ("name", "host", "user"):
            text = item.get(key, NODE_USER)
            if not (isinstance(text, str) and text.strip() and len(text.split()) == 1):
                raise refuse(_value(item_node, key) or item_node, f"{field}.{key}",
                             f"{text!r} is not one word",
                             "write a name, an address or DNS name, a user name, without spaces")
        if item["name"] in {n.name for n in found}:
            raise refuse(_value(item_node, "name") or item_node, f"{field}.name",
                         f"{item['name']!r} is named twice", "give each node its own name")
        slugs = item.get("municipalities")
        slugs_node = _value(item_node, "municipalities") or item_node
        if not (isinstance(slugs, list) and slugs):
            raise refuse(slugs_node, f"{field}.municipalities",
                         f"{slugs!r} is not a list of municipalities",
                         "list the slugs of the municipalities it converges, e.g. [tokke, vinje]")
        for j, slug in enumerate(slugs):
            slug_node = slugs_node.value[j] if isinstance(slugs_node, yaml.SequenceNode) \
                else slugs_node
            if not (isinstance(slug, str) and _SLUG.fullmatch(slug)):
                raise refuse(slug_node, f"{field}.municipalities[{j}]",
                             f"{slug!r} is not a municipality's slug",
                             "write the slug the inventory gives it (lower case, digits, -)")
            if slug in served:
                raise refuse(slug_node, f"{field}.municipalities[{j}]",
                             f"{slug} is served by {served[slug]} already",
                             "a municipality is converged by one node at most")
            served[slug] = item["name"]
        found.append(ExecutionNode(item["name"].strip(), item["host"].strip(), tuple(slugs),
                                   str(item.get("user", NODE_USER)).strip(),
                                   f"{_at(item_node)}: {field}"))
    return tuple(found)


def _paths(value: Any) -> tuple[Path, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(p if p.is_absolute() else paths.ROOT / p for p in map(Path, items))


def get(name: str, inventory: list[Path] | None = None) -> Environment:
    """Environment ``name``; ``inventory`` (given on the command line) wins over the folder its
    last ``up`` kept, which wins over environments.yaml, which wins over ``inventories/``."""
    defined = _defined(name)
    entry, at, node = defined if defined else ({}, {}, None)
    backend = entry.get("backend")
    nodes = _nodes(name, _value(node, "execution_nodes") if node else None, entry)
    env = Environment(
        name, str(entry.get("driver", DEFAULT_DRIVER)),
        _paths(entry["inventory"]) if "inventory" in entry else (paths.INVENTORIES,),
        {str(k): str(v) for k, v in (entry.get("settings") or {}).items()},
        bool(entry.get("mocks", False)),
        backend.strip() if backend else None,
        f"{at['backend']}: {name}.backend" if backend else "",
        nodes)
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
