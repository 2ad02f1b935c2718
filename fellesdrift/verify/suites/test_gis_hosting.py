"""What the role ``gis_hosting`` promises on a GIS hosting host, checked the way an operator would.

Every municipality in ``gis_hosting__municipalities`` has its own PostGIS database holding its
sites, reachable with its own login only, and a WMS at ``/<slug>/wms`` that draws those sites.
The suite skips on hosts of other functions. Run by the platform, for example::

    pytest fellesdrift/verify/suites/test_gis_hosting.py --ansible-inventory=<inventory> \
        --hosts=ansible://gis-01 --connection=ansible

Database checks run on the host (psql over 127.0.0.1, as a login would connect); commands that
need the superuser go through sudo (the platform connects as ``ops``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

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
    shell,
)

#: The host functions this suite checks (conftest parametrizes it with those hosts only).
FUNCTIONS = ('gis_hosting',)

ROLE = "gis_hosting"
PNG_SIGNATURE = "89 50 4e 47 0d 0a 1a 0a"
# A spot no municipality's sites are near (South Pacific): its GetMap is an empty image.
EMPTY_BBOX_LONLAT = (-150.0, -50.0, -149.9, -49.9)


@pytest.fixture(scope="module")
def gis(host: Any) -> dict[str, Any]:
    """The role's variables on a gis_hosting host (skips elsewhere)."""
    only_for(host, ROLE)
    return role_vars_for(host, ROLE)


