"""The audit log: one JSON record per apply, appended, kept with the state.

Where the environment's state backend is (:func:`fellesdrift.provision.backend.for_environment`):

- the file backend: ``.state/audit/<env>.jsonl`` beside it, one line per record (git-ignored;
  `down` keeps it: it records the lab's removal as one more line);
- PostgreSQL: table :data:`TABLE` in the state's own database, one row per record (``id``
  in the order appended, ``env``, ``at`` the server's time, ``record`` the JSON as written), so
  every checkout sharing the state shares one log. The table is made on first use, with
  triggers that refuse UPDATE, DELETE and TRUNCATE: append-only for every client.

Each record of an apply says who (``SUDO_USER``, else the login name), when (UTC), the digest of
the plan it applied (`up --plan`) or of its inputs, which stacks and municipalities it worked on
with the digest of each municipality's inputs (:func:`fellesdrift.change.gate.inputs`) and its
monthly invoice, what changed per phase as the pipeline's outcome knows it, the outcome, and an
emergency's reason. Nothing rewrites a record.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fellesdrift import paths
from fellesdrift.errors import FellesdriftError
from fellesdrift.provision import backend
from fellesdrift.report.status import now

if TYPE_CHECKING:
    from fellesdrift.pipeline.job import Outcome

FILE_VERSION = 1
#: The audit log's table in a PostgreSQL backend's database (beside Pulumi's ``pulumi_state``).
TABLE = backend.AUDIT_TABLE

#: Made once, under a transaction-scoped advisory lock so two first appends do not race; the
#: triggers make the table append-only (psql does not expand variables inside $$ … $$).
_CREATE = """
CREATE TABLE :"audit" (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    env text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    record json NOT NULL
);
CREATE INDEX ON :"audit" (env, id);
CREATE OR REPLACE FUNCTION fellesdrift_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END $$;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON :"audit"
    FOR EACH ROW EXECUTE FUNCTION fellesdrift_audit_refuse();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON :"audit"
    FOR EACH STATEMENT EXECUTE FUNCTION fellesdrift_audit_refuse();
"""
_APPEND = """
BEGIN;
SELECT pg_advisory_xact_lock(hashtext(:'audit'));
SELECT to_regclass(:'audit') IS NULL AS missing \\gset
\\if :missing
""" + _CREATE + """
\\endif
INSERT INTO :"audit" (env, record) VALUES (:'env', :'record') RETURNING id;
COMMIT;"""


class AuditError(FellesdriftError, ValueError):
    """A record of the audit log that is not one, or a log that cannot be written."""


def path(env: str) -> Path:
    """The file backend's log of ``env``."""
    return paths.STATE_DIR / "audit" / f"{env}.jsonl"


def _shared(env: str) -> backend.Backend | None:
    """The environment's PostgreSQL backend, or None for the file backend."""
    store = backend.for_environment(env)
    return store if store.shared else None


def who() -> str:
    """The person behind the run: the user sudo ran it for, else the login name."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def changes(outcome: Outcome) -> dict[str, Any]:
    """What changed, per phase, as the pipeline's outcome knows it."""
    conv, idem = outcome.converge, outcome.idempotence
    return {
        "provision": {s.stack: {op: n for op, n in s.changes.items() if op != "same"}
                      for s in outcome.stacks},
        "converge": {"changed": conv.changed, "hosts": len(conv.recap)} if conv else None,
        "network": dict(Counter(r.status for r in outcome.network)),
        "idempotence": {"changed": len(idem.changed), "waived": len(idem.waived)}
        if idem else None,
        "verify": {"hosts": len(outcome.verdicts),
                   "failed": sum(not v.ok for v in outcome.verdicts.values())},
    }


