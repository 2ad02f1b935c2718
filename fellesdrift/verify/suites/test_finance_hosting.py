"""What the role ``finance_hosting`` promises, checked the way an operator would.

Run by the platform against every host; the tests skip on hosts that are not finance hosts
(the host's function comes from the Ansible inventory)::

    ANSIBLE_CONFIG=ansible.cfg pytest fellesdrift/verify/suites/test_finance_hosting.py \
        --ansible-inventory=.lab/<env>/inventory.yml --connection=ansible \
        --hosts=ansible://okonomi-01

Commands that need root run through sudo (the platform connects as ``ops``). Passwords go to
psql in its environment and are never part of an assertion message.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import (
    Job,
    Ran,
    as_login,
    inventory_vars,
    only_for,
    psql_attempts,
    role_vars_for,
    run_all,
)

#: The host functions this suite checks (conftest parametrizes it with those hosts only).
FUNCTIONS = ('finance_hosting',)

ROLE = "finance_hosting"
# The backup checks plant dumps and run the backup: they must not run on two workers at once.
# Verify runs the checks of one suite on one host on one xdist worker, one after the other
# (conftest.pytest_xdist_make_scheduler).
RESTORE = "/usr/local/sbin/finance-restore"


@dataclass(frozen=True)
class Outcome:
    """A command's result without its command line (which may hold a password)."""

    rc: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def fin(host: Any) -> dict[str, Any]:
    """The role's variables on a finance host; skips every other host."""
    only_for(host, ROLE)
    return role_vars_for(host, ROLE)


