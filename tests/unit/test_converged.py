"""`up` leaves out the converge of a host only when nothing it is converged from changed: its
variables, its machine, the code; its stack was not changed in this run; and its last
converge and verify passed. Anything else converges it again."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from fellesdrift import paths
from fellesdrift.access.credentials import Secret
from fellesdrift.pipeline import converged
from fellesdrift.provision.hosts import Host
from fellesdrift.report import status
from fellesdrift.report.status import PhaseResult

ENV = "converged-unit"
KEY = "the centre's passphrase"
ROUTER = Host("vinje-radhus-router", "lab-vinje-radhus-router", ("site_router", "vinje"),
              "10.104.1.1", "ops", 22, "ssh-ed25519 AAAAC3Nza first")
CLIENT = Host("vinje-radhus-client", "lab-vinje-radhus-client", ("site_client", "vinje"),
              "10.104.1.10", "ops", 22, "ssh-ed25519 AAAAC3Nza second")
VARIABLES = {ROUTER.name: {"site_router__lan": "10.104.1.0/24"},
             CLIENT.name: {"site_client__password": Secret("s3cret-password")}}


@pytest.fixture(autouse=True)
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "LAB_DIR", tmp_path / ".lab")


def passed(*names: str) -> None:
    for phase in ("converge", "verify"):
        status.record(ENV, phase, {n: PhaseResult(True) for n in names})


def test_a_host_whose_inputs_and_checks_are_as_last_time_is_left_out() -> None:
    now = converged.digests(VARIABLES, [ROUTER, CLIENT], KEY)
    passed(ROUTER.name, CLIENT.name)
    converged.remember(ENV, now, [ROUTER.name, CLIENT.name])
    assert converged.unchanged(ENV, now, [ROUTER.name, CLIENT.name], set()) == [
        ROUTER.name, CLIENT.name]


def test_a_host_converges_again_when_anything_it_is_made_from_changed() -> None:
    before = converged.digests(VARIABLES, [ROUTER, CLIENT], KEY)
    passed(ROUTER.name, CLIENT.name)
    converged.remember(ENV, before, [ROUTER.name, CLIENT.name])
    # A variable of the router; the client's machine (a new host key: a new container).
    variables = {**VARIABLES, ROUTER.name: {"site_router__lan": "10.104.2.0/24"}}
    client = Host(*(CLIENT.__dict__ | {"host_key": "ssh-ed25519 AAAAC3Nza third"}).values())
    now = converged.digests(variables, [ROUTER, client], KEY)
    assert converged.unchanged(ENV, now, [ROUTER.name, CLIENT.name], set()) == []
    # The same inputs, but its stack was changed by this run's provision.
    assert converged.unchanged(ENV, before, [ROUTER.name, CLIENT.name], {ROUTER.name}) == [
        CLIENT.name]


def test_a_code_change_converges_every_host(tmp_path: Path) -> None:
    role = tmp_path / "roles" / "common" / "tasks" / "main.yml"
    role.parent.mkdir(parents=True)
    role.write_text("---\n")
    first = converged.digests(VARIABLES, [ROUTER], KEY, root=tmp_path)
    assert converged.digests(VARIABLES, [ROUTER], KEY, root=tmp_path) == first
    role.write_text("---\n- name: A new task\n")
    assert converged.digests(VARIABLES, [ROUTER], KEY, root=tmp_path) != first


def test_a_host_whose_last_converge_or_verify_failed_converges_again() -> None:
    now = converged.digests(VARIABLES, [ROUTER, CLIENT], KEY)
    passed(ROUTER.name, CLIENT.name)
    converged.remember(ENV, now, [ROUTER.name, CLIENT.name])
    status.record(ENV, "verify", {CLIENT.name: PhaseResult(False, "1 failed")})
    assert converged.unchanged(ENV, now, [ROUTER.name, CLIENT.name], set()) == [ROUTER.name]
    status.record(ENV, "converge", {ROUTER.name: PhaseResult(False, "not idempotent")})
    assert converged.unchanged(ENV, now, [ROUTER.name, CLIENT.name], set()) == []


def test_a_failed_converge_forgets_the_host_and_a_lab_without_a_record_converges_all() -> None:
    now = converged.digests(VARIABLES, [ROUTER, CLIENT], KEY)
    passed(ROUTER.name, CLIENT.name)
    assert converged.unchanged(ENV, now, [ROUTER.name, CLIENT.name], set()) == []
    converged.remember(ENV, now, [ROUTER.name, CLIENT.name])
    # The client's next converge fails: its digest is forgotten, so even once its status
    # reads ok again it converges (the router's record stays).
    status.record(ENV, "converge", {CLIENT.name: PhaseResult(False, "1 failed")})
    converged.remember(ENV, now, [CLIENT.name])
    passed(CLIENT.name)
    assert converged.unchanged(ENV, now, [ROUTER.name, CLIENT.name], set()) == [ROUTER.name]
    converged.path(ENV).write_text("{not json")
    assert converged.unchanged(ENV, now, [ROUTER.name, CLIENT.name], set()) == []


def test_the_record_holds_no_secret_and_only_its_owner_reads_it() -> None:
    now = converged.digests(VARIABLES, [CLIENT], KEY)
    passed(CLIENT.name)
    converged.remember(ENV, now, [CLIENT.name])
    text = converged.path(ENV).read_text()
    assert "s3cret" not in text and json.loads(text) == now
    assert stat.S_IMODE(converged.path(ENV).stat().st_mode) == 0o600
    # Keyed: another centre's passphrase gives another digest for the same inputs.
    assert converged.digests(VARIABLES, [CLIENT], "another passphrase") != now
