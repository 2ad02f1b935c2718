"""Backend selection: which URL an environment gets (the process environment, a 0600 file, the
environment's ``backend:`` in environments.yaml, the file backend), credentials never printed
nor taken from git or from a file others can read, and the file backend's locks as the engine
writes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fellesdrift import environment, paths
from fellesdrift.paths import STATE_DIR
from fellesdrift.pipeline import doctor
from fellesdrift.provision import backend

URL = "postgres://fellesdrift:s3cret%21@db.example:5432/state?sslmode=require"
PLAIN = "postgres://fellesdrift@db.example:5432/state?sslmode=require"


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (backend.ENV_URL, backend.ENV_FILE, "PULUMI_BACKEND_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environments.yaml of the test's own (environment.FILE points at it)."""
    file = tmp_path / "environments.yaml"
    monkeypatch.setattr(environment, "FILE", file)
    return file


def with_backend(file: Path, value: str) -> None:
    file.write_text(f"lab:\n  driver: lab\npg:\n  driver: lab\n  backend: {value}\n")


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


def test_the_environments_backend_key_names_its_backend(environments: Path) -> None:
    with_backend(environments, PLAIN)
    store = backend.for_environment("pg")
    assert (store.url, store.shared) == (PLAIN, True)
    assert store.source == f"{environments}:5:12: pg.backend"  # where it is set
    assert store.display == PLAIN  # nothing to hide
    assert environment.get("pg").backend == PLAIN
    # Another environment of the same file keeps the file backend.
    assert backend.for_environment("lab").url == f"file://{STATE_DIR}"
    assert environment.get("lab").backend is None


def test_an_environment_backend_with_a_password_is_refused_with_one_line(
        environments: Path) -> None:
    with_backend(environments, URL)
    with pytest.raises(backend.BackendSettingError) as e:
        backend.for_environment("pg")
    message = str(e.value)
    assert message.startswith(f"{environments}:5:12: pg.backend: holds a password")
    assert "PGPASSWORD or a 0600 PGPASSFILE" in message and "[backend-credentials]" in message
    assert "s3cret" not in message and "\n" not in message
    assert e.value.exit_code == 1


@pytest.mark.parametrize(("value", "wrong", "right"), [
    ("s3://bucket/state", "backend 's3://bucket/state' is not supported",
     "use a postgres://user@host:port/database URL (or file:///absolute/path) [backend-scheme]"),
    ("postgresql://db/state", "backend 'postgresql://db/state' is not supported",
     "[backend-scheme]"),
    ("file://state", "'file://state'", "a file backend is file:///absolute/path"),
    ("postgres://db/state?table=Pulumi-State", "table='Pulumi-State'",
     "lower-case letters, digits and _ (default pulumi_state) [backend-table]"),
])
def test_an_environment_backend_that_is_no_backend_is_refused_at_its_line(
        environments: Path, value: str, wrong: str, right: str) -> None:
    with_backend(environments, value)
    with pytest.raises(backend.BackendSettingError) as e:
        backend.for_environment("pg")
    message = str(e.value)
    assert message.startswith(f"{environments}:5:12: pg.backend: "), message
    assert wrong in message and right in message and "\n" not in message


def test_the_process_environment_wins_over_the_environments_backend(
        environments: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_backend(environments, "postgres://other/state")
    monkeypatch.setenv(backend.ENV_URL, URL)
    assert backend.for_environment("pg").url == URL
    monkeypatch.delenv(backend.ENV_URL)
    monkeypatch.setenv("PULUMI_BACKEND_URL", URL)  # Pulumi's own comes after the environment's
    assert backend.for_environment("pg").url == "postgres://other/state"


def test_doctor_shows_the_environments_backend_and_where_it_is_set(environments: Path) -> None:
    with_backend(environments, "postgres://fellesdrift@127.0.0.1:1/state?sslmode=disable")
    check = doctor.backend_check("pg")
    assert not check.ok  # nothing listens on port 1
    assert check.version == (f"postgres://fellesdrift@127.0.0.1:1/state?sslmode=disable "
                             f"({environments}:5:12: pg.backend): not reachable")
    assert "PGPASSWORD or a 0600 PGPASSFILE" in check.fix
    with_backend(environments, "s3://bucket")
    check = doctor.backend_check("pg")
    assert (check.ok, check.version) == (False, "unusable")
    assert check.fix.startswith(f"{environments}:5:12: pg.backend: backend 's3://bucket'")


def test_a_bad_backend_stops_a_command_with_one_line_and_nothing_applied(
        environments: Path) -> None:
    with_backend(environments, URL)
    env = {k: v for k, v in os.environ.items()
           if k not in (backend.ENV_URL, backend.ENV_FILE, "PULUMI_BACKEND_URL")}
    proc = subprocess.run([sys.executable, "-m", "fellesdrift", "recover", "--env", "pg"],
                          cwd=paths.ROOT, capture_output=True, text=True, check=False,
                          timeout=120, env={**env, "FELLESDRIFT_ENVIRONMENTS": str(environments)})
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"error: {environments}:5:12: pg.backend: holds a password, and "
                     "environments.yaml is in git; remove it and give it in PGPASSWORD or a "
                     f"0600 PGPASSFILE (or the whole URL in {backend.ENV_URL} or a 0600 "
                     f"{backend.ENV_FILE}) [backend-credentials]; nothing was applied."], lines
    assert "s3cret" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(("url", "rule"), [
    ("s3://bucket", "backend-scheme"), ("postgresql://db/state", "backend-scheme"),
    ("file://relative", "backend-scheme"), ("postgres://db/state?table=x;drop", "backend-table"),
])
def test_unsupported_urls_are_refused(url: str, rule: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(backend.ENV_URL, url)
    with pytest.raises(backend.BackendSettingError, match=rf"^{backend.ENV_URL}: .*\[{rule}\]$"):
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