@pytest.fixture(scope="module")
def municipalities(fin: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(fin["finance_hosting__municipalities"])
    if not found:
        pytest.skip("no municipality subscribes to finance hosting")
    return found


@pytest.fixture(scope="module")
def address(host: Any, fin: dict[str, Any]) -> str:
    """The host address PostgreSQL listens on."""
    return str(fin["finance_hosting__listen_address"] or inventory_vars(host)["ansible_host"])


def root(host: Any, command: str, *args: str) -> Any:
    with host.sudo():
        return host.run(command, *args)


def root_output(host: Any, command: str, *args: str) -> str:
    result = root(host, command, *args)
    assert result.rc == 0, f"{result.command!r} exited {result.rc}: {result.stderr.strip()}"
    return str(result.stdout)


def _superuser_command(database: str, sql: str) -> tuple[str, str]:
    """psql as the OS user postgres (peer authentication), for :func:`run_all`."""
    return (f"psql -X -q -v ON_ERROR_STOP=1 -tA -d {shlex.quote(database)} "
            f"-c {shlex.quote(sql)}", "postgres")


def _rows(result: Ran, database: str, sql: str) -> str:
    assert result.rc == 0, f"{sql!r} on {database}: {result.stderr.strip()}"
    return result.stdout.strip()


def superuser_sql(host: Any, database: str, sql: str) -> str:
    """Run SQL as the OS user postgres (peer authentication); the rows, '|'-separated."""
    return superuser_sql_all(host, {"": (database, sql)})[""]


def superuser_sql_all(host: Any, queries: dict[Any, tuple[str, str]]) -> dict[Any, str]:
    """:func:`superuser_sql` of every (database, sql), in one round trip; the rows by key (the
    first that failed fails the check, in the order given)."""
    keys = list(queries)
    ran = run_all(host, {str(i): _superuser_command(*queries[k]) for i, k in enumerate(keys)})
    return {k: _rows(ran[str(i)], *queries[k]) for i, k in enumerate(keys)}


def _login_command(m: dict[str, Any], database: str, server: str, sql: str,
                   password: str | None = None) -> Job:
    conninfo = f"host={server} port=5432 dbname={database} user={m['login']} connect_timeout=5"
    return as_login(m["password"] if password is None else password,
                    f"psql -X -w -tA {shlex.quote(conninfo)} -c {shlex.quote(sql)}")


def login_sql(host: Any, m: dict[str, Any], database: str, server: str, sql: str,
              password: str | None = None) -> Outcome:
    """Run SQL as municipality ``m``'s login over TCP to ``server`` (no sudo)."""
    return login_sql_all(host, [(m, database, server, sql, password)])[0]


def login_sql_all(host: Any, logins: list[tuple[dict[str, Any], str, str, str]]
                  | list[tuple[dict[str, Any], str, str, str, str | None]]) -> list[Outcome]:
    """:func:`login_sql` of every (m, database, server, sql), in one round trip, in order."""
    ran = run_all(host, {str(i): _login_command(*login) for i, login in enumerate(logins)})
    return [Outcome(r.rc, r.stdout.strip(), r.stderr.strip())
            for r in (ran[str(i)] for i in range(len(logins)))]


# ------------------------------------------------------------------------ PostgreSQL


def test_postgresql_is_running(host: Any, fin: dict[str, Any]) -> None:
    version = fin["finance_hosting__postgresql_version"]
    assert host.service(f"postgresql@{version}-main").is_running
    assert host.service("postgresql").is_enabled
    assert host.run("pg_isready -q -h 127.0.0.1 -p 5432").rc == 0


def test_postgresql_listens_on_the_host_address(host: Any, address: str) -> None:
    assert host.socket(f"tcp://{address}:5432").is_listening
    assert host.socket("tcp://127.0.0.1:5432").is_listening


def test_each_login_reaches_its_own_database(
        host: Any, municipalities: list[dict[str, Any]]) -> None:
    answers = login_sql_all(host, [
        (m, m["database"], "127.0.0.1",
         "SELECT current_user, current_database(), count(*) FROM ledger")
        for m in municipalities])
    for m, out in zip(municipalities, answers, strict=True):
        assert out.rc == 0, f"{m['login']} on {m['database']}: {out.stderr}"
        user, database, rows = out.stdout.split("|")
        assert (user, database) == (m["login"], m["database"])
        assert int(rows) > 0, f"{m['database']}.ledger is empty"


def test_a_wrong_password_is_refused(host: Any, municipalities: list[dict[str, Any]]) -> None:
    m = municipalities[0]
    out = login_sql(host, m, m["database"], "127.0.0.1", "SELECT 1",
                    password="not-" + m["password"])
    assert out.rc != 0
    assert "password authentication failed" in out.stderr


def test_passwords_are_stored_as_scram(host: Any, municipalities: list[dict[str, Any]]) -> None:
    found = superuser_sql_all(host, {
        m["login"]: ("postgres", "SELECT left(rolpassword, 14) FROM pg_authid "
                                 f"WHERE rolname = '{m['login']}'") for m in municipalities})
    for m in municipalities:
        stored = found[m["login"]]
        assert stored == "SCRAM-SHA-256$", f"{m['login']}: password not stored as scram-sha-256"


def test_each_database_is_owned_by_its_login(
        host: Any, municipalities: list[dict[str, Any]]) -> None:
    owners = superuser_sql_all(host, {
        m["database"]: ("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database "
                                    f"WHERE datname = '{m['database']}'") for m in municipalities})
    for m in municipalities:
        assert owners[m["database"]] == m["login"]


def test_public_has_no_connect_privilege(host: Any, municipalities: list[dict[str, Any]]) -> None:
    names = ", ".join(f"'{m['database']}'" for m in municipalities)
    found = superuser_sql(host, "postgres",
                          f"SELECT count(*) FROM pg_database WHERE datname IN ({names})")
    assert int(found) == len(municipalities), "a finance database is missing"
    # A NULL datacl means the default privileges, in which PUBLIC may connect.
    open_to_public = superuser_sql(
        host, "postgres",
        f"SELECT datname FROM pg_database WHERE datname IN ({names}) AND (datacl IS NULL OR "
        "EXISTS (SELECT 1 FROM aclexplode(datacl) a WHERE a.grantee = 0 "
        "AND a.privilege_type IN ('CONNECT', 'TEMPORARY')))")
    assert open_to_public == "", f"PUBLIC may connect to: {open_to_public}"


def test_each_login_may_connect_to_its_own_database_only(
        host: Any, municipalities: list[dict[str, Any]]) -> None:
    logins = ", ".join(f"'{m['login']}'" for m in municipalities)
    names = ", ".join(f"'{m['database']}'" for m in municipalities)
    rows = superuser_sql(host, "postgres",
                         "SELECT r.rolname || ' ' || d.datname FROM pg_roles r CROSS JOIN "
                         f"pg_database d WHERE r.rolname IN ({logins}) AND d.datname IN "
                         f"({names}) AND has_database_privilege(r.rolname, d.datname, "
                         "'CONNECT')")
    may = {tuple(line.split()) for line in rows.splitlines() if line.strip()}
    # The diagonal is there (the positive control), and nothing else.
    assert may == {(m["login"], m["database"]) for m in municipalities}, sorted(may)


def test_a_login_is_refused_on_another_database(
        host: Any, municipalities: list[dict[str, Any]]) -> None:
    others = [(a, b["database"]) for a, b in itertools.permutations(municipalities, 2)]
    others += [(a, "postgres") for a in municipalities]
    answers = psql_attempts(host, [(m["password"], f"host=127.0.0.1 port=5432 dbname={db} "
                                    f"user={m['login']} connect_timeout=5")
                                   for m, db in others], "SELECT 1")
    for (m, database), (rc, out) in zip(others, answers, strict=True):
        assert rc != 0, f"{m['login']} connected to {database}"
        assert "pg_hba.conf rejects connection" in out, out


def test_the_host_address_is_rejected_for_a_non_site_source(
        host: Any, municipalities: list[dict[str, Any]], address: str) -> None:
    # Connecting from the host to its own address: the source is the host address, which is in
    # no municipality's site networks, so pg_hba must reject even the right login and password.
    source = ipaddress.ip_address(address)
    for m in municipalities:
        assert not any(source in ipaddress.ip_network(n, strict=False) for n in m["networks"]), (
            f"{address} is in {m['slug']}'s site networks: this check would prove nothing")
    answers = login_sql_all(host, [(m, m["database"], address, "SELECT 1")
                                   for m in municipalities])
    for m, out in zip(municipalities, answers, strict=True):
        assert out.rc != 0, f"{m['login']} connected from {address}, not a site network"
        assert "pg_hba.conf rejects connection" in out.stderr, out.stderr


# ------------------------------------------------------------------------ backups


def test_backup_timer_is_active_and_scheduled(host: Any, fin: dict[str, Any]) -> None:
    timer = host.service("finance-backup.timer")
    assert timer.is_running
    assert timer.is_enabled
    props = dict(line.split("=", 1) for line in host.run(
        "systemctl show finance-backup.timer -p TimersCalendar -p Persistent "
        "-p NextElapseUSecRealtime").stdout.splitlines() if "=" in line)
    assert props["Persistent"] == "yes"
    assert f"OnCalendar={fin['finance_hosting__backup_on_calendar']} " in props["TimersCalendar"]
    assert props["NextElapseUSecRealtime"] not in ("", "0", "n/a")


@pytest.fixture(scope="module")
def backup_run(host: Any, fin: dict[str, Any], municipalities: list[dict[str, Any]]
               ) -> dict[str, str]:
    """Run the backup service now; the newest dump of every database."""
    root_output(host, "systemctl start finance-backup.service")
    today = host.run("date +%F").stdout.strip()
    base = fin["finance_hosting__backup_dir"]
    return {m["database"]: f"{base}/{m['database']}/{today}.dump" for m in municipalities}


def test_backup_service_succeeds(host: Any, backup_run: dict[str, str]) -> None:
    result = host.run("systemctl show finance-backup.service -p Result --value")
    assert result.stdout.strip() == "success"


def test_backup_writes_a_custom_format_dump_per_database(
        host: Any, backup_run: dict[str, str]) -> None:
    listings = run_all(host, {dump: (f"pg_restore --list {shlex.quote(dump)}", "root")
                              for dump in backup_run.values()})
    for dump, listing in listings.items():
        assert listing.rc == 0, f"{dump}: {listing.stderr.strip()}"
        assert "TABLE public ledger" in listing.stdout, f"{dump} holds no ledger table"


def test_backup_keeps_only_the_newest_dumps(
        host: Any, fin: dict[str, Any], backup_run: dict[str, str]) -> None:
    # Plant more old dumps than may be kept, run the backup, count. Only this check plants
    # (another backup run at the same time prunes the same way).
    keep = int(fin["finance_hosting__backup_keep_days"])
    stale = [f"2000-01-{day:02d}.dump" for day in range(1, keep + 2)]
    directories = [dump.rsplit("/", 1)[0] for dump in backup_run.values()]
    try:
        for directory in directories:
            with host.sudo("postgres"):
                planted = host.run("cd %s && touch " + " ".join(stale), directory)
            assert planted.rc == 0, planted.stderr
        # The script itself, not `systemctl start`: a start while another check's backup
        # runs joins that run, which may have listed the folder before the planting.
        with host.sudo("postgres"):
            ran = host.run("umask 0077 && /usr/local/sbin/finance-backup")  # as its unit
        assert ran.rc == 0, ran.stderr
        for dump, directory in zip(backup_run.values(), directories, strict=True):
            names = root_output(host, "find %s -maxdepth 1 -name '*.dump' -printf '%%f\\n'",
                                directory).split()
            assert len(names) == keep, f"{directory}: {len(names)} dumps kept, not {keep}"
            assert dump.rsplit("/", 1)[1] in names
            assert "2000-01-01.dump" not in names
    finally:
        for directory in directories:
            root(host, "rm -f " + " ".join(f"{directory}/{s}" for s in stale))


def test_restore_reproduces_every_table(
        host: Any, municipalities: list[dict[str, Any]], backup_run: dict[str, str]) -> None:
    """Every database's newest dump restores into its scratch database with the same rows in
    every table. The restores run side by side on the host (one round trip), then every
    table's two counts (one more), then the scratch databases are dropped (one more)."""
    tables_sql = ("SELECT quote_ident(table_name) FROM information_schema.tables WHERE "
                  "table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1")
    sources = [m["database"] for m in municipalities]
    scratch = {source: f"{source}_restore_check" for source in sources}
    try:
        commands: dict[str, str | tuple[str, str]] = {}
        for source in sources:
            commands[f"restore {source}"] = (
                f"{RESTORE} {shlex.quote(source)} {shlex.quote(backup_run[source])}", "root")
            commands[f"tables {source}"] = _superuser_command(source, tables_sql)
        ran = run_all(host, commands)
        counts: dict[tuple[str, str], tuple[str, str]] = {}
        for source in sources:
            restored = ran[f"restore {source}"]
            assert restored.rc == 0, f"restore of {source}: {restored.stderr.strip()}"
            tables = _rows(ran[f"tables {source}"], source, tables_sql).split()
            assert tables, f"{source} has no tables"
            for table in tables:
                counts[source, table] = (source, f"SELECT count(*) FROM {table}")
                counts[scratch[source], table] = (scratch[source], f"SELECT count(*) FROM {table}")
        found = superuser_sql_all(host, counts)
        for source, table in (key for key in counts if key[0] in scratch):
            want, got = found[source, table], found[scratch[source], table]
            assert got == want, f"{scratch[source]}.{table}: {got} rows, {source}: {want}"
    finally:
        run_all(host, {db: (f"dropdb --if-exists --force {shlex.quote(db)}", "postgres")
                       for db in scratch.values()})


def test_restore_refuses_to_overwrite_a_live_database(
        host: Any, municipalities: list[dict[str, Any]], backup_run: dict[str, str]) -> None:
    m = municipalities[0]
    out = root(host, f"{RESTORE} %s %s %s", m["database"], backup_run[m["database"]],
               m["database"])
    assert out.rc != 0
    assert "exists" in out.stderr


# ------------------------------------------------------------------------ TLS endpoint


def curl_command(name: str, url: str, *options: str) -> str:
    port = 443 if url.startswith("https:") else 80
    words = ["curl", "-sS", "--max-time", "10", "--resolve", f"{name}:{port}:127.0.0.1",
             *options, url]
    return " ".join(shlex.quote(w) for w in words)


def curl(host: Any, name: str, url: str, *options: str) -> Any:
    return host.run(curl_command(name, url, *options))


def test_each_municipality_page_answers_over_https(
        host: Any, fin: dict[str, Any], municipalities: list[dict[str, Any]]) -> None:
    name = fin["finance_hosting__server_name"]
    # The system CA store: the role common made the host trust the lab's CA.
    pages = run_all(host, {m["slug"]: curl_command(name, f"https://{name}/{m['slug']}/", "-w",
                                                   "\\n%{http_code}") for m in municipalities})
    for m in municipalities:
        result = pages[m["slug"]]
        assert result.rc == 0, f"https://{name}/{m['slug']}/: {result.stderr.strip()}"
        body, _, code = result.stdout.rpartition("\n")
        assert code == "200"
        page = json.loads(body)
        assert (page["municipality"], page["code"]) == (m["name"], m["code"])


def test_an_unknown_path_is_not_found(host: Any, fin: dict[str, Any],
                                      municipalities: list[dict[str, Any]]) -> None:
    name = fin["finance_hosting__server_name"]
    result = curl(host, name, f"https://{name}/no-such-municipality/", "-o", "/dev/null",
                  "-w", "%{http_code}")
    assert result.stdout.strip() == "404"


def test_http_redirects_to_https(host: Any, fin: dict[str, Any],
                                 municipalities: list[dict[str, Any]]) -> None:
    name = fin["finance_hosting__server_name"]
    slug = municipalities[0]["slug"]
    result = curl(host, name, f"http://{name}/{slug}/", "-o", "/dev/null",
                  "-w", "%{http_code} %{redirect_url}")
    assert result.stdout.split() == ["301", f"https://{name}/{slug}/"]


@pytest.fixture(scope="module")
def centre_ca(host: Any, fin: dict[str, Any]) -> Iterator[str]:
    """The lab CA's certificate (from the inventory) in a file on the host."""
    cas = inventory_vars(host).get("common__ca_certificates") or []
    if not cas:
        pytest.skip("no CA certificate in the inventory")
    path = host.run("mktemp /tmp/finance-ca.XXXXXX").stdout.strip()
    assert host.run(f"printf '%s\\n' {shlex.quote(cas[0]['pem'].strip())} > {path}").rc == 0
    yield path
    host.run("rm -f %s", path)


def s_client(host: Any, name: str, *options: str) -> Any:
    return host.run("openssl s_client -connect 127.0.0.1:443 -servername %s "
                    + " ".join(options) + " < /dev/null", name)


def test_certificate_verifies_against_the_centre_ca(
        host: Any, fin: dict[str, Any], centre_ca: str) -> None:
    name = fin["finance_hosting__server_name"]
    result = s_client(host, name, "-CAfile", centre_ca, "-no-CApath", "-no-CAstore",
                      "-verify_return_error", "-verify_hostname", name)
    assert result.rc == 0, result.stderr
    assert "Verify return code: 0 (ok)" in result.stdout


@pytest.mark.parametrize("protocol", ["-tls1_2", "-tls1_3"])
def test_modern_tls_is_accepted(host: Any, fin: dict[str, Any], protocol: str) -> None:
    result = s_client(host, fin["finance_hosting__server_name"], protocol,
                      "-cipher", "DEFAULT@SECLEVEL=0")
    assert result.rc == 0, result.stderr


@pytest.mark.parametrize("protocol", ["-tls1", "-tls1_1"])
def test_old_tls_is_refused(host: Any, fin: dict[str, Any], protocol: str) -> None:
    # SECLEVEL=0 lets the client offer the old protocol, so a refusal comes from the server.
    result = s_client(host, fin["finance_hosting__server_name"], protocol,
                      "-cipher", "DEFAULT@SECLEVEL=0")
    assert result.rc != 0
    assert "no protocols available" not in result.stderr, "the client never offered it"
    assert "alert protocol version" in result.stderr or "handshake failure" in result.stderr, (
        result.stderr)


def test_private_key_is_root_only(host: Any, fin: dict[str, Any]) -> None:
    key = host.file("/etc/nginx/tls/finance-hosting.key")
    with host.sudo():
        assert key.is_file
        assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
