"""The lab's secrets: one store encrypted with the centre's passphrase (Ansible Vault), nothing
in clear beside it, and the passphrase handed to Ansible without ever being written down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.parsing.vault import AnsibleVaultError
from cryptography.hazmat.primitives import serialization

from fellesdrift.access import credentials, pki

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "vault-password"
PASSPHRASE = "unit-test passphrase"


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr("fellesdrift.paths.LAB_DIR", tmp_path)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv(credentials.PASSPHRASE_SOCKET, raising=False)
    return tmp_path / "unit"


def _files_holding(folder: Path, needle: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_passwords_are_stable_and_only_in_the_encrypted_store(lab: Path) -> None:
    first = credentials.password("unit", "gis/vinje")
    assert credentials.password("unit", "gis/vinje") == first
    assert credentials.password("unit", "gis/tokke") != first
    store = credentials.store_path("unit")
    assert store.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    assert store.stat().st_mode & 0o777 == 0o600
    assert _files_holding(lab, first) == []
    assert repr(first) == "Secret('********')"


def test_ansible_vault_opens_the_store_with_the_project_settings(lab: Path) -> None:
    secret = credentials.password("unit", "okonomi/vinje")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-vault"), "view",
                           str(credentials.store_path("unit"))], capture_output=True, text=True,
                          check=False, env={**os.environ,
                                            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["passwords"] == {"okonomi/vinje": secret}


def test_another_passphrase_cannot_open_the_store(lab: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    credentials.password("unit", "gis/vinje")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "not the centre's")
    with pytest.raises(AnsibleVaultError):
        credentials.password("unit", "gis/vinje")


def test_the_passphrase_is_pulumis_file_when_no_variable_names_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    phrase = tmp_path / "phrase"
    phrase.write_text("from a file\n")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", str(phrase))
    assert credentials.passphrase() == "from a file\n"
    out = subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=True).stdout
    assert out == "from a file\n"


def test_a_clear_text_store_of_an_earlier_version_is_moved_into_the_vault(lab: Path) -> None:
    lab.mkdir(parents=True)
    (lab / "credentials.json").write_text(json.dumps({"gis/vinje": "old-password"}))
    assert credentials.password("unit", "gis/vinje") == "old-password"
    assert not (lab / "credentials.json").exists()
    assert _files_holding(lab, "old-password") == []


def test_private_keys_of_the_ca_and_endpoints_are_kept_encrypted(lab: Path) -> None:
    tls = pki.server("unit", "Telemark IKT", ["okonomi.unit.fellesdrift.internal"],
                     ["10.104.0.170"])
    assert isinstance(tls.key, credentials.Secret)
    assert serialization.load_pem_private_key(tls.key.encode(), password=None)
    again = pki.server("unit", "Telemark IKT", ["okonomi.unit.fellesdrift.internal"],
                       ["10.104.0.170"])
    assert again == tls
    assert sorted(p.name for p in (lab / "pki").iterdir()) == [
        "ca.crt", "okonomi.unit.fellesdrift.internal.crt"]
    keys = credentials.every_secret("unit")
    assert sorted(keys) == ["private key pki/ca",
                            "private key pki/okonomi.unit.fellesdrift.internal"]
    assert keys["private key pki/okonomi.unit.fellesdrift.internal"] == tls.key
    for key in keys.values():
        body = key.splitlines()[1]  # a line of the key's base64
        assert _files_holding(lab, body) == []


def test_a_passphrase_from_the_environment_is_served_not_inherited(
        lab: Path) -> None:
    with credentials.passphrase_service() as (withheld, channel):
        assert withheld == ["PULUMI_CONFIG_PASSPHRASE"]
        env = {k: v for k, v in os.environ.items() if k not in withheld} | channel
        assert PASSPHRASE not in json.dumps(env)
        out = subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=True,
                             env=env).stdout
        assert out == PASSPHRASE
    assert not Path(channel[credentials.PASSPHRASE_SOCKET]).exists()
