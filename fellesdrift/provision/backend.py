"""Where Pulumi keeps the stacks' state: the file backend under `.state/` (the default) or a
PostgreSQL database a team shares (Pulumi's DIY `postgres://` backend, `pkg/backend/diy/postgres`).

The one entry point is :func:`for_environment`; the engine's environment (`engine.env`), the
locks `recover` reads and clears, `doctor`, and the audit log kept with the state
(`change/audit.py`, through :meth:`Backend.query`) all go through the :class:`Backend` it
returns.

Which URL, first found wins:

1. ``FELLESDRIFT_BACKEND`` in the process environment (credentials may be in it: the
   environment is not git);
2. ``FELLESDRIFT_BACKEND_FILE``: a file readable by its owner only (0600 or 0400) whose first
   line is the URL; a file others may read is refused;
3. the environment's own ``backend:`` key in environments.yaml (:mod:`fellesdrift.environment`;
   git, so it must not hold a password: libpq's ``PGPASSWORD`` or a 0600 ``PGPASSFILE`` /
   ``~/.pgpass``, which both the engine's lib/pq and psql read, or 1./2. give it);
4. ``PULUMI_BACKEND_URL`` in the process environment (Pulumi's own variable);
5. ``file://<checkout>/.state``.

State layout, the same for every DIY backend: objects keyed by path (``.pulumi/stacks/<project>/
<stack>.json``, ``.pulumi/locks/<org>/<project>/<stack>/<id>.json`` …); PostgreSQL keeps them in
one table (``pulumi_state`` unless the URL's ``?table=`` names another) with the object base64
in ``data->>'data'``, its key prefixed with the URL's path, which is also the database
(``postgres://…/state`` keys ``state/.pulumi/…``: pkg/backend/diy/backend.go, PrefixedBucket).
A lock object holds its holder: ``{"pid", "username", "hostname", "timestamp"}``; the engine
refuses a stack while another holder's lock exists (pkg/backend/diy/lock.go).
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from fellesdrift import environment
from fellesdrift.errors import FellesdriftError, RefusedError
from fellesdrift.paths import STATE_DIR

ENV_URL = "FELLESDRIFT_BACKEND"
ENV_FILE = "FELLESDRIFT_BACKEND_FILE"
SCHEMES = ("file", "postgres")
DEFAULT_TABLE = "pulumi_state"
#: The audit log's table beside the state's in a PostgreSQL backend (fellesdrift.change.audit).
AUDIT_TABLE = "fellesdrift_audit"
#: The table name Pulumi's postgres backend puts in SQL as it is (so we accept only plain ones).
_TABLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class BackendError(FellesdriftError, RuntimeError):
    """A backend that cannot be used: one line saying what and what to do."""


class BackendSettingError(RefusedError, BackendError):
    """A backend URL (or the file that holds it) that is not one: input refused."""


@dataclass(frozen=True)
class Lock:
    """One lock object of a stack and who holds it (empty when unreadable)."""

    key: str
    holder: dict[str, Any]

    @property
    def who(self) -> str:
        h = self.holder
        return f"{h.get('username')}@{h.get('hostname')} (pid {h.get('pid')})"


@dataclass(frozen=True)
class Backend:
    """A Pulumi DIY backend: its URL (which may hold a password: never print it, print
    ``display``) and what the engine needs to use it."""

    url: str
    source: str  # where the URL came from, for doctor and error messages

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def shared(self) -> bool:
        return self.scheme != "file"

    @property
    def display(self) -> str:
        """The URL with its password (in the userinfo or a ``password=`` parameter) as ****."""
        return redact(self.url)

    @property
    def engine_env(self) -> dict[str, str]:
        """The variables the Pulumi engine gets for this backend."""
        if self.scheme == "file":
            Path(urlsplit(self.url).path).mkdir(parents=True, exist_ok=True)
        return {"PULUMI_BACKEND_URL": self.url}

    @property
    def table(self) -> str:
        return dict(parse_qsl(urlsplit(self.url).query)).get("table", DEFAULT_TABLE)

    @property
    def prefix(self) -> str:
        """What the engine puts before every key in the table (see the module's docstring)."""
        path = urlsplit(self.url).path.strip("/")
        return f"{path}/" if path and self.scheme != "file" else ""

    def locks(self, stack: str) -> list[Lock]:
        """The lock objects of one stack (``env.target``), with their holders."""
        if self.scheme == "file":
            root = Path(urlsplit(self.url).path) / ".pulumi" / "locks"
            found = []
            for path in sorted(root.glob(f"**/{stack}/*.json")):
                try:
                    found.append(Lock(str(path), json.loads(path.read_text())))
                except (OSError, ValueError):
                    found.append(Lock(str(path), {}))
            return found
        rows = self.query("SELECT key, data->>'data' FROM :\"table\" WHERE key LIKE "
                          ":'prefix' || '.pulumi/locks/%.json' ORDER BY key;",
                          unless_missing=self.table)
        return [Lock(key, _holder(data)) for key, data in rows
                if key.split("/")[-2:-1] == [stack]]

    def unlock(self, lock: Lock) -> None:
        """Remove one lock object (recover does so only for a holder that is gone)."""
        if self.scheme == "file":
            Path(lock.key).unlink(missing_ok=True)
        else:
            self.query("DELETE FROM :\"table\" WHERE key = :'key';", key=lock.key)

    def reachable(self) -> tuple[bool, str]:
        """Whether the backend answers, and a line saying what it holds (or what is wrong)."""
        if self.scheme == "file":
            root = Path(urlsplit(self.url).path)
            stacks = list((root / ".pulumi" / "stacks").glob("*/*.json"))
            return True, f"{len(stacks)} stack(s)"
        try:
            rows = self.query(_REACHABLE, audit=AUDIT_TABLE)
        except BackendError as e:
            return False, str(e)
        found = {row[0]: row[1:] for row in rows}
        if "state" not in found:
            return True, f"no table {self.table} yet (the engine makes it on first use)"
        count, size = found["state"]
        audit = found.get("audit", ["0"])[0]
        return True, (f"{count} stack(s), {int(size) // 1024} KiB in table {self.table}; "
                      f"{audit} audit record(s) in table {AUDIT_TABLE}")

    def query(self, sql: str, unless_missing: str | None = None,
              **variables: str) -> list[list[str]]:
        """Run ``sql`` (statements, or a psql script) in the backend's database with psql and
        return its rows (fields split at tabs). Values are bound as psql variables (``:'name'``
        a literal, ``:"name"`` an identifier; ``table`` and ``prefix`` are always set), quoted
        by psql; the password goes in the environment, not on the command line. With
        ``unless_missing`` (a table), nothing runs and no rows come back while that table does
        not exist. Each statement ends with its own ``;``."""
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("table", "password")]
        host = parts.hostname or ""
        netloc = (unquote(parts.username or "") and f"{parts.username}@") + (
            f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
        dsn = f"postgresql://{netloc}{parts.path}" + (f"?{urlencode(query)}" if query else "")
        password = unquote(parts.password or "") or dict(parse_qsl(parts.query)).get(
            "password", "")
        env = {**os.environ, **({"PGPASSWORD": password} if password else {}),
               "PGCONNECT_TIMEOUT": os.environ.get("PGCONNECT_TIMEOUT", "5"),
               "PGCLIENTENCODING": "UTF8"}
        if unless_missing is not None:
            variables = {**variables, "unless_missing": unless_missing}
        script = "".join(f"\\set {k} '{_psql_literal(v)}'\n"
                         for k, v in {"table": self.table, "prefix": self.prefix,
                                      **variables}.items())
        if unless_missing is not None:
            script += ("SELECT to_regclass(:'unless_missing') IS NOT NULL AS present \\gset\n"
                       "\\if :present\n")
        script += sql + "\n" + ("\\endif\n" if unless_missing is not None else "")
        try:
            proc = subprocess.run(["psql", "-X", "-w", "-q", "-At", "-F", "\t", "-v",
                                   "ON_ERROR_STOP=1", "-d", dsn, "-f", "-"], input=script,
                                  capture_output=True, encoding="utf-8", env=env, check=False,
                                  timeout=30)
        except FileNotFoundError:
            raise BackendError(f"backend {self.display}: psql is missing (apt-get install "
                               "postgresql-client)") from None
        except subprocess.TimeoutExpired:
            raise BackendError(f"backend {self.display}: no answer within 30 s") from None
        if proc.returncode != 0:
            detail = redact(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else
                            f"psql exited {proc.returncode}")
            if password:
                detail = detail.replace(password, "****")
            raise BackendError(f"backend {self.display} is not reachable: {detail}")
        return [line.split("\t") for line in proc.stdout.splitlines() if line]


#: What :meth:`Backend.reachable` reads: the state's stacks and size, the audit log's records.
_REACHABLE = """SELECT to_regclass(:'table') IS NOT NULL AS has_state,
       to_regclass(:'audit') IS NOT NULL AS has_audit \\gset
\\if :has_state
SELECT 'state', count(*) FILTER (WHERE key LIKE :'prefix' || '.pulumi/stacks/%.json'),
       coalesce(sum(length(data::text)), 0) FROM :"table";
\\endif
\\if :has_audit
SELECT 'audit', count(*) FROM :"audit";
\\endif"""


def _psql_literal(value: str) -> str:
    """A value inside psql's single-quoted \\set argument."""
    return value.replace("\\", "\\\\").replace("'", "''")


def _holder(data: str) -> dict[str, Any]:
    try:
        holder = json.loads(base64.b64decode(data))
    except (ValueError, TypeError):
        return {}
    return holder if isinstance(holder, dict) else {}


def redact(text: str) -> str:
    """``text`` with every URL password (userinfo or ``password=`` parameter) as ****."""
    text = re.sub(r"(\w+://[^/\s:@]*:)[^@/\s]*@", r"\1****@", text)
    return re.sub(r"([?&]password=)[^&\s]*", r"\1****", text)


def _from_file(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise BackendSettingError(
                f"{path}: {ENV_FILE} holds the backend's credentials but its mode is "
                f"{stat.S_IMODE(mode):04o}, so others may read them; run `chmod 600 {path}` "
                f"[backend-file-mode]")
        lines = path.read_text().split("\n")
    except OSError as e:
        raise BackendSettingError(f"{path}: {ENV_FILE} cannot be read ({e.strerror}) "
                                  f"[backend-file]") from None
    url = lines[0].strip() if lines else ""
    if not url:
        raise BackendSettingError(f"{path}:1:1: {ENV_FILE}'s first line is empty; write the "
                                  f"backend URL there, e.g. postgres://user:password@host:5432/"
                                  f"db [backend-file]")
    return url


def _checked(url: str, source: str) -> Backend:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise BackendSettingError(f"{source}: backend {redact(url)!r} is not supported; use a "
                                  f"postgres://user@host:port/database URL (or "
                                  f"file:///absolute/path) [backend-scheme]")
    backend = Backend(url, source)
    if parts.scheme == "postgres" and not _TABLE.fullmatch(backend.table):
        raise BackendSettingError(f"{source}: table={backend.table!r}: a table name is "
                                  f"lower-case letters, digits and _ (default {DEFAULT_TABLE}) "
                                  f"[backend-table]")
    if parts.scheme == "file" and not parts.path.startswith("/"):
        raise BackendSettingError(f"{source}: {url!r}: a file backend is file:///absolute/path "
                                  f"[backend-scheme]")
    return backend


def for_environment(env: environment.Environment | str = "") -> Backend:
    """The backend of environment ``env`` (or of its name; none: the process environment's or
    the file backend). See the module's docstring for the order; raises
    :class:`BackendSettingError` with one line for a URL or file that cannot be used."""
    if os.environ.get(ENV_URL):
        return _checked(os.environ[ENV_URL].strip(), ENV_URL)
    if os.environ.get(ENV_FILE):
        path = Path(os.environ[ENV_FILE]).expanduser()
        return _checked(_from_file(path), str(path))
    env = environment.get(env) if isinstance(env, str) and env else env
    if isinstance(env, environment.Environment) and env.backend:
        if redact(env.backend) != env.backend:
            raise BackendSettingError(
                f"{env.backend_at}: holds a password, and environments.yaml is in git; remove "
                f"it and give it in PGPASSWORD or a 0600 PGPASSFILE (or the whole URL in "
                f"{ENV_URL} or a 0600 {ENV_FILE}) [backend-credentials]")
        return _checked(env.backend, env.backend_at)
    if os.environ.get("PULUMI_BACKEND_URL"):
        return _checked(os.environ["PULUMI_BACKEND_URL"], "PULUMI_BACKEND_URL")
    return Backend(f"file://{STATE_DIR}", "default")
