"""A shared state backend: Pulumi's PostgreSQL DIY backend used by two checkouts at once.

A real PostgreSQL from Debian's package runs on loopback with its own data directory (initdb and
pg_ctl as the ``postgres`` user, a free port, its socket in the test's folder) and is stopped at
the end. A *checkout* is what an engineer or a CI runner has: a git worktree of this commit with
its own working state (`.lab/<env>/`, the `Pulumi.<stack>.yaml` files, its copy of the
inventory folder); what they share is the backend, the lab's key pair (a team's secret, copied
here) and the secrets passphrase. Checkout A is given the backend's URL in
``FELLESDRIFT_BACKEND``; checkout B names it in its environments.yaml (``pg: backend:
postgres://fellesdrift@…``, no password) and reads the password from a 0600 ``PGPASSFILE``, as a
team would. Both provision through ``pipeline.provision_all``, the provision phase of
`fellesdrift up` (the phases after it do not touch the backend, and a full `up` would not fit
the tier's time), against env ``pg`` on 10.106.0.0/16, and record their applies in the audit log
through the change package as `up` does (``Apply.done``).

Proves: the two checkouts apply two municipalities at the same time and both succeed, though
both subscribe to GIS hosting, so both apply the core's stack too (for sizing): the one that
finds the core's lock held waits for it, saying who holds it, then applies; an explicit
provision of a stack another run holds fails at once naming the holder; what one checkout wrote the
other reads (`fellesdrift plan` there shows no changes); the stacks' secrets are ciphertext in
the table; the audit log is kept with the state: one row per apply in the same database, both
checkouts read the same records, the table refuses UPDATE, DELETE and TRUNCATE, no checkout has
a log file; `doctor` reports the backend without its password; `down` leaves nothing of env pg
(and its record is the log's last).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fellesdrift.change import audit
from fellesdrift.provision import backend, engine

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "inventories"
ENV = "pg"
PASSWORD = "pg-e2e-Secret"
AUDIT = audit.TABLE
#: The --emergency reasons of the three applies the first test records, to tell them apart.
CORE_REASON, A_REASON, B_REASON = ("e2e: the core, from A", "e2e: tokke, from A",
                                   "e2e: vinje, from B")

PROVISION = """
import json, os, sys, time
from pathlib import Path
from fellesdrift import environment
from fellesdrift.change import apply as changes
from fellesdrift.inventory import load as inventory
from fellesdrift.pipeline import job as pipeline
from fellesdrift.provision import hosts
folder, targets = Path(sys.argv[1]), sys.argv[2:]
model = inventory.load([folder])
selection = pipeline.selection(model, "pg", targets, False, "HEAD", [])
reason = os.environ.get("PG_E2E_AUDIT")  # record this apply in the audit log, as `up` does
applying = reason and changes.start(model, "pg", selection, [folder], None, reason)
settings = pipeline.stack_settings(environment.get("pg", [folder]), model, say=lambda _: None)
go = Path(os.environ.get("PG_E2E_GO", ""))
if go.name:  # prepared: the stack's run starts when the test says go
    go.with_name(go.name + ".ready").touch()
while go.name and not go.exists():
    time.sleep(0.05)
results = pipeline.provision_all(selection, folder, settings, workers=2,
                                 say=lambda line: print(line, file=sys.stderr, flush=True))
if applying:  # the record `up` writes when a run ends after provision (here: no converge)
    made = [hosts.Host.from_output(h) for r in results for h in r.hosts]
    applying.done(pipeline.Outcome(results, hosts=made), None)
