"""What the role ``apt_proxy`` promises: the centre's apt-cacher-ng serves Debian packages to
the lab's networks and nobody else, and every other host's apt goes through it.

The platform runs this suite against every host; each test skips on hosts it does not concern.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from conftest import inventory_vars, only_for, role_vars_for

DEBIAN_MIRROR = "http://deb.debian.org/debian"


@pytest.fixture(scope="module")
def apt_proxy_vars(host: Any) -> dict[str, Any]:
    return role_vars_for(host, "apt_proxy")


@pytest.fixture(scope="module")
def codename(host: Any) -> str:
    return str(host.system_info.codename)


def http_status(host: Any, url: str, proxy: str, *curl_args: str) -> str:
    """The HTTP status of a GET through a proxy, as curl reports it ("000": no HTTP answer)."""
    args = " ".join(shlex.quote(a) for a in curl_args)
    result = host.run(
        f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 30 -x {shlex.quote(proxy)} "
        f"{args} {shlex.quote(url)}"
    )
    return str(result.stdout.strip())


def own_address(host: Any) -> str:
    return str(inventory_vars(host).get("ansible_host", "127.0.0.1"))


# ------------------------------------------------------------------ the apt proxy host


def test_apt_cacher_ng_is_running_and_enabled(host: Any) -> None:
    only_for(host, "apt_proxy")
    service = host.service("apt-cacher-ng")
    assert service.is_running
    assert service.is_enabled


def test_listens_on_its_port(host: Any, apt_proxy_vars: dict[str, Any]) -> None:
    only_for(host, "apt_proxy")
    port = apt_proxy_vars["apt_proxy__port"]
    listening = [s for s in host.socket.get_listening_sockets() if s.endswith(f":{port}")]
    assert any(s.startswith("tcp://") for s in listening), f"nothing listens on TCP {port}"


def test_serves_a_debian_release_file(
    host: Any, apt_proxy_vars: dict[str, Any], codename: str
) -> None:
    """A client of the lab's network gets the Release file through the proxy (HTTP 200)."""
    only_for(host, "apt_proxy")
    proxy = f"http://{own_address(host)}:{apt_proxy_vars['apt_proxy__port']}"
    url = f"{DEBIAN_MIRROR}/dists/{codename}/Release"
    assert http_status(host, url, proxy) == "200"


def test_apt_get_update_works_through_the_proxy(host: Any, apt_proxy_vars: dict[str, Any]) -> None:
    """A real `apt-get update` through the proxy, into throw-away lists (the host's own lists
    and package cache are left alone)."""
    only_for(host, "apt_proxy")
    proxy = f"http://{own_address(host)}:{apt_proxy_vars['apt_proxy__port']}"
    script = (
        "d=$(mktemp -d) && trap 'rm -rf \"$d\"' EXIT && "
        'apt-get update --error-on=any -o Dir::State::Lists="$d" '
        "-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root "
        f"-o Acquire::http::Proxy={shlex.quote(proxy)}"
    )
    with host.sudo():
        result = host.run(f"bash -c {shlex.quote(script)}")
    assert result.rc == 0, f"apt-get update through {proxy} failed: {result.stderr.strip()}"
    assert "Get:" in result.stdout or "Hit:" in result.stdout, result.stdout


def test_refuses_clients_outside_the_allowed_networks(
    host: Any, apt_proxy_vars: dict[str, Any], codename: str
) -> None:
    """Only 127.0.0.1 of the loopback net is allowed: a request from 127.0.0.2 gets no answer."""
    only_for(host, "apt_proxy")
    proxy = f"http://127.0.0.1:{apt_proxy_vars['apt_proxy__port']}"
    url = f"{DEBIAN_MIRROR}/dists/{codename}/Release"
    assert http_status(host, url, proxy) == "200", "the proxy does not answer localhost"
    assert http_status(host, url, proxy, "--interface", "127.0.0.2") == "000"


# ------------------------------------------------------------------------- other hosts


@pytest.fixture(scope="module")
def proxy_url(host: Any, function: str) -> str:
    """The apt proxy this host installs through (skips hosts without one)."""
    if function in ("", "apt_proxy"):
        pytest.skip("the apt proxy itself, or no inventory: no apt proxy to use")
    url = str(role_vars_for(host, "common").get("common__apt_proxy_url", ""))
    if not url:
        pytest.skip("no apt proxy configured for this host")
    return url


def test_apt_names_the_proxy(host: Any, proxy_url: str) -> None:
    configured = host.check_output("apt-config dump --format '%v%n' Acquire::http::Proxy")
    assert configured.strip() == proxy_url


def test_proxy_serves_this_host(host: Any, proxy_url: str, codename: str) -> None:
    url = f"{DEBIAN_MIRROR}/dists/{codename}/Release"
    assert http_status(host, url, proxy_url) == "200"
