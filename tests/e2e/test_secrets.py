"""No generated secret in clear on the control node after a real `up`: every password and private
key of the lab's encrypted store (and the centre's passphrase) is looked for in every file the
platform writes: the lab folder (inventory, ansible-runner artifacts, facts, verify's JUnit and
pytest log, ssh config), Pulumi's state, the reports, the router backups, Ansible's local
folder, and what `up` printed.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fellesdrift import credentials

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab


def _needles(name: str, secret: str) -> list[tuple[str, str]]:
    """What betrays a secret in a file: a password as it is; a PEM key by each line of its
    base64 body (also found when the key was written JSON- or YAML-escaped)."""
    if "-----BEGIN" not in secret:
        return [(name, secret)]
    body = [line for line in secret.splitlines() if line and not line.startswith("-----")]
    return [(f"{name} (line {i})", line) for i, line in enumerate(body, 1) if len(line) >= 16]


def _files(folders: list[Path]) -> Iterator[Path]:
    for folder in folders:
        if folder.is_dir():
            yield from (p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _content(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def scan(env: str, extra: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """(files scanned, one line per clear-text hit: file and the secret's name, never its value)."""
    store = credentials.store_path(env)
    needles = [n for name, s in credentials.every_secret(env).items() for n in _needles(name, s)]
    needles.append(("the centre's passphrase", credentials.passphrase().strip()))
    folders = [ROOT / ".lab" / env, ROOT / ".state", ROOT / "reports" / env,
               ROOT / "backups" / env, Path.home() / ".ansible"]
    hits, scanned = [], 0
    for path in _files(folders):
        if path == store:
            continue
        scanned += 1
        data = _content(path)
        hits += [f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {name}"
                 for name, value in needles if value.encode() in data]
    for label, text in (extra or {}).items():
        hits += [f"{label}: {name}" for name, value in needles if value in text]
    return scanned, hits


def test_no_generated_secret_is_in_clear_anywhere_but_the_encrypted_store(
        pipeline_lab: Any) -> None:
    env = pipeline_lab.env
    secrets = credentials.every_secret(env)
    # The scan means something: the lab made its database passwords and keys, converged, and
    # the inventory hands them to Ansible encrypted.
    assert any(name.startswith("password gis/") for name in secrets), sorted(secrets)
    assert any(name.startswith("password okonomi/") for name in secrets), sorted(secrets)
    assert "private key pki/ca" in secrets
    lab = pipeline_lab.lab_dir
    assert "!vault |" in (lab / "inventory.yml").read_text()
    assert list((lab / "ansible" / "artifacts").glob("*/job_events/*.json"))
    assert (lab / "verify" / "junit.xml").exists()
    scanned, hits = scan(env, {"the output of up": json.dumps(pipeline_lab.first_up)})
    assert scanned > 100
    assert hits == [], f"{len(hits)} clear-text secret(s) in {scanned} files:\n" + "\n".join(hits)
