"""The lab driver's pure parts: known_hosts editing, recipe hashing, guards (no Podman needed)."""

from __future__ import annotations

import re
import shutil
import stat
import tomllib
from pathlib import Path

import pytest

from fellesdrift import lab

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpi1HErZaRONPQnCBveb3xsFH0ZwfaBETTnt0CV4Yhj"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID+WFQ/zXJU845krT1d1YScWjB37kXYXqkRmxeqzDTsS"


def test_known_hosts_add_to_empty() -> None:
    assert lab.update_known_hosts_text("", "10.100.250.10", KEY_A) == f"10.100.250.10 {KEY_A}\n"


def test_known_hosts_add_replaces_the_line_for_that_ip_only() -> None:
    text = f"10.100.250.10 {KEY_A}\n10.100.250.11 {KEY_A}\n"
    out = lab.update_known_hosts_text(text, "10.100.250.10", KEY_B)
    assert out.splitlines() == [f"10.100.250.11 {KEY_A}", f"10.100.250.10 {KEY_B}"]


def test_known_hosts_add_drops_the_key_comment() -> None:
    out = lab.update_known_hosts_text("", "10.100.250.10", f"{KEY_A} root@labtest-a\n")
    assert out == f"10.100.250.10 {KEY_A}\n"


def test_known_hosts_ip_is_not_a_prefix_match() -> None:
    text = f"10.100.250.100 {KEY_A}\n"
    assert lab.update_known_hosts_text(text, "10.100.250.10", None) == text


def test_known_hosts_remove_keeps_other_hosts_of_a_shared_line_and_comments() -> None:
    text = f"# pinned\n10.100.250.10,10.100.250.12 {KEY_A}\n[10.100.250.10]:22 {KEY_B}\n"
    out = lab.update_known_hosts_text(text, "10.100.250.10", None)
    assert out == f"# pinned\n10.100.250.12 {KEY_A}\n"


def test_known_hosts_rejects_what_is_not_a_public_key() -> None:
    with pytest.raises(lab.LabError, match="not a single OpenSSH public key line"):
        lab.update_known_hosts_text("", "10.100.250.10", "garbage")
    with pytest.raises(lab.LabError):
        lab.update_known_hosts_text("", "10.100.250.10", f"{KEY_A}\n{KEY_B}")


def test_known_hosts_file_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab, "lab_dir", lambda env: tmp_path / env)
    lab.known_hosts_add("unit", "10.100.250.10", KEY_A)
    lab.known_hosts_add("unit", "10.100.250.11", KEY_B)
    lab.known_hosts_add("unit", "10.100.250.10", KEY_B)
    path = lab.known_hosts_path("unit")
    assert path == tmp_path / "unit" / "known_hosts"
    assert path.read_text() == f"10.100.250.11 {KEY_B}\n10.100.250.10 {KEY_B}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lab.known_hosts_remove("unit", "10.100.250.11")
    lab.known_hosts_remove("unit", "10.100.250.99")
    assert path.read_text() == f"10.100.250.10 {KEY_B}\n"


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_lab_keypair_is_made_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab, "lab_dir", lambda env: tmp_path / env)
    key, pub = lab.lab_keypair("unit")
    assert key == tmp_path / "unit" / "id_ed25519"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert pub.startswith("ssh-ed25519 ") and pub.endswith("fellesdrift-lab-unit")
    assert lab.lab_keypair("unit") == (key, pub)


def _copy_recipe(tmp_path: Path) -> Path:
    recipe = tmp_path / "golden-image"
    shutil.copytree(lab.RECIPE_DIR, recipe)
    return recipe


def test_recipe_hash_is_12_hex_and_stable(tmp_path: Path) -> None:
    recipe = _copy_recipe(tmp_path)
    digest = lab.recipe_hash(recipe)
    assert re.fullmatch(r"[0-9a-f]{12}", digest)
    assert digest == lab.recipe_hash(lab.RECIPE_DIR)  # location does not matter
    assert lab.golden_image_ref(recipe) == f"localhost/fellesdrift-golden:{digest}"


def test_recipe_hash_changes_when_the_recipe_changes(tmp_path: Path) -> None:
    recipe = _copy_recipe(tmp_path)
    before = lab.recipe_hash(recipe)
    build = recipe / "build.sh"
    build.write_text(build.read_text().replace("iputils-ping", "iputils-ping curl"))
    edited = lab.recipe_hash(recipe)
    assert edited != before
    (recipe / "files" / "extra.conf").write_text("# new file\n")
    added = lab.recipe_hash(recipe)
    assert added != edited
    (recipe / "files" / "extra.conf").chmod(0o755)
    assert lab.recipe_hash(recipe) != added


def test_recipe_hash_of_a_missing_recipe_is_a_lab_error(tmp_path: Path) -> None:
    with pytest.raises(lab.LabError, match="recipe not found"):
        lab.recipe_hash(tmp_path / "nothing")


def test_podman_conf_sets_what_the_lab_needs() -> None:
    conf = tomllib.loads(lab.PODMAN_CONF_TEXT)
    assert conf["engine"]["runtime"] == "runc"
    assert conf["engine"]["cgroup_manager"] == "cgroupfs"
    assert conf["containers"]["default_ulimits"] == ["nofile=1024:20000", "nproc=4096:8192"]
    assert conf["network"]["network_backend"] == "netavark"


@pytest.mark.parametrize(
    "prefix", ["0.0.0.0/0", "8.8.8.0/24", "10.0.0.0/7", "10.100.0.1/16", "not-a-prefix"]
)
def test_unreachable_routes_refuse_dangerous_prefixes(prefix: str) -> None:
    with pytest.raises(lab.LabError, match="unreachable route"):
        lab.add_unreachable_routes([prefix])


def test_invalid_env_names_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab, "lab_dir", lambda env: tmp_path / env)
    for env in ("", "../x", ".hidden"):
        with pytest.raises(lab.LabError, match="invalid lab env name"):
            lab.known_hosts_add(env, "10.100.250.10", KEY_A)
