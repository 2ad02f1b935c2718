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

from fellesdrift.access import credentials

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab


def _needles(secret: str) -> list[str]:
    """What betrays a secret in a file: a password as it is; a PEM key by any line of its
    base64 body (also found when the key was written JSON- or YAML-escaped)."""
    if "-----BEGIN" not in secret:
        return [secret]
    return [line for line in secret.splitlines() if len(line) >= 16 and "-----" not in line]


def _files(folders: list[Path]) -> Iterator[Path]:
    for folder in folders:
        if folder.is_dir():
            yield from (p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _content(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def scan(env: str, extra: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """(files scanned, one line per file and secret found in it in clear: the file and the
    secret's name, never its value)."""
    needles = {name: _needles(s) for name, s in credentials.every_secret(env).items()}
    needles["the centre's passphrase"] = [credentials.passphrase().strip()]
    folders = [ROOT / ".lab" / env, ROOT / ".state", ROOT / "reports" / env,
               ROOT / "backups" / env, Path.home() / ".ansible"]
    texts = {str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p): _content(p)
             for p in _files(folders)}
    texts |= {label: text.encode() for label, text in (extra or {}).items()}
    hits = [f"{where}: {name}" for where, data in texts.items()
            for name, values in needles.items() if any(v.encode() in data for v in values)]
    return len(texts), hits


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
