"""Where fellesdrift keeps things: the checkout, its git-ignored state, and caches outside it."""

from __future__ import annotations

import os
from pathlib import Path

#: The checkout (the package is installed editable from it).
ROOT = Path(os.environ.get("FELLESDRIFT_ROOT", Path(__file__).resolve().parent.parent))
#: Pulumi's local file backend (git-ignored).
STATE_DIR = ROOT / ".state"
#: Per-lab keys, known_hosts and run artifacts (git-ignored); removed by `make down`.
LAB_DIR = ROOT / ".lab"
#: Caches that outlive a checkout: the built Pulumi engine, the lab's golden image recipe stamp.
CACHE_DIR = Path(os.environ.get("FELLESDRIFT_CACHE", Path.home() / ".cache" / "fellesdrift"))
INVENTORIES = ROOT / "inventories"
ROLES = ROOT / "roles"
PLAYBOOKS = ROOT / "playbooks"


def lab_dir(env: str) -> Path:
    """The folder holding one lab's key pair, known_hosts and artifacts."""
    return LAB_DIR / env