def entry(env: str, command: str, *, digest: str | None, core: bool,
          municipalities: dict[str, str], destroyed: list[str], outcome: Outcome | None,
          error: str | None, emergency: str | None, planned: bool) -> dict[str, Any]:
    """One record. ``municipalities``: slug → the digest of its inputs as applied."""
    failed = outcome.failed if outcome is not None else "error"
    return {
        "version": FILE_VERSION, "at": now(), "who": who(), "env": env, "command": command,
        "digest": digest, "planned": planned, "core": core, "municipalities": municipalities,
        "destroyed": destroyed,
        "outcome": "ok" if outcome is not None and error is None and failed is None
        else f"failed in {failed}",
        "error": error, "changed": changes(outcome) if outcome is not None else None,
        "seconds": round(outcome.seconds, 1) if outcome is not None else None,
        "emergency": emergency,
    }


def append(env: str, record: dict[str, Any]) -> str:
    """Append one record: one row of :data:`TABLE` in a PostgreSQL backend (committed when
    this returns), else one line of :func:`path` (flushed to disk, under a lock). Returns
    where it went."""
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    store = _shared(env)
    if store is not None:
        try:
            rows = store.query(_APPEND, audit=TABLE, env=env, record=line)
        except backend.BackendError as e:
            raise AuditError(f"the audit record of this {record.get('command', 'apply')} was "
                             f"not written: {e}") from None
        return f"{store.display} table {TABLE} id {rows[-1][0]}"
    target = path(env)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return str(target)


def _record(text: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except ValueError as e:
        raise AuditError(f"{where}: not an audit record ({e})") from None
    return record


def entries(env: str) -> Iterator[dict[str, Any]]:
    """Every record of ``env``, oldest first."""
    store = _shared(env)
    if store is not None:
        rows = store.query("SELECT id, record FROM :\"audit\" WHERE env = :'env' ORDER BY id;",
                           unless_missing=TABLE, audit=TABLE, env=env)
        for row_id, *text in rows:
            yield _record("\t".join(text), f"{store.display} table {TABLE} id {row_id}")
        return
    with contextlib.suppress(FileNotFoundError), path(env).open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            yield _record(line, f"{path(env)}:{number}")


def _last(env: str, key: str) -> dict[str, Any]:
    """``key`` of each municipality's last successful apply; a municipality destroyed since
    (or the whole lab, by `down`) has none."""
    last: dict[str, Any] = {}
    for record in entries(env):
        if record.get("command") == "down":
            last.clear()
            continue
        for slug in record.get("destroyed") or []:
            last.pop(slug, None)
        if record.get("outcome") == "ok":
            last.update(record.get(key) or {})
    return last


def applied(env: str) -> dict[str, str]:
    """Each municipality's inputs as of its last successful apply (slug → digest)."""
    return {slug: str(digest) for slug, digest in _last(env, "municipalities").items()}


def invoices(env: str) -> dict[str, dict[str, Any]]:
    """Each municipality's monthly invoice as of its last successful apply (as
    :meth:`fellesdrift.invoice.Invoice.as_dict` gives it)."""
    return _last(env, "invoices")


@dataclass(frozen=True)
class Change:
    """One apply as the report shows it for a municipality."""

    at: str
    who: str
    outcome: str
    digest: str | None
    emergency: str | None
    changes: int  # Pulumi resources changed in the municipality's stack

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "who": self.who, "outcome": self.outcome, "digest": self.digest,
                "emergency": self.emergency, "changes": self.changes}


def last_changes(env: str, slug: str, count: int = 5) -> list[Change]:
    """The municipality's last ``count`` applies, newest first (for the report)."""
    found = []
    for record in entries(env):
        if slug not in (record.get("municipalities") or {}) and slug not in (
                record.get("destroyed") or []):
            continue
        stacks = (record.get("changed") or {}).get("provision") or {}
        moved = sum(n for stack, ops in stacks.items() if stack.endswith(f".{slug}")
                    for n in ops.values())
        found.append(Change(str(record.get("at")), str(record.get("who")),
                            str(record.get("outcome")), record.get("digest"),
                            record.get("emergency"), moved))
    return found[::-1][:count]


def last_changes_by_municipality(env: str, slugs: list[str], count: int = 5
                                 ) -> dict[str, list[Change]]:
    """:func:`last_changes` of each municipality: what the report shows per municipality."""
    return {slug: last_changes(env, slug, count) for slug in slugs}
