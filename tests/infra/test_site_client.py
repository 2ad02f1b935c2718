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

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def site(require: Any, role_vars: Any) -> dict[str, Any]:
    require("site_client")
    return dict(role_vars("site_client"))


def _domain(host: Any) -> str:
    return str(host.ansible.get_variables().get("fellesdrift_domain", ""))


def test_the_centre_resolver_answers(host: Any, site: dict[str, Any]) -> None:
    assert site["site_client_dns_servers"], "no resolver in the centre"
    for server in site["site_client_dns_servers"]:
        name = f"apt.{_domain(host)}"
        answer = host.run(f"dig +short +time=2 +tries=2 @{server} {name} A")
        assert answer.rc == 0 and answer.stdout.split(), f"{server} gave no address for {name}"


def test_names_resolve_through_the_system_resolver(host: Any, site: dict[str, Any]) -> None:
    name = f"okonomi.{_domain(host)}"
    assert host.run(f"getent hosts {name}").rc == 0, f"{name} does not resolve on the site"


def test_the_centre_time_source_is_reachable(host: Any, site: dict[str, Any]) -> None:
    # chronyc prints the reach register (octal); non-zero once a reply came back. A site made
    # minutes ago may not have polled since its routes came up: ask for a burst, then wait.
    def reach() -> dict[str, int]:
        lines = host.run("chronyc -n -c sources").stdout.splitlines()
        return {f[2]: int(f[5], 8) for f in (line.split(",") for line in lines) if len(f) > 5}
    wanted = set(site["site_client_ntp_servers"])
    host.run("sudo -n chronyc -a 'burst 4/4'")
    deadline = time.monotonic() + 60
    while not all(reach().get(s, 0) for s in wanted) and time.monotonic() < deadline:
        time.sleep(3)
    silent = sorted(s for s in wanted if not reach().get(s, 0))
    assert not silent, f"no NTP reply from {', '.join(silent)}"


def test_the_apt_proxy_serves_the_debian_archive(host: Any, site: dict[str, Any]) -> None:
    proxy = site["site_client_apt_proxy_url"]
    assert proxy, "no apt proxy in the centre"
    code = host.check_output(
        "curl -s -o /dev/null -w '%%{http_code}' --max-time 30 -x %s "
        "http://deb.debian.org/debian/dists/bookworm/Release", proxy)
    assert code == "200"


def _get(host: Any, url: str, path: str) -> tuple[str, bytes]:
    out = host.run("curl -sS --max-time 20 -o %s -w '%%{content_type}' %s", path, url)
    assert out.rc == 0, f"{url}: {out.stderr}"
    return out.stdout, base64.b64decode(host.run("base64 -w0 %s", path).stdout)


def test_its_own_wms_draws_its_sites(host: Any, site: dict[str, Any]) -> None:
    wms = site["site_client_wms"]
    if not wms:
        pytest.skip("the municipality does not subscribe to GIS")
    lat0, lon0, lat1, lon1 = wms["bbox"]
    base = (f"{wms['url']}?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS={wms['layer']}"
            "&STYLES=&CRS=EPSG:4326&WIDTH=256&HEIGHT=256&FORMAT=image/png")
    kind, png = _get(host, f"{base}&BBOX={lat0},{lon0},{lat1},{lon1}", "/tmp/fd-wms.png")
    assert kind.startswith("image/png") and png.startswith(PNG_SIGNATURE), kind
    # The same map far from every site is empty: drawing the sites makes the PNG differ.
    _, empty = _get(host, f"{base}&BBOX=-60,-60,-59,-59", "/tmp/fd-wms-empty.png")
    assert png != empty, "the map of the municipality's sites is as empty as one of nowhere"


def test_its_finance_endpoint_answers_over_tls_trusting_the_centre_ca(
        host: Any, site: dict[str, Any]) -> None:
    url = site["site_client_finance_url"]
    if not url:
        pytest.skip("the municipality does not subscribe to the finance system")
    # No -k: curl checks the certificate against the system store, where the centre's CA is.
    out = host.run("curl -sS --fail --max-time 20 %s", url)
    assert out.rc == 0, out.stderr
    assert site["site_client_municipality"] in out.stdout


def test_no_host_of_another_municipality_is_reachable(host: Any, site: dict[str, Any],
                                                       record_property: Any) -> None:
    foreign = site["site_client_foreign_hosts"]
    if not foreign:
        pytest.skip("no other municipality in the lab")
    # Every lab host runs sshd on 22: a completed TCP handshake means reachable. All at once.
    probes = " ".join(f"(nc -z -w 3 {shlex.quote(h['address'])} 22 && echo {h['name']}) &"
                      for h in foreign)
    reached = set(host.run(f"{probes} wait").stdout.split())
    own = site["site_client_municipality"]
    matrix: dict[str, bool] = {}
    for h in foreign:
        matrix[h["municipality"]] = matrix.get(h["municipality"], False) or h["name"] in reached
    record_property("tenancy", json.dumps({"kind": "network", "from": own, "to": matrix}))
    assert not reached, f"{own}'s site reaches other municipalities' hosts: {sorted(reached)}"
