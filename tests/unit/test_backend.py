"""Backend selection: which URL an environment gets, credentials never printed nor taken from a
file others can read, and the file backend's locks as the engine writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fellesdrift.paths import STATE_DIR
from fellesdrift.provision import backend

URL = "postgres://fellesdrift:s3cret%21@db.example:5432/state?sslmode=require"


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (backend.ENV_URL, backend.ENV_FILE, "PULUMI_BACKEND_URL"):
        monkeypatch.delenv(name, raising=False)


def test_the_file_backend_under_the_checkout_is_the_default() -> None:
    store = backend.for_environment("pg")
    assert store.url == f"file://{STATE_DIR}"
    assert not store.shared and store.source == "default"
    assert store.engine_env == {"PULUMI_BACKEND_URL": f"file://{STATE_DIR}"}


def test_a_postgres_url_from_the_environment_is_shared_and_shown_without_its_password(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(backend.ENV_URL, URL)
    store = backend.for_environment("pg")
    assert store.shared and store.engine_env == {"PULUMI_BACKEND_URL": URL}
    assert store.display == "postgres://fellesdrift:****@db.example:5432/state?sslmode=require"
    assert "s3cret" not in store.display and store.table == "pulumi_state"


def test_a_password_parameter_is_redacted_too() -> None:
    assert backend.redact("postgres://db/state?user=a&password=x%20y&table=t") == \
        "postgres://db/state?user=a&password=****&table=t"


def test_a_0600_file_gives_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "backend"
    secret.write_text(URL + "\n")
    secret.chmod(0o600)
    monkeypatch.setenv(backend.ENV_FILE, str(secret))
    assert backend.for_environment("pg").url == URL


def test_a_file_others_may_read_is_refused_with_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "backend"
    secret.write_text(URL + "\n")
    secret.chmod(0o640)
    monkeypatch.setenv(backend.ENV_FILE, str(secret))
    with pytest.raises(backend.BackendError) as e:
        backend.for_environment("pg")
    message = str(e.value)
    assert message.startswith(f"{secret}: ") and "0640" in message
    assert f"chmod 600 {secret}" in message and "[backend-file-mode]" in message
    assert "s3cret" not in message and "\n" not in message


def test_an_environment_setting_with_a_password_is_refused() -> None:
    with pytest.raises(backend.BackendError, match=r"environment pg: backend: holds a password"
                       r".*\[backend-credentials\]") as e:
        backend.for_environment("pg", setting=URL)
    assert "s3cret" not in str(e.value)
    plain = "postgres://fellesdrift@db.example:5432/state"
    assert backend.for_environment("pg", setting=plain).url == plain


def test_the_process_environment_wins_over_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(backend.ENV_URL, URL)
    assert backend.for_environment("pg", setting="postgres://other/state").url == URL


@pytest.mark.parametrize(("url", "rule"), [
    ("s3://bucket", "backend-scheme"), ("postgresql://db/state", "backend-scheme"),
    ("file://relative", "backend-scheme"), ("postgres://db/state?table=x;drop", "backend-table"),
])
def test_unsupported_urls_are_refused(url: str, rule: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(backend.ENV_URL, url)
    with pytest.raises(backend.BackendError, match=rf"\[{rule}\]"):
        backend.for_environment("pg")


def test_file_backend_locks_name_their_holder_and_unlock_removes_them(tmp_path: Path) -> None:
    # The layout Pulumi's DIY backend writes (pkg/backend/diy/lock.go).
    lock = tmp_path / ".pulumi" / "locks" / "organization" / "fellesdrift" / "pg.tokke" / "a.json"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": 42, "username": "ops", "hostname": "ctl1",
                                "timestamp": "2026-12-01T12:00:00Z"}))
    other = lock.parent.parent / "pg.vinje" / "b.json"
    other.parent.mkdir()
    other.write_text("{}")
    store = backend.Backend(f"file://{tmp_path}", "test")
    found = store.locks("pg.tokke")
    assert [(f.key, f.who) for f in found] == [(str(lock), "ops@ctl1 (pid 42)")]
    store.unlock(found[0])
    assert not lock.exists() and other.exists()
    assert store.reachable() == (True, "0 stack(s)")


def test_an_unreachable_postgres_is_reported_not_raised() -> None:
    store = backend.Backend("postgres://nobody:pw@127.0.0.1:1/state?sslmode=disable", "test")
    ok, detail = store.reachable()
    assert not ok and "not reachable" in detail and ":pw@" not in detail