@pytest.fixture(scope="module")
def municipalities(gis: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(gis["gis_hosting__municipalities"])
    if not found:
        pytest.skip("no municipality subscribes to GIS hosting")
    return found


def _postgres_all(host: Any, queries: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Run each (db, sql) as the superuser, all in one round trip; the unaligned, tuples-only
    output by key (the first that failed, in the order given, fails the check)."""
    ran = run_all(host, {key: (shell("psql -XAtq -d %s -c %s", db, sql), "postgres")
                         for key, (db, sql) in queries.items()})
    return {key: ran[key].output() for key in queries}


def _login_command(gis: dict[str, Any], m: dict[str, Any], db: str, sql: str) -> Job:
    return as_login(m["password"], shell(
        "psql -XAtq -w -h 127.0.0.1 -p %s -U %s -d %s -c %s",
        str(gis["gis_hosting__postgresql_port"]), m["login"], db, sql))


def _as_login(host: Any, gis: dict[str, Any], m: dict[str, Any], db: str, sql: str) -> Ran:
    """Run ``sql`` in ``db`` as municipality ``m``'s login over TCP to 127.0.0.1."""
    return run_all(host, {"login": _login_command(gis, m, db, sql)})["login"]


def _wms_url(m: dict[str, Any], **params: str) -> str:
    query = {"SERVICE": "WMS", "VERSION": "1.3.0", **params}
    return f"http://127.0.0.1/{m['slug']}/wms?{urlencode(query)}"


def _curl_command(gis: dict[str, Any], url: str, *fmt: str) -> str:
    return shell("curl -s -m 30 -H %s -o /dev/null -w %s %s",
                 f"Host: {gis['gis_hosting__server_name']}", " ".join(fmt), url)


def _curl(host: Any, gis: dict[str, Any], url: str, *fmt: str) -> str:
    """GET ``url`` on the host with the WMS server name; stdout of ``curl -w <fmt>``."""
    return run_all(host, {"": _curl_command(gis, url, *fmt)})[""].output()


def _bbox(lonlat: tuple[float, float, float, float]) -> str:
    """A WMS 1.3.0 EPSG:4326 BBOX (latitude first)."""
    min_lon, min_lat, max_lon, max_lat = lonlat
    return f"{min_lat},{min_lon},{max_lat},{max_lon}"


def _around(sites: list[dict[str, Any]], margin: float) -> tuple[float, float, float, float]:
    lons = [float(s["lon"]) for s in sites]
    lats = [float(s["lat"]) for s in sites]
    return min(lons) - margin, min(lats) - margin, max(lons) + margin, max(lats) + margin


Map = tuple[str, int, str]


def _getmaps(host: Any, gis: dict[str, Any],
             asked: list[tuple[dict[str, Any], tuple[float, float, float, float]]]) -> list[Map]:
    """(content type, size, first 8 bytes in hex) of a 256x256 PNG GetMap of layer sites, for
    every (municipality, bbox) asked, in one round trip."""
    commands: dict[str, str | tuple[str, str]] = {}
    for i, (m, lonlat) in enumerate(asked):
        url = _wms_url(m, REQUEST="GetMap", LAYERS="sites", STYLES="", CRS="EPSG:4326",
                       BBOX=_bbox(lonlat), WIDTH="256", HEIGHT="256", FORMAT="image/png")
        commands[f"{i} type"] = _curl_command(gis, url, "%{content_type}", "%{size_download}")
        commands[f"{i} head"] = shell("curl -s -m 30 -H %s %s | head -c 8 | od -An -tx1",
                                      f"Host: {gis['gis_hosting__server_name']}", url)
    # One map at a time: MapServer draws on the cores the monitoring probes and the site
    # clients' requests to this host need too.
    ran = run_all(host, commands, at_once=1)
    found = []
    for i in range(len(asked)):
        content_type, size = ran[f"{i} type"].output().split()
        found.append((content_type, int(size), " ".join(ran[f"{i} head"].output().split())))
    return found


# --- PostgreSQL -------------------------------------------------------------------------------

def test_postgresql_is_running_and_enabled(host: Any, gis: dict[str, Any]) -> None:
    unit = (f"postgresql@{gis['gis_hosting__postgresql_version']}"
            f"-{gis['gis_hosting__postgresql_cluster']}")
    assert host.service(unit).is_running
    assert host.service("postgresql").is_enabled


def test_each_database_has_postgis(host: Any, municipalities: list[dict[str, Any]]) -> None:
    versions = _postgres_all(host, {
        m["database"]: (m["database"],
                        "SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
        for m in municipalities})
    for m in municipalities:
        version = versions[m["database"]]
        assert version.strip(), f"{m['database']}: extension postgis missing"


def test_each_layer_holds_exactly_the_sites(host: Any,
                                            municipalities: list[dict[str, Any]]) -> None:
    layers = _postgres_all(host, {
        m["database"]: (m["database"],
                        "SELECT id, ST_SRID(geom), ST_X(geom), ST_Y(geom) FROM sites ORDER BY id")
        for m in municipalities})
    for m in municipalities:
        rows = layers[m["database"]]
        found = {line.split("|")[0]: line.split("|")[1:] for line in rows.splitlines() if line}
        wanted = {s["id"]: s for s in m.get("sites", [])}
        assert len(found) == len(wanted), f"{m['database']}: {len(found)} rows"
        assert sorted(found) == sorted(wanted), m["database"]
        for site_id, (srid, x, y) in found.items():
            assert srid == "4326"
            assert float(x) == pytest.approx(float(wanted[site_id]["lon"]), abs=1e-9)
            assert float(y) == pytest.approx(float(wanted[site_id]["lat"]), abs=1e-9)


def test_each_login_reads_its_own_database(host: Any, gis: dict[str, Any],
                                           municipalities: list[dict[str, Any]]) -> None:
    answers = run_all(host, {
        m["database"]: _login_command(gis, m, m["database"],
                                      "SELECT current_user, count(*) FROM sites GROUP BY 1")
        for m in municipalities})
    for m in municipalities:
        result = answers[m["database"]]
        assert result.rc == 0, f"{m['login']} cannot read {m['database']}: {result.stderr}"
        if m.get("sites"):
            assert result.stdout.strip() == f"{m['login']}|{len(m['sites'])}"


def test_a_login_is_refused_on_other_databases(host: Any, gis: dict[str, Any],
                                               municipalities: list[dict[str, Any]]) -> None:
    port = gis["gis_hosting__postgresql_port"]
    # Positive control: each login, with the same password and path, reaches its own database.
    tries = [(m, db) for m in municipalities for db in
             [m["database"], "postgres", *(o["database"] for o in municipalities if o is not m)]]
    answers = psql_attempts(host, [(m["password"], f"host=127.0.0.1 port={port} dbname={db} "
                                    f"user={m['login']} connect_timeout=5") for m, db in tries],
                            "SELECT 1")
    for (m, db), (rc, out) in zip(tries, answers, strict=True):
        if db == m["database"]:
            assert rc == 0 and out == "1", f"{m['login']} cannot reach its own database: {out}"
            continue
        assert rc != 0, f"{m['login']} got into {db}"
        refusal = f'no pg_hba.conf entry for host "127.0.0.1", user "{m["login"]}", ' \
                  f'database "{db}"'
        assert refusal in out, f"{m['login']} on {db}: {out}"


def test_a_wrong_password_is_refused(host: Any, gis: dict[str, Any],
                                     municipalities: list[dict[str, Any]]) -> None:
    m = municipalities[0]
    result = _as_login(host, gis, m | {"password": "not-" + m["password"]}, m["database"],
                       "SELECT 1")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


def test_public_cannot_connect(host: Any, municipalities: list[dict[str, Any]]) -> None:
    grants = _postgres_all(host, {
        m["database"]: ("postgres", f"SELECT has_database_privilege('public', '{m['database']}', "
                                    "'CONNECT')") for m in municipalities})
    for m in municipalities:
        granted = grants[m["database"]]
        assert granted.strip() == "f", f"PUBLIC may connect to {m['database']}"


def test_databases_are_owned_by_their_logins(host: Any,
                                             municipalities: list[dict[str, Any]]) -> None:
    owners = _postgres_all(host, {
        m["database"]: ("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database "
                                    f"WHERE datname = '{m['database']}'") for m in municipalities})
    for m in municipalities:
        owner = owners[m["database"]]
        assert owner.strip() == m["login"]


# --- WMS --------------------------------------------------------------------------------------

def test_capabilities_list_layer_sites(host: Any, gis: dict[str, Any],
                                       municipalities: list[dict[str, Any]]) -> None:
    answers = run_all(host, {m["slug"]: shell("curl -sf -m 30 -H %s %s",
                                              f"Host: {gis['gis_hosting__server_name']}",
                                              _wms_url(m, REQUEST="GetCapabilities"))
                             for m in municipalities}, at_once=1)
    for m in municipalities:
        xml = answers[m["slug"]].output()
        assert "<WMS_Capabilities" in xml, f"{m['slug']}: no capabilities document"
        assert "<Name>sites</Name>" in xml, f"{m['slug']}: layer sites missing"
        assert f"/{m['slug']}/wms" in xml


def test_the_wms_serves_several_requests_at_once(host: Any, gis: dict[str, Any],
                                                municipalities: list[dict[str, Any]]) -> None:
    """fcgiwrap runs gis_hosting__wms_workers mapserv requests side by side (Debian's one would
    queue every municipality's and every site's maps): that many at once all answer, and the
    service has that many workers."""
    workers = int(gis["gis_hosting__wms_workers"])
    m = municipalities[0]
    answers = run_all(host, {str(i): shell("curl -s -m 30 -o /dev/null -w %s -H %s %s",
                                           "%{http_code}",
                                           f"Host: {gis['gis_hosting__server_name']}",
                                           _wms_url(m, REQUEST="GetCapabilities"))
                             for i in range(workers)}, at_once=workers)
    assert [a.output() for a in answers.values()] == ["200"] * workers
    main = host.check_output("systemctl show --property=MainPID --value fcgiwrap.service")
    assert main.isdigit() and main != "0", "fcgiwrap.service is not running"
    children = host.run("pgrep --count --parent %s fcgiwrap", main).stdout.strip()
    assert children == str(workers), f"fcgiwrap has {children} workers, not {workers}"


def test_capabilities_answer_on_the_host_address(host: Any,
                                                 municipalities: list[dict[str, Any]]) -> None:
    address = inventory_vars(host).get("ansible_host")
    if not address:
        pytest.skip("host address unknown without an inventory")
    m = municipalities[0]
    url = _wms_url(m, REQUEST="GetCapabilities").replace("127.0.0.1", str(address))
    assert "<Name>sites</Name>" in str(host.check_output("curl -sf -m 30 %s", url))


def test_getmap_draws_the_sites(host: Any, gis: dict[str, Any],
                                municipalities: list[dict[str, Any]]) -> None:
    drawn = [m for m in municipalities if m.get("sites")]
    maps = _getmaps(host, gis, [asked for m in drawn for asked in
                                ((m, EMPTY_BBOX_LONLAT), (m, _around(m["sites"], 0.05)))])
    for i, m in enumerate(drawn):
        (blank_type, blank_size, _), (content_type, size, head) = maps[2 * i:2 * i + 2]
        assert content_type == "image/png", f"{m['slug']}: {content_type}"
        assert blank_type == "image/png"
        assert head == PNG_SIGNATURE, f"{m['slug']}: not a PNG ({head})"
        assert size > blank_size, f"{m['slug']}: nothing drawn ({size} <= {blank_size} bytes)"


def test_a_wms_shows_only_its_own_municipality(host: Any, gis: dict[str, Any],
                                               municipalities: list[dict[str, Any]]) -> None:
    """Another municipality's site, asked for on this endpoint, is not drawn."""
    pairs = [(m, s) for m in municipalities for o in municipalities if o is not m
             for s in o.get("sites", [])
             if not any(abs(float(t["lon"]) - float(s["lon"])) < 0.05
                        and abs(float(t["lat"]) - float(s["lat"])) < 0.05
                        for t in m.get("sites", []))]
    if not pairs:
        pytest.skip("needs two municipalities with sites apart")
    m, site = pairs[0]
    own, blank, other = _getmaps(host, gis, [(m, _around(m["sites"], 0.05)),
                                             (m, EMPTY_BBOX_LONLAT), (m, _around([site], 0.01))])
    # Three PNG maps (two error pages would be alike too), of which the own sites' is drawn.
    for content_type, _, head in (own, blank, other):
        assert (content_type, head) == ("image/png", PNG_SIGNATURE), (content_type, head)
    assert own[1] > blank[1], f"/{m['slug']}/wms does not draw its own sites"
    assert other[1] == blank[1], f"/{m['slug']}/wms drew another municipality's site"


def test_wms_refuses_a_client_chosen_mapfile(host: Any, gis: dict[str, Any],
                                             municipalities: list[dict[str, Any]]) -> None:
    m = municipalities[0]
    url = _wms_url(m, REQUEST="GetCapabilities", map="/etc/mapserver/other.map")
    assert _curl(host, gis, url, "%{http_code}") == "403"
