"""What each host was last converged from, so that `up` converges only the hosts whose inputs
changed.

A host's inputs are everything a converge of it reads: its rendered role variables
(:func:`fellesdrift.converge.hostvars.render`), the host as provisioned (address, groups, host
key), and the checkout's code (:data:`fellesdrift.checkout.CODE`: roles, playbooks,
ansible.cfg, the package, the lock file). Their digest is an HMAC keyed with the centre's
passphrase: the variables hold secrets, and a plain hash of a secret could be tried against
guesses.

`up` skips the converge of a host only when all of these hold (:func:`unchanged`):

- its digest equals the one recorded after its last converge;
- its stack's provision in this run changed nothing (a machine Pulumi replaced starts from the
  golden image again, even when it keeps its name and key);
- the status record says its last converge and its last verify passed.

Everything else converges as before; `up --converge-all` and `fellesdrift converge` converge
every host whatever the record says. The record is ``.lab/<env>/converged.json``
(host → digest), rewritten after each converge of `up` (:func:`remember`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from fellesdrift import checkout, files
from fellesdrift.access import credentials
from fellesdrift.paths import ROOT, lab_dir
from fellesdrift.provision.hosts import Host
from fellesdrift.report import status


def path(env: str) -> Path:
    return lab_dir(env) / "converged.json"


def digests(variables: Mapping[str, Mapping[str, Any]], every: Iterable[Host],
            key: str | None = None, root: Path = ROOT) -> dict[str, str]:
    """Each host's digest over its variables, its provisioned record and the code of the
    checkout at ``root`` (``key``: the HMAC key, the centre's passphrase unless given)."""
    code = checkout.digest(checkout.inputs([], root))
    secret = (credentials.passphrase() if key is None else key).encode()
    found = {}
    for h in every:
        text = json.dumps({"code": code, "host": h.__dict__ | {"groups": list(h.groups)},
                           "variables": variables.get(h.name, {})},
                          sort_keys=True, default=str, separators=(",", ":"))
        found[h.name] = hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()
    return found


def load(env: str) -> dict[str, str]:
    """The recorded digests (none when the lab never converged through `up`, or the record is
    unreadable: then every host converges, which is always safe)."""
    try:
        data = json.loads(path(env).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def unchanged(env: str, now: Mapping[str, str], candidates: Iterable[str],
              reprovisioned: Collection[str]) -> list[str]:
    """Of ``candidates``, the hosts whose converge can be skipped (see the module's text);
    ``reprovisioned``: the hosts of the stacks this run's provision changed."""
    recorded = load(env)
    record = status.load(env)
    return [name for name in candidates
            if name not in reprovisioned and name in now and recorded.get(name) == now[name]
            and all(name in record[p] and record[p][name].ok for p in ("converge", "verify"))]


def remember(env: str, now: Mapping[str, str], converged: Iterable[str]) -> None:
    """After a converge of these hosts, recorded in the status record: keep the digest of each
    host the record now calls converged (idempotent), forget the others'; the records of hosts
    not in ``converged`` stay."""
    record = status.load(env)["converge"]
    with files.locked(lab_dir(env) / ".converged.lock"):
        recorded = load(env)
        for name in converged:
            if name in now and name in record and record[name].ok:
                recorded[name] = now[name]
            else:
                recorded.pop(name, None)
        files.write_atomic(path(env), json.dumps(dict(sorted(recorded.items())), indent=2) + "\n",
                           mode=0o600)
