"""What a site's users get, checked from the site client: the centre's services answer, the
municipality's own WMS and finance endpoints work, and nothing of any other municipality can
be reached. Runs after the network phase (a site has no routes before it).

The tenant-by-tenant results are recorded in the JUnit report (property ``tenancy``), from
which ``fellesdrift verify`` prints the matrix.
"""

from __future__ import annotations

import base64
import json
import shlex
import time
from typing import Any

import pytest
from conftest import inventory_vars

#: The host functions this suite checks (conftest parametrizes it with those hosts only).
FUNCTIONS = ('site_client',)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def site(require: Any, role_vars: Any) -> dict[str, Any]:
    require("site_client")
    return dict(role_vars("site_client"))


def _domain(host: Any) -> str:
    domain = inventory_vars(host).get("fellesdrift_domain")
    assert domain, "the inventory names no fellesdrift_domain"
    return str(domain)


def test_the_centre_resolver_answers(host: Any, site: dict[str, Any]) -> None:
    assert site["site_client__dns_servers"], "no resolver in the centre"
    for server in site["site_client__dns_servers"]:
        name = f"apt.{_domain(host)}"
        answer = host.run(f"dig +short +time=2 +tries=2 @{server} {name} A")
        assert answer.rc == 0 and answer.stdout.split(), f"{server} gave no address for {name}"


def test_names_resolve_through_the_system_resolver(host: Any, site: dict[str, Any]) -> None:
    name = f"okonomi.{_domain(host)}"
    assert host.run(f"getent hosts {name}").rc == 0, f"{name} does not resolve on the site"


def test_the_centre_time_source_is_reachable(host: Any, site: dict[str, Any]) -> None:
    # chronyc prints the reach register (octal); non-zero once a reply came back. A site made
    # minutes ago may not have polled since its routes came up: then ask for a burst (four
    # requests two seconds apart) and poll until the replies are in.
    def silent() -> list[str]:
        lines = host.run("chronyc -n -c sources").stdout.splitlines()
        reach = {f[2]: int(f[5], 8) for f in (line.split(",") for line in lines) if len(f) > 5}
        return sorted(s for s in wanted if not reach.get(s, 0))
    wanted = set(site["site_client__ntp_servers"])
    assert wanted, "no time server in the centre"
    if not silent():
        return
    with host.sudo():
        burst = host.run("chronyc burst 4/4")
    assert burst.rc == 0, f"chronyc burst: {burst.stderr.strip()}"
    deadline = time.monotonic() + 30
    while (waiting := silent()) and time.monotonic() < deadline:
        time.sleep(1)
    assert not waiting, f"no NTP reply from {', '.join(waiting)}"


def test_the_apt_proxy_serves_the_debian_archive(host: Any, site: dict[str, Any]) -> None:
    proxy = site["site_client__apt_proxy_url"]
    assert proxy, "no apt proxy in the centre"
    code = host.check_output(
        "curl -s -o /dev/null -w '%%{http_code}' --max-time 30 -x %s "
        "http://deb.debian.org/debian/dists/bookworm/Release", proxy)
    assert code == "200"


def _get(host: Any, url: str, path: str) -> tuple[str, bytes]:
    out = host.run("curl -sS --fail --max-time 20 -o %s -w '%%{content_type}' %s", path, url)
    assert out.rc == 0, f"{url}: {out.stderr}"
    return out.stdout, base64.b64decode(host.run("base64 -w0 %s", path).stdout)


def _png_size(kind: str, data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG answer; fails on anything else (an error page, an XML
    exception of the WMS)."""
    assert kind.startswith("image/png") and data.startswith(PNG_SIGNATURE), (
        f"not a PNG: {kind}, {data[:80]!r}")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_its_own_wms_draws_its_sites(host: Any, site: dict[str, Any]) -> None:
    wms = site["site_client__wms"]
    if not wms:
        pytest.skip("the municipality does not subscribe to GIS")
    lat0, lon0, lat1, lon1 = wms["bbox"]
    base = (f"{wms['url']}?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS={wms['layer']}"
            "&STYLES=&CRS=EPSG:4326&WIDTH=256&HEIGHT=256&FORMAT=image/png")
    png = _get(host, f"{base}&BBOX={lat0},{lon0},{lat1},{lon1}", "/tmp/fd-wms.png")
    # The same map far from every site is empty, and a map too: drawing the sites makes the
    # PNG differ (two error pages, or two blank maps, would be alike).
    empty = _get(host, f"{base}&BBOX=-60,-60,-59,-59", "/tmp/fd-wms-empty.png")
    assert _png_size(*png) == _png_size(*empty) == (256, 256)
    assert png[1] != empty[1], "the map of the municipality's sites is as empty as one of nowhere"


def test_its_finance_endpoint_answers_over_tls_trusting_the_centre_ca(
        host: Any, site: dict[str, Any]) -> None:
    url = site["site_client__finance_url"]
    if not url:
        pytest.skip("the municipality does not subscribe to the finance system")
    # No -k: curl checks the certificate against the system store, where the centre's CA is.
    out = host.run("curl -sS --fail --max-time 20 %s", url)
    assert out.rc == 0, out.stderr
    assert site["site_client__municipality"] in out.stdout


def _reached(host: Any, targets: list[tuple[str, str, int]]) -> set[str]:
    """The names of the (name, address, port) targets this host completes a TCP handshake
    with, probed all at once."""
    probes = " ".join(f"(nc -z -w 3 {shlex.quote(a)} {p} && echo {shlex.quote(n)}) &"
                      for n, a, p in targets)
    return set(host.run(f"{probes} wait").stdout.split())


def test_no_host_of_another_municipality_is_reachable(host: Any, site: dict[str, Any],
                                                       record_property: Any) -> None:
    foreign = site["site_client__foreign_hosts"]
    if not foreign:
        pytest.skip("no other municipality in the lab")
    # Positive control: the same probe reaches what the site must reach (the centre's
    # resolvers, TCP 53), or an unreachable foreign host proves nothing (no nc, no network).
    assert host.exists("nc"), "nc is not installed: isolation cannot be probed"
    control = [(f"resolver-{i}", a, 53) for i, a in enumerate(site["site_client__dns_servers"])]
    assert control, "no resolver in the centre to probe as a positive control"
    missed = {n for n, _, _ in control} - _reached(host, control)
    assert not missed, f"the probe does not reach the centre's resolvers ({sorted(missed)})"
    # Every lab host runs sshd on 22: a completed TCP handshake means reachable. All at once.
    reached = _reached(host, [(h["name"], h["address"], 22) for h in foreign])
    own = site["site_client__municipality"]
    matrix: dict[str, bool] = {}
    for h in foreign:
        matrix[h["municipality"]] = matrix.get(h["municipality"], False) or h["name"] in reached
    record_property("tenancy", json.dumps({"kind": "network", "from": own, "to": matrix}))
    assert not reached, f"{own}'s site reaches other municipalities' hosts: {sorted(reached)}"