print(json.dumps([{"stack": r.stack, "changes": r.changes, "error": r.error} for r in results]))
"""


def _pg_bin(program: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"))
    assert found, f"{program} not found: apt-get install postgresql (scripts/setup.sh)"
    return str(found[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Postgres:
    url: str
    psql_env: dict[str, str]

    @property
    def url_without_password(self) -> str:
        return self.url.replace(f":{PASSWORD}@", "@")

    def sql(self, query: str) -> str:
        return subprocess.run(["psql", "-X", "-w", "-At", "-v", "ON_ERROR_STOP=1", "-c", query],
                              env=self.psql_env, capture_output=True, text=True,
                              check=True).stdout

    def refused(self, query: str) -> str:
        """The server's error for ``query``, which must fail."""
        proc = subprocess.run(["psql", "-X", "-w", "-At", "-v", "ON_ERROR_STOP=1", "-c", query],
                              env=self.psql_env, capture_output=True, text=True, check=False)
        assert proc.returncode != 0, f"{query}: {proc.stdout}"
        return proc.stderr


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    # Its own folder outside pytest's (which only root may enter), owned by the server's user.
    home = Path(tempfile.mkdtemp(prefix="fellesdrift-pg-"))
    home.chmod(0o700)
    shutil.chown(home, "postgres")
    pwfile = home / "pw"
    pwfile.write_text(PASSWORD + "\n")
    pwfile.chmod(0o600)
    shutil.chown(pwfile, "postgres")
    data, port = home / "data", _free_port()

    def as_postgres(*argv: str) -> None:
        proc = subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=False,
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{argv[0]}: {proc.stderr[-2000:]}"

    as_postgres(_pg_bin("initdb"), "-D", str(data), "-U", "fellesdrift", "-A", "scram-sha-256",
                f"--pwfile={pwfile}", "-E", "UTF8")
    as_postgres(_pg_bin("pg_ctl"), "-D", str(data), "-l", str(home / "log"), "-w", "-o",
                f"-c listen_addresses=127.0.0.1 -p {port} -k {home}", "start")
    try:
        env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(port), "PGUSER": "fellesdrift",
               "PGPASSWORD": PASSWORD, "PGDATABASE": "postgres"}
        subprocess.run(["psql", "-X", "-w", "-c", "CREATE DATABASE state"], env=env, check=True,
                       capture_output=True)
        yield Postgres(f"postgres://fellesdrift:{PASSWORD}@127.0.0.1:{port}/state"
                       "?sslmode=disable", {**env, "PGDATABASE": "state"})
    finally:
        as_postgres(_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(home)


@dataclass(frozen=True)
class Checkout:
    root: Path
    inventories: Path
    env: dict[str, str]

    def run(self, *argv: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *argv], cwd=self.root, env=self.env,
                              capture_output=True, text=True, check=False, timeout=timeout)

    def fellesdrift(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("-m", "fellesdrift", *args)

    def pulumi(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The engine itself, as this checkout's workspace runs it."""
        env = {**self.env, **engine.env(backend.Backend(self.env["FELLESDRIFT_BACKEND"], "test"))}
        return subprocess.run([str(engine.bin_dir() / "pulumi"), *args], cwd=self.root, env=env,
                              capture_output=True, text=True, check=True)

    def provision(self, *targets: str, go: Path | None = None,
                  audit: str | None = None) -> subprocess.Popen[str]:
        """Provision ``targets``; with ``audit`` (the apply's --emergency reason), record the
        apply in the audit log as `up` does."""
        env = {**self.env, **({"PG_E2E_GO": str(go)} if go else {}),
               **({"PG_E2E_AUDIT": audit} if audit else {})}
        return subprocess.Popen([sys.executable, "-c", PROVISION, str(self.inventories),
                                 *targets], cwd=self.root, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def results(proc: subprocess.Popen[str], said: list[str] | None = None
            ) -> list[dict[str, Any]]:
    """The stacks' results of a provision; ``said``: gets the lines it said on the way."""
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-4000:]
    if said is not None:
        said += err.splitlines()
    found: list[dict[str, Any]] = json.loads(out.strip().splitlines()[-1])
    return found


def ready(go: Path, proc: subprocess.Popen[str]) -> None:
    """Bounded wait until a provision started with ``go`` has prepared and waits for it."""
    deadline = time.monotonic() + 300
    while not go.with_name(go.name + ".ready").exists():
        assert proc.poll() is None, "the provision ended before it was ready"
        assert time.monotonic() < deadline, "the provision never got ready"
        time.sleep(0.05)


def holder_of(postgres: Postgres, stack: str, proc: subprocess.Popen[str]) -> str:
    """Bounded wait until ``proc`` holds ``stack``'s lock (its row in the table); who holds it,
    as the engine wrote it in the row."""
    deadline = time.monotonic() + 300
    while not (held := state_rows(postgres, f"state/.pulumi/locks/%/{stack}/%.json")):
        assert proc.poll() is None, f"the run ended before it took {stack}'s lock"
        assert time.monotonic() < deadline, f"the run never took {stack}'s lock"
        time.sleep(0.1)
    holder = json.loads(next(iter(held.values())))
    return f"{holder['username']}@{holder['hostname']} (pid {holder['pid']})"


def labeled(kind: str) -> list[str]:
    listing = ["container", "ls", "-a", "--format", "{{.Names}}"] if kind == "container" \
        else ["network", "ls", "--format", "{{.Name}}"]
    return subprocess.run(["podman", *listing, "--filter", f"label=fellesdrift.lab={ENV}"],
                          capture_output=True, text=True, check=True).stdout.split()


def pg_routes() -> list[str]:
    table = subprocess.run(["ip", "route", "show", "type", "unreachable"], capture_output=True,
                           text=True, check=True).stdout
    return [line for line in table.splitlines() if line.split()[1].startswith("10.106.")]


def small_inventory(folder: Path, checkout: Path) -> None:
    """The fixture inventories on 10.106.0.0/16, with GIS hosting but without finance hosting
    (a smaller core). Both municipalities subscribe to GIS, so `-m SLUG` applies the core's
    stack too (the hosting is sized from its subscribers: ``Selection.sizes_core``)."""
    for f in (checkout / FIXTURES.relative_to(ROOT)).glob("*.yaml"):  # as the checkout has them
        text = f.read_text().replace("10.104.", "10.106.")
        text = re.sub(r"  - service: okonomi\n    tier: standard\n", "", text)
        text = re.sub(r"  - hostname: okonomi-01\n    role: \w+\n    address: \S+\n", "", text)
        (folder / f.name).write_text(text)
    for name in ("tokke.yaml", "vinje.yaml"):
        assert "service: gis" in (folder / name).read_text()
        assert "okonomi" not in (folder / name).read_text()
    centre = (folder / "operations-centre.yaml").read_text()
    assert "gis-01" in centre and "okonomi-01" not in centre


@pytest.fixture(scope="module")
def checkouts(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[Checkout, Checkout]]:
    assert not labeled("container") and not pg_routes(), "a lab of env pg exists already"
    made: list[Checkout] = []
    for name in ("a", "b"):
        root = tmp_path_factory.mktemp(f"pg-checkout-{name}") / "fellesdrift"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(root), "HEAD"],
                       check=True, capture_output=True)
        (root / ".venv").symlink_to(ROOT / ".venv")
        inventories = root.parent / "inventories"
        inventories.mkdir()
        small_inventory(inventories, root)
        env = {**os.environ, "FELLESDRIFT_ROOT": str(root), "PYTHONPATH": str(root)}
        for variable in ("FELLESDRIFT_BACKEND_FILE", "PULUMI_BACKEND_URL", "PGPASSWORD"):
            env.pop(variable, None)
        if name == "a":
            env["FELLESDRIFT_BACKEND"] = postgres.url
        else:  # the environment names its backend; the password is in a file of B's own
            env.pop("FELLESDRIFT_BACKEND", None)
            with (root / "environments.yaml").open("a") as f:
                f.write(f"\npg:\n  driver: lab\n  backend: {postgres.url_without_password}\n")
            pgpass = root.parent / "pgpass"
            pgpass.write_text(f"127.0.0.1:{postgres.psql_env['PGPORT']}:state:fellesdrift:"
                              f"{PASSWORD}\n")
            pgpass.chmod(0o600)
            env["PGPASSFILE"] = str(pgpass)
        made.append(Checkout(root, inventories, env))
    try:
        yield made[0], made[1]
    finally:
        for c in made:  # both: each removes the routes and keys it recorded
            c.fellesdrift("down", "--env", ENV)
        left = (labeled("container"), labeled("network"), pg_routes())
        for c in made:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(c.root)], check=False, capture_output=True)
        assert left == ([], [], []), f"env pg left behind: {left}"
        # Each checkout's `down` that removed something is in the log, after every apply,
        # with the stacks it destroyed.
        log = [json.loads(line) for line in postgres.sql(
            f"SELECT record::text FROM {AUDIT} ORDER BY id").splitlines()]
        commands = [r["command"] for r in log]
        assert "down" in commands and set(commands[commands.index("down"):]) == {"down"}, \
            commands
        assert sorted(s for r in log if r["command"] == "down" for s in r["destroyed"]) == \
            [f"{ENV}.core", f"{ENV}.tokke", f"{ENV}.vinje"], log[-2:]


