"""Secrets the platform makes for a lab: database passwords, one per purpose, and the private
keys of its certificate authority and TLS endpoints.

All of them live in one encrypted store, ``.lab/<env>/secrets.vault``: an Ansible Vault file
(AES256) encrypted with the centre's passphrase, the one Pulumi's passphrase provider uses
(:func:`passphrase`). Every run hands the roles the same values; the store goes with the lab.
``ansible-vault view .lab/<env>/secrets.vault`` shows it (ansible.cfg names the vault password
script, ``scripts/vault-password``). Nothing here is ever printed: values leave this module as
:class:`Secret`, which hides itself from ``repr`` and which the Ansible inventory writes as a
``!vault`` value (:func:`fellesdrift.hosts.ansible_inventory`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import socketserver
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ansible.parsing.vault import VaultLib, VaultSecret

from fellesdrift.access import stack_encryption as made_once
from fellesdrift.paths import lab_dir

#: Where the centre's passphrase comes from, as for Pulumi: this variable, else the file this
#: one names, else the file made once by :func:`fellesdrift.access.stack_encryption.passphrase_env`.
PASSPHRASE = "PULUMI_CONFIG_PASSPHRASE"
PASSPHRASE_FILE = "PULUMI_CONFIG_PASSPHRASE_FILE"
#: Set by :func:`passphrase_service` for child processes instead of PULUMI_CONFIG_PASSPHRASE.
PASSPHRASE_SOCKET = "FELLESDRIFT_PASSPHRASE_SOCKET"


class Secret(str):
    """A value that is never written in clear (a password, a private key in PEM)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('********')"


def passphrase() -> str:
    """The centre's passphrase: the one Pulumi's passphrase provider is given
    (:func:`fellesdrift.access.stack_encryption.passphrase_env`, which makes it the first time)."""
    if PASSPHRASE in os.environ:
        return os.environ[PASSPHRASE]
    if PASSPHRASE_SOCKET in os.environ:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(os.environ[PASSPHRASE_SOCKET])
            return conn.makefile("rb").read().decode()
    environ = {**os.environ, **made_once.passphrase_env()}
    return Path(environ[PASSPHRASE_FILE]).read_text(encoding="utf-8")


@contextlib.contextmanager
def passphrase_service() -> Iterator[tuple[list[str], dict[str, str]]]:
    """For a child process whose environment gets written down (ansible-runner keeps it in its
    artifacts): yields (variables to leave out of its environment, variables to add) so that it
    reaches the passphrase without holding it. When the passphrase is given in
    PULUMI_CONFIG_PASSPHRASE, it is served, while this lasts, on a Unix socket in a folder only
    this user can open; a passphrase in a file needs nothing."""
    if PASSPHRASE not in os.environ:
        yield [], {}
        return
    value = os.environ[PASSPHRASE].encode()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(value)

    folder = tempfile.mkdtemp(prefix="fellesdrift-")  # mode 0700
    path = str(Path(folder) / "passphrase")
    server = socketserver.ThreadingUnixStreamServer(path, Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield [PASSPHRASE], {PASSPHRASE_SOCKET: path}
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(folder, ignore_errors=True)


def _vault() -> VaultLib:
    # Ansible strips the line ends of what a vault password script prints: the same bytes here.
    secret = passphrase().encode().strip(b"\r\n")
    if not secret:
        raise ValueError("the centre's passphrase is empty; set PULUMI_CONFIG_PASSPHRASE or "
                         "PULUMI_CONFIG_PASSPHRASE_FILE, or remove the empty "
                         f"{made_once.FILE}")
    return VaultLib([("default", VaultSecret(secret))])


def encrypt(plaintext: str) -> str:
    """``plaintext`` encrypted with the centre's passphrase: Ansible Vault text (for ``!vault``)."""
    return str(_vault().encrypt(plaintext).decode())


def decrypt(vaulttext: str) -> Secret:
    """The clear text of Ansible Vault text made by :func:`encrypt`."""
    return Secret(_vault().decrypt(vaulttext).decode())


def store_path(env: str) -> Path:
    return lab_dir(env) / "secrets.vault"


def _read(env: str) -> dict[str, dict[str, str]]:
    path = store_path(env)
    found: dict[str, dict[str, str]] = {"passwords": {}, "private_keys": {}}
    if path.exists():
        found |= json.loads(decrypt(path.read_text(encoding="ascii")))
    legacy = lab_dir(env) / "credentials.json"  # the clear-text store of earlier versions
    if legacy.exists():
        found["passwords"] = json.loads(legacy.read_text()) | found["passwords"]
        _write(env, found)
        legacy.unlink()
    return found


def _write(env: str, data: dict[str, dict[str, str]]) -> None:
    path = store_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(encrypt(json.dumps(data, indent=1, sort_keys=True)))
    tmp.replace(path)


def password(env: str, purpose: str) -> Secret:
    """The password for ``purpose`` (e.g. ``gis/vinje``), made the first time it is asked for."""
    known = _read(env)
    if purpose not in known["passwords"]:
        known["passwords"][purpose] = secrets.token_urlsafe(24)
        _write(env, known)
    return Secret(known["passwords"][purpose])


def private_key(env: str, name: str) -> Secret | None:
    """The private key (PEM) kept under ``name``, None when there is none."""
    pem = _read(env)["private_keys"].get(name)
    return None if pem is None else Secret(pem)


def keep_private_key(env: str, name: str, pem: str) -> None:
    """Keep the private key ``pem`` under ``name`` (replacing any earlier one)."""
    known = _read(env)
    known["private_keys"][name] = pem
    _write(env, known)


def every_secret(env: str) -> dict[str, Secret]:
    """Every secret of the lab's store by name (``password gis/vinje``, ``private key pki/ca``):
    what a scan for clear-text secrets looks for."""
    known = _read(env)
    return ({f"password {k}": Secret(v) for k, v in known["passwords"].items()}
            | {f"private key {k}": Secret(v) for k, v in known["private_keys"].items()})


def reveal(value: Any) -> Any:
    """A value of ``ansible-inventory --list`` (the JSON testinfra reads) as the roles see it:
    ``{"__ansible_unsafe": text}`` becomes the text, ``{"__ansible_vault": ciphertext}`` the
    :class:`Secret` it encrypts; lists and mappings are revealed item by item."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return str(value["__ansible_unsafe"])
        if set(value) == {"__ansible_vault"}:
            return decrypt(value["__ansible_vault"])
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


if __name__ == "__main__":
    # The vault password script (scripts/vault-password): the passphrase on stdout, for Ansible.
    sys.stdout.write(passphrase())
