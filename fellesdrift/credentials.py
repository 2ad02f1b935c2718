"""Secrets the platform makes for a lab: database passwords, one per purpose.

Kept in ``.lab/<env>/credentials.json`` (mode 0600) so every run hands the roles the same
password; removed with the lab. Nothing here is ever printed.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from .paths import lab_dir


def _path(env: str) -> Path:
    return lab_dir(env) / "credentials.json"


def password(env: str, purpose: str) -> str:
    """The password for ``purpose`` (e.g. ``gis/vinje``), made the first time it is asked for."""
    path = _path(env)
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if purpose not in known:
        known[purpose] = secrets.token_urlsafe(24)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(known, f, indent=1, sort_keys=True)
        tmp.replace(path)
    return known[purpose]