def state_rows(postgres: Postgres, like: str) -> dict[str, bytes]:
    """{key: the object as the engine wrote it} for the table's keys matching ``like``."""
    rows = postgres.sql(f"SELECT key, data->>'data' FROM pulumi_state WHERE key LIKE '{like}'")
    return {key: base64.b64decode(data)
            for key, _, data in (line.partition("|") for line in rows.splitlines())}


def test_two_checkouts_share_one_postgres_state(postgres: Postgres,
                                                checkouts: tuple[Checkout, Checkout],
                                                tmp_path: Path) -> None:
    a, b = checkouts
    doctor = a.fellesdrift("doctor", "--env", ENV, "--json")
    check = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "backend")
    assert check["ok"], check
    assert check["version"].startswith("postgres://fellesdrift:****@127.0.0.1:")
    assert PASSWORD not in doctor.stdout + doctor.stderr

    core = results(a.provision("core", audit=CORE_REASON))
    assert [r["error"] for r in core] == [""], core
    for name in ("id_ed25519", "id_ed25519.pub"):  # the team's lab key, shared like the backend
        (b.root / ".lab" / ENV).mkdir(parents=True, exist_ok=True)
        shutil.copy2(a.root / ".lab" / ENV / name, b.root / ".lab" / ENV / name)

    # What A wrote, B reads: its plan of the core changes nothing. B has no Pulumi.pg.core.yaml
    # of its own: the stack comes from the backend (and B has no host yet: nothing to check).
    assert not (b.root / "Pulumi.pg.core.yaml").exists()
    plan = b.fellesdrift("plan", str(b.inventories), "--env", ENV, "-m", "core", "--json")
    assert plan.returncode == 0, plan.stderr[-3000:]
    planned = json.loads(plan.stdout)["stacks"]
    assert [s["stack"] for s in planned] == ["pg.core"]
    assert planned[0]["changed"] == 0 and planned[0]["changes"].get("same", 0) > 0, planned

    # Two checkouts, two municipalities, at the same time: both subscribe to GIS hosting, so
    # each applies the core's stack first (for sizing). B starts while A holds the core's lock:
    # B waits for it, saying who holds it, then applies the core and vinje; both succeed.
    go = tmp_path / "go"
    vinje = b.provision("vinje", go=go, audit=B_REASON)
    ready(go, vinje)
    tokke = a.provision("tokke", audit=A_REASON)
    who = holder_of(postgres, "pg.core", tokke)
    go.touch()
    said: list[str] = []
    applied = results(tokke) + results(vinje, said)
    assert [(r["stack"], r["error"]) for r in applied] == [
        ("pg.core", ""), ("pg.tokke", ""), ("pg.core", ""), ("pg.vinje", "")], applied
    assert all(r["changes"].get("create", 0) > 0 for r in applied[1::2]), applied
    # Both core applies change nothing: each read the core A applied (same files, same sizes).
    assert all(set(r["changes"]) == {"same"} for r in applied[0::2]), applied
    assert any(line.startswith(f"waiting for pg.core, held by {who} since ") for line in said), \
        said
    stacks = state_rows(postgres, "state/.pulumi/stacks/%.json")
    assert sorted(stacks) == [f"state/.pulumi/stacks/fellesdrift/pg.{t}.json"
                              for t in ("core", "tokke", "vinje")]

    # B's doctor sees the three stacks A and B wrote (docs/scaling.md quotes these sizes) and
    # the three applies' audit records, through the backend B's environments.yaml names.
    seen = b.fellesdrift("doctor", "--env", ENV, "--json")
    check = next(c for c in json.loads(seen.stdout)["checks"] if c["name"] == "backend")
    assert check["ok"], check
    assert re.fullmatch(rf"{re.escape(postgres.url_without_password)} \(environments\.yaml:"
                        rf"\d+:12: pg\.backend\): reachable, 3 stack\(s\), \d+ KiB in table "
                        rf"pulumi_state; 3 audit record\(s\) in table {AUDIT}",
                        check["version"]), check
    assert PASSWORD not in seen.stdout + seen.stderr
    print("\n" + postgres.sql("SELECT key, length(data::text) FROM pulumi_state ORDER BY key"))

    # The stacks' secrets (the lab driver's serialized providers) are ciphertext in the table.
    stored = json.loads(a.pulumi("stack", "export", "--stack", "pg.tokke").stdout)
    ciphertexts = [v["ciphertext"] for r in stored["deployment"]["resources"]
                   for v in (r.get("inputs") or {}).values()
                   if isinstance(v, dict) and "ciphertext" in v]
    assert ciphertexts, "the stack holds no secret to look for"
    shown = json.loads(a.pulumi("stack", "export", "--show-secrets", "--stack", "pg.tokke").stdout)
    plaintexts = [json.loads(v["plaintext"]) for r in shown["deployment"]["resources"]
                  for k, v in (r.get("inputs") or {}).items() if k == "__provider"]
    assert len(plaintexts) == len(ciphertexts) and all(len(p) > 40 for p in plaintexts)
    table = postgres.sql("SELECT key || ' ' || data::text FROM pulumi_state")
    decoded = b"".join(state_rows(postgres, "%").values())
    for secret in plaintexts:
        assert secret not in table and secret.encode() not in decoded
    assert all(c.encode() in decoded for c in ciphertexts)


