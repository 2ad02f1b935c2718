"""The checkout's files an apply depends on, and one digest of them: what a plan file is
checked against (:mod:`fellesdrift.change.planfile`) and what a host was converged from
(:mod:`fellesdrift.pipeline.converged`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from fellesdrift.paths import ROOT

#: What of the checkout an apply depends on, besides the inventory files (folders are walked).
CODE = ("fellesdrift", "stacks", "templates", "roles", "playbooks", "Pulumi.yaml",
        "requirements.lock", "pyproject.toml", "ansible.cfg")
_SKIPPED = ("__pycache__", ".pyc", ".pyo")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inputs(inventory_files: Iterable[Path], root: Path = ROOT) -> dict[str, str]:
    """Every input's SHA-256: ``inventories/<name>`` for each inventory file (wherever its
    folder is), the checkout's files by their path in it."""
    found = {f"inventories/{f.name}": _sha256(f) for f in inventory_files}
    for name in CODE:
        top = root / name
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for p in paths:
            relative = p.relative_to(root).as_posix()
            if not any(part in relative for part in _SKIPPED):
                found[relative] = _sha256(p)
    return dict(sorted(found.items()))


def digest(found: dict[str, str]) -> str:
    """One digest of all inputs: ``sha256:<hex>``."""
    text = json.dumps(sorted(found.items()), separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
