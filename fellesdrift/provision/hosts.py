"""Hosts as the stacks declared them, and the files that let SSH-based tools reach them.

Everything here is rendered from stack outputs: the Ansible inventory, the SSH client config
for testinfra and the lab's known_hosts. No address is ever guessed.

Ansible never templates what the model says: in the inventory every string of the role
variables is ``!unsafe`` (Ansible's mark for data that is not a template), every
:class:`~fellesdrift.credentials.Secret` a ``!vault`` value encrypted with the centre's
passphrase. Only the connection settings the platform derives itself stay plain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fellesdrift.access import credentials, keys
from fellesdrift.paths import lab_dir


class _Plain(str):
    """A string the inventory writes as a plain scalar: a mapping key, or a connection setting
    (the platform derives those from stack outputs and the lab's files, and testinfra reads them
    from ``ansible-inventory --list`` as they are)."""

    __slots__ = ()


class InventoryDumper(yaml.SafeDumper):
    """YAML for Ansible: strings ``!unsafe``, secrets ``!vault``, mapping keys plain."""

    def represent_unsafe(self, data: str) -> yaml.Node:
        # ansible-core loads `!unsafe ""` as None: an empty string (no template) stays plain.
        if not data:
            return self.represent_str(data)
        # Double-quoted: every line break and control character escaped, so nothing is folded.
        return self.represent_scalar("!unsafe", data, style='"')

    def represent_secret(self, data: credentials.Secret) -> yaml.Node:
        return self.represent_scalar("!vault", credentials.encrypt(data), style="|")

    def represent_plain(self, data: _Plain) -> yaml.Node:
        return self.represent_str(str(data))

    def represent_plain_keys(self, data: dict[Any, Any]) -> yaml.Node:
        return self.represent_mapping("tag:yaml.org,2002:map", [
            (_Plain(k) if isinstance(k, str) else k, v) for k, v in data.items()])


InventoryDumper.add_representer(str, InventoryDumper.represent_unsafe)
InventoryDumper.add_representer(credentials.Secret, InventoryDumper.represent_secret)
InventoryDumper.add_representer(_Plain, InventoryDumper.represent_plain)
InventoryDumper.add_representer(dict, InventoryDumper.represent_plain_keys)


def inventory_yaml(data: Any) -> str:
    """``data`` as YAML for an Ansible inventory (see :class:`InventoryDumper`)."""
    return yaml.dump(data, Dumper=InventoryDumper, sort_keys=False, allow_unicode=True)


@dataclass(frozen=True)
class Host:
    name: str
    machine: str
    groups: tuple[str, ...]
    address: str
    ssh_user: str
    ssh_port: int
    host_key: str

    @classmethod
    def from_output(cls, out: dict[str, Any]) -> Host:
        return cls(out["name"], out["machine"], tuple(out["groups"]), out["address"],
                   out["ssh_user"], int(out["ssh_port"]), out["host_key"])


def trust(env: str, hosts: list[Host]) -> Path:
    """Record every host's key (read from the host by the driver) in the lab's known_hosts."""
    for h in hosts:
        keys.known_hosts_add(env, h.address, h.host_key)
    return keys.known_hosts_path(env)


def ansible_inventory(env: str, hosts: list[Host],
                      variables: dict[str, dict[str, Any]] | None = None,
                      path: Path | None = None) -> Path:
    """Write the Ansible inventory for these hosts, with each host's role ``variables``
    (:func:`fellesdrift.hostvars.render`) marked ``!unsafe`` and secrets ``!vault``; returns
    its path (mode 0600; the lab's .lab/<env>/inventory.yml unless ``path`` is given)."""
    key, _ = keys.lab_keypair(env)
    variables = variables or {}
    shared = _shared(hosts, variables)
    groups: dict[str, dict[str, Any]] = {}
    for h in hosts:
        for g in h.groups:
            groups.setdefault(g, {"hosts": {}})["hosts"][h.name] = {}
    inventory = {"all": {
        "hosts": {h.name: {**{k: v for k, v in variables.get(h.name, {}).items()
                              if k not in shared},
                           "ansible_host": _Plain(h.address),
                           "ansible_user": _Plain(h.ssh_user), "ansible_port": h.ssh_port}
                  for h in hosts},
        "vars": {
            **shared,
            "ansible_ssh_private_key_file": _Plain(key),
            "ansible_ssh_common_args":
                _Plain(f"-o UserKnownHostsFile={keys.known_hosts_path(env)} "
                       "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"),
        },
        "children": groups,
    }}
    path = path or lab_dir(env) / "inventory.yml"
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(inventory_yaml(inventory), encoding="utf-8")
    return path


def _shared(hosts: list[Host], variables: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The variables every host has with the same value (the lab's CA, its domain, the kernel
    baseline …): the inventory writes them once, in ``all.vars``, not in every host's entry."""
    if len(hosts) < 2:
        return {}
    first, *rest = (variables.get(h.name, {}) for h in hosts)
    return {k: v for k, v in first.items() if all(k in other and other[k] == v for other in rest)}


def ssh_config(env: str, hosts: list[Host]) -> Path:
    """Write an OpenSSH client config naming every host (for testinfra's ssh backend)."""
    key, _ = keys.lab_keypair(env)
    blocks = [
        f"Host {h.name}\n  HostName {h.address}\n  User {h.ssh_user}\n  Port {h.ssh_port}\n"
        f"  IdentityFile {key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {keys.known_hosts_path(env)}\n  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n"
        for h in hosts
    ]
    path = lab_dir(env) / "ssh_config"
    path.write_text("\n".join(blocks))
    return path


def save(env: str, stack: str, hosts: list[Host]) -> Path:
    """Keep the hosts one stack declared, so converge and verify can run on their own."""
    path = lab_dir(env) / "hosts" / f"{stack}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump([h.__dict__ | {"groups": list(h.groups)} for h in hosts]))
    return path


def forget(env: str, stack: str) -> None:
    (lab_dir(env) / "hosts" / f"{stack}.yml").unlink(missing_ok=True)


def load(env: str) -> list[Host]:
    """Every host of every stack of the lab, as last provisioned."""
    found: list[Host] = []
    for path in sorted((lab_dir(env) / "hosts").glob("*.yml")):
        found += [Host.from_output(h) for h in yaml.safe_load(path.read_text()) or []]
    return found