READ_LOG = """
import json
from fellesdrift.change import audit
print(json.dumps({"entries": list(audit.entries("pg")),
                  "tokke": [c.as_dict() for c in audit.last_changes("pg", "tokke")]}))
"""


def test_the_audit_log_is_kept_with_the_state(postgres: Postgres,
                                              checkouts: tuple[Checkout, Checkout]) -> None:
    a, b = checkouts
    # One row per apply in the state's own database, in the order they were appended.
    rows = [line.split("|", 2) for line in postgres.sql(
        f"SELECT id, env, record::text FROM {AUDIT} ORDER BY id").splitlines()]
    records = [json.loads(text) for _, _, text in rows]
    assert [env for _, env, _ in rows] == [ENV] * 3
    assert records[0]["emergency"] == CORE_REASON  # the core first, then the two at once
    assert sorted(r["emergency"] for r in records[1:]) == sorted([A_REASON, B_REASON])
    applied = {r["emergency"]: r for r in records}
    assert applied[CORE_REASON]["core"] and applied[CORE_REASON]["municipalities"] == {}
    assert list(applied[A_REASON]["municipalities"]) == ["tokke"]
    assert list(applied[B_REASON]["municipalities"]) == ["vinje"]
    for r in records:  # each says what its provision changed, in its own stack
        assert r["command"] == "up" and r["env"] == ENV
        assert r["outcome"] == "failed in converge"  # these runs stop after provision
    assert applied[A_REASON]["changed"]["provision"]["pg.tokke"]["create"] > 0
    assert applied[B_REASON]["changed"]["provision"]["pg.vinje"]["create"] > 0

    # Both checkouts read the same log through the audit module; neither has a log file.
    for c in (a, b):
        proc = c.run("-c", READ_LOG)
        assert proc.returncode == 0, proc.stderr[-3000:]
        read = json.loads(proc.stdout)
        assert read["entries"] == records
        # What the report shows for tokke (A's apply), read from B as from A.
        moved = sum(applied[A_REASON]["changed"]["provision"]["pg.tokke"].values())
        assert [(x["emergency"], x["changes"]) for x in read["tokke"]] == [(A_REASON, moved)]
        assert not (c.root / ".state" / "audit").exists()

    # Append-only for every client, the table's owner included.
    for statement in (f"UPDATE {AUDIT} SET env = 'other'", f"DELETE FROM {AUDIT}",
                      f"TRUNCATE {AUDIT}"):
        error = postgres.refused(statement)
        assert f"{AUDIT} is append-only: {statement.split()[0]} refused" in error, error
    assert postgres.sql(f"SELECT count(*) FROM {AUDIT}").strip() == "3"


