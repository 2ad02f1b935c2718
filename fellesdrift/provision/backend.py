"""Where Pulumi keeps the stacks' state: the file backend under `.state/` (the default) or a
PostgreSQL database a team shares (Pulumi's DIY `postgres://` backend, `pkg/backend/diy/postgres`).

The one entry point is :func:`for_environment`; the engine's environment (`engine.env`), the
locks `recover` reads and clears, and `doctor` all go through the :class:`Backend` it returns.

Which URL, first found wins:

1. ``FELLESDRIFT_BACKEND`` in the process environment (credentials may be in it: the
   environment is not git);
2. ``FELLESDRIFT_BACKEND_FILE``: a file readable by its owner only (0600 or 0400) whose first
   line is the URL; a file others may read is refused;
3. ``setting``: the environment's own ``backend:`` value (from a file in git, so it must not
   hold a password: libpq's ``PGPASSWORD``/``PGPASSFILE`` or 1./2. give it);
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

from fellesdrift.paths import STATE_DIR

ENV_URL = "FELLESDRIFT_BACKEND"
ENV_FILE = "FELLESDRIFT_BACKEND_FILE"
SCHEMES = ("file", "postgres")
DEFAULT_TABLE = "pulumi_state"
#: The table name Pulumi's postgres backend puts in SQL as it is (so we accept only plain ones).
_TABLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class BackendError(RuntimeError):
    """A backend that cannot be used as configured: one line saying what and what to do."""


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
        rows = self._psql("SELECT key, data->>'data' FROM :\"table\" WHERE key LIKE "
                          ":'prefix' || '.pulumi/locks/%.json' ORDER BY key",
                          tolerate_missing_table=True)
        return [Lock(key, _holder(data)) for key, data in rows
                if key.split("/")[-2:-1] == [stack]]

    def unlock(self, lock: Lock) -> None:
        """Remove one lock object (recover does so only for a holder that is gone)."""
        if self.scheme == "file":
            Path(lock.key).unlink(missing_ok=True)
        else:
            self._psql("DELETE FROM :\"table\" WHERE key = :'key'", key=lock.key)

    def reachable(self) -> tuple[bool, str]:
        """Whether the backend answers, and a line saying what it holds (or what is wrong)."""
        if self.scheme == "file":
            root = Path(urlsplit(self.url).path)
            stacks = list((root / ".pulumi" / "stacks").glob("*/*.json"))
            return True, f"{len(stacks)} stack(s)"
        try:
            rows = self._psql("SELECT count(*) FILTER (WHERE key LIKE :'prefix' || "
                              "'.pulumi/stacks/%.json'), "
                              "coalesce(sum(length(data::text)), 0) FROM :\"table\"",
                              tolerate_missing_table=True)
        except BackendError as e:
            return False, str(e)
        if not rows:
            return True, f"no table {self.table} yet (the engine makes it on first use)"
        count, size = rows[0]
        return True, f"{count} stack(s), {int(size) // 1024} KiB in table {self.table}"

    def _psql(self, sql: str, tolerate_missing_table: bool = False,
              **variables: str) -> list[list[str]]:
        """Run one statement with psql (values bound as psql variables, quoted by psql), the
        password in the environment rather than on the command line."""
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("table", "password")]
        host = parts.hostname or ""
        netloc = (unquote(parts.username or "") and f"{parts.username}@") + (
            f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
        dsn = f"postgresql://{netloc}{parts.path}" + (f"?{urlencode(query)}" if query else "")
        password = unquote(parts.password or "") or dict(parse_qsl(parts.query)).get(
            "password", "")
        env = {**os.environ, **({"PGPASSWORD": password} if password else {}),
               "PGCONNECT_TIMEOUT": os.environ.get("PGCONNECT_TIMEOUT", "5")}
        script = "".join(f"\\set {k} '{_psql_literal(v)}'\n"
                         for k, v in {"table": self.table, "prefix": self.prefix,
                                      **variables}.items())
        if tolerate_missing_table:
            script += "SELECT to_regclass(:'table') IS NOT NULL AS present \\gset\n\\if :present\n"
        script += sql + ";\n" + ("\\endif\n" if tolerate_missing_table else "")
        try:
            proc = subprocess.run(["psql", "-X", "-w", "-q", "-At", "-F", "\t", "-v",
                                   "ON_ERROR_STOP=1", "-d", dsn, "-f", "-"], input=script,
                                  capture_output=True, text=True, env=env, check=False,
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
            raise BackendError(
                f"{path}: {ENV_FILE} holds the backend's credentials but its mode is "
                f"{stat.S_IMODE(mode):04o}, so others may read them; run `chmod 600 {path}` "
                f"[backend-file-mode]")
        lines = path.read_text().split("\n")
    except OSError as e:
        raise BackendError(f"{path}: {ENV_FILE} cannot be read ({e.strerror}) "
                           f"[backend-file]") from None
    url = lines[0].strip() if lines else ""
    if not url:
        raise BackendError(f"{path}:1:1: {ENV_FILE}'s first line is empty; write the backend "
                           f"URL there, e.g. postgres://user:password@host:5432/db "
                           f"[backend-file]")
    return url


def _checked(url: str, source: str) -> Backend:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise BackendError(f"{source}: backend {redact(url)!r} is not supported; use a "
                           f"postgres://user@host:port/database URL (or file:///path) "
                           f"[backend-scheme]")
    backend = Backend(url, source)
    if parts.scheme == "postgres" and not _TABLE.fullmatch(backend.table):
        raise BackendError(f"{source}: table={backend.table!r}: a table name is lower-case "
                           f"letters, digits and _ (default {DEFAULT_TABLE}) [backend-table]")
    if parts.scheme == "file" and not parts.path.startswith("/"):
        raise BackendError(f"{source}: {url!r}: a file backend is file:///absolute/path "
                           f"[backend-scheme]")
    return backend


def for_environment(env_name: str = "", setting: str | None = None) -> Backend:
    """The backend of environment ``env_name``; ``setting`` is that environment's own
    ``backend:`` value (from git: a URL without a password). See the module's docstring for
    the order; raises :class:`BackendError` with one line for a URL or file that cannot be
    used."""
    where = f"environment {env_name}" if env_name else "fellesdrift"
    if os.environ.get(ENV_URL):
        return _checked(os.environ[ENV_URL].strip(), ENV_URL)
    if os.environ.get(ENV_FILE):
        path = Path(os.environ[ENV_FILE]).expanduser()
        return _checked(_from_file(path), str(path))
    if setting:
        if redact(setting) != setting:
            raise BackendError(f"{where}: backend: holds a password, and this setting lives in "
                               f"git; remove it and give it in {ENV_FILE} (a 0600 file) or "
                               f"PGPASSWORD [backend-credentials]")
        return _checked(setting, f"{where}: backend")
    if os.environ.get("PULUMI_BACKEND_URL"):
        return _checked(os.environ["PULUMI_BACKEND_URL"], "PULUMI_BACKEND_URL")
    return Backend(f"file://{STATE_DIR}", "default")