def test_a_second_provision_of_a_held_stack_fails_naming_the_holder(
        postgres: Postgres, checkouts: tuple[Checkout, Checkout], tmp_path: Path) -> None:
    a, b = checkouts
    go = tmp_path / "go"
    second = b.provision("core", go=go)  # loads and prepares, then waits for go
    first = a.provision("core")
    who = holder_of(postgres, "pg.core", first)
    go.touch()
    refused = results(second)  # the core named: no wait
    assert [r["stack"] for r in refused] == ["pg.core"]
    assert refused[0]["error"].startswith(f"pg.core is locked by {who}"), refused
    assert "fellesdrift recover --stack pg.core" in refused[0]["error"]
    assert [r["error"] for r in results(first)] == [""]  # the holder itself was not disturbed
    assert not state_rows(postgres, "state/.pulumi/locks/%/pg.core/%.json")


def test_recover_refuses_a_live_holder_and_clears_a_stale_lock_in_the_table(
        postgres: Postgres, checkouts: tuple[Checkout, Checkout]) -> None:
    _, b = checkouts
    # A lock row the way the engine writes one, held by a live process of this machine.
    holder = subprocess.Popen(["sleep", "300"])
    content = json.dumps({"pid": holder.pid, "username": "ops", "hostname": socket.gethostname(),
                          "timestamp": "2026-12-01T12:00:00Z"}).encode()
    key = "state/.pulumi/locks/organization/fellesdrift/pg.vinje/held-e2e.json"
    data = json.dumps({"data": base64.b64encode(content).decode()})
    postgres.sql(f"INSERT INTO pulumi_state (key, data) VALUES ('{key}', '{data}')")
    who = f"ops@{socket.gethostname()} (pid {holder.pid})"
    try:
        provisioned = {r["stack"]: r["error"] for r in results(b.provision("vinje"))}
        refused = provisioned["pg.vinje"]  # (after the core's, for sizing: not locked)
        assert provisioned["pg.core"] == "" and refused.startswith(
            f"pg.vinje is locked by {who}"), refused
        busy = b.fellesdrift("recover", "--env", ENV, "--stack", "pg.vinje")
        assert busy.returncode != 0, busy.stdout
        assert f"pg.vinje is locked by {who}, which is still running (backend " \
               f"{postgres.url_without_password})" in busy.stderr, busy.stderr
        assert PASSWORD not in busy.stdout + busy.stderr and state_rows(postgres, key)
    finally:
        holder.kill()
        holder.wait()
    # Its holder is gone: the lock is stale, and recover clears it from the table.
    cleared = b.fellesdrift("recover", "--env", ENV, "--stack", "pg.vinje")
    assert cleared.returncode == 0 and "cleared 1 stale lock" in cleared.stdout, cleared.stderr
    assert not state_rows(postgres, key)
    assert [r["error"] for r in results(b.provision("vinje"))] == ["", ""]
