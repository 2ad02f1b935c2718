"""What the role ``dns_ntp`` promises: the centre's resolver answers the lab's zone (and only
the lab's networks), and its chrony serves time; every other host resolves and keeps time
through it.

The platform runs this suite against every host; each test skips on hosts it does not concern.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
from conftest import inventory_vars, only_for, role_vars_for

# A minimal SNTP client (RFC 4330), run with the host's python3: prints "leap mode stratum" of
# the server's answer, or "timeout". argv: server [source address].
SNTP_QUERY = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
if len(sys.argv) > 2:
    s.bind((sys.argv[2], 0))
s.sendto(b'\\x23' + 47 * b'\\0', (sys.argv[1], 123))
try:
    d = s.recv(512)
except OSError:
    print('timeout')
else:
    print(d[0] >> 6, d[0] & 7, d[1])
"""


def sntp(host: Any, server: str, source: str | None = None) -> tuple[int, int, int] | None:
    """(leap, mode, stratum) of an NTP server's answer to this host, None without an answer."""
    args = [server] + ([source] if source else [])
    out = host.check_output(
        f"python3 -c {shlex.quote(SNTP_QUERY)} {' '.join(shlex.quote(a) for a in args)}"
    ).strip()
    if out == "timeout":
        return None
    leap, mode, stratum = (int(x) for x in out.split())
    return leap, mode, stratum


def dig(host: Any, *args: str) -> Any:
    return host.run("dig +time=2 +tries=1 " + " ".join(shlex.quote(a) for a in args))


def status_of(dig_output: str) -> str:
    match = re.search(r"status: (\w+)", dig_output)
    assert match, dig_output
    return match.group(1)


@pytest.fixture(scope="module")
def dns_vars(host: Any) -> dict[str, Any]:
    only_for(host, "dns_ntp")
    return role_vars_for(host, "dns_ntp")


@pytest.fixture(scope="module")
def own_address(host: Any) -> str:
    return str(inventory_vars(host).get("ansible_host", "127.0.0.1"))


# -------------------------------------------------------------------- the dns_ntp host


def test_unbound_is_running_and_enabled(host: Any, dns_vars: dict[str, Any]) -> None:
    unbound = host.service("unbound")
    assert unbound.is_running
    assert unbound.is_enabled


def test_every_record_resolves(host: Any, dns_vars: dict[str, Any]) -> None:
    domain = dns_vars["dns_ntp__domain"]
    records = dns_vars["dns_ntp__records"]
    if not records:
        pytest.skip("no records configured")
    queries = [arg for r in records for arg in (f"{r['name']}.{domain}", "A")]
    out = dig(host, "+noall", "+answer", "@127.0.0.1", *queries).stdout
    answers: dict[str, set[str]] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[3] == "A":
            answers.setdefault(fields[0].rstrip(".").lower(), set()).add(fields[4])
    wrong = {
        f"{r['name']}.{domain}": sorted(answers.get(f"{r['name']}.{domain}".lower(), set()))
        for r in records
        if answers.get(f"{r['name']}.{domain}".lower()) != {r["address"]}
    }
    assert not wrong, f"records that do not answer their address (name: answers): {wrong}"


def test_addresses_resolve_back_to_their_first_name(host: Any, dns_vars: dict[str, Any]) -> None:
    domain = dns_vars["dns_ntp__domain"]
    first: dict[str, str] = {}
    for r in dns_vars["dns_ntp__records"]:
        first.setdefault(r["address"], f"{r['name']}.{domain}.")
    if not first:
        pytest.skip("no records configured")
    # Every query in one dig (one round trip): answers are "<reverse name> ttl IN PTR <name>".
    queries = [arg for address in first for arg in ("-x", address)]
    out = dig(host, "+noall", "+answer", "@127.0.0.1", *queries).stdout
    answers: dict[str, list[str]] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[3] == "PTR":
            answers.setdefault(fields[0].lower(), []).append(fields[4])
    wrong = {}
    for address, name in first.items():
        reverse = ".".join(reversed(address.split("."))) + ".in-addr.arpa."
        if answers.get(reverse) != [name]:
            wrong[address] = answers.get(reverse)
    assert not wrong, f"PTR answers that are not the address's first name: {wrong}"


def test_answers_on_its_own_address(host: Any, dns_vars: dict[str, Any], own_address: str) -> None:
    records = dns_vars["dns_ntp__records"]
    if not records:
        pytest.skip("no records configured")
    name = f"{records[0]['name']}.{dns_vars['dns_ntp__domain']}"
    answer = dig(host, "+short", f"@{own_address}", name, "A").stdout.split()
    assert answer == [records[0]["address"]]


def test_names_outside_the_zone_are_answered_locally(host: Any, dns_vars: dict[str, Any]) -> None:
    """No upstream: a name outside the zone gets the answer the role was told to give
    (``dns_ntp__unknown_names``), from unbound itself. The lab has no uplink, so a resolver
    that tried to recurse could only time out or answer SERVFAIL; NXDOMAIN comes from the
    local zone "." with the authoritative-answer flag, REFUSED without recursion available."""
    result = dig(host, "@127.0.0.1", "deb.debian.org", "A")
    assert result.rc == 0, f"no answer: {result.stdout.strip()}"
    flags = re.search(r";; flags: ([a-z ]*);", result.stdout)
    assert flags, result.stdout
    if dns_vars["dns_ntp__unknown_names"] == "nxdomain":
        assert status_of(result.stdout) == "NXDOMAIN", result.stdout
        assert "aa" in flags.group(1).split(), f"not a local answer: {result.stdout}"
    else:
        assert status_of(result.stdout) == "REFUSED", result.stdout


def test_unknown_names_in_the_zone_do_not_exist(host: Any, dns_vars: dict[str, Any]) -> None:
    result = dig(host, "@127.0.0.1", f"no-such-host.{dns_vars['dns_ntp__domain']}", "A")
    assert status_of(result.stdout) == "NXDOMAIN"


def test_refuses_clients_outside_the_allowed_networks(host: Any, dns_vars: dict[str, Any]) -> None:
    """Of the loopback net only 127.0.0.1 may ask: a query from 127.0.0.2 is refused."""
    records = dns_vars["dns_ntp__records"]
    name = f"{records[0]['name'] if records else 'dns'}.{dns_vars['dns_ntp__domain']}"
    assert status_of(dig(host, "@127.0.0.1", "-b", "127.0.0.2", name).stdout) == "REFUSED"


def test_chrony_serves_time_on_its_own_address(
    host: Any, dns_vars: dict[str, Any], own_address: str
) -> None:
    answer = sntp(host, own_address)
    assert answer is not None, f"no NTP answer from {own_address}"
    leap, mode, stratum = answer
    assert mode == 4, "not a server answer"
    assert leap != 3, "the server says its clock is not synchronised"
    assert stratum == dns_vars["dns_ntp__local_stratum"]


def test_chrony_ignores_clients_outside_the_allowed_networks(
    host: Any, dns_vars: dict[str, Any]
) -> None:
    assert sntp(host, "127.0.0.1") is not None, "chrony does not serve localhost"
    assert sntp(host, "127.0.0.1", "127.0.0.2") is None


# ------------------------------------------------------------------------- other hosts


@pytest.fixture(scope="module")
def client_vars(host: Any, function: str) -> dict[str, Any]:
    """The role common's variables of a host that uses the centre's DNS and time servers."""
    if function in ("", "dns_ntp"):
        pytest.skip("the dns_ntp host itself, or no inventory")
    return role_vars_for(host, "common")


def test_resolver_names_the_dns_servers(host: Any, client_vars: dict[str, Any]) -> None:
    servers = client_vars["common__dns_servers"]
    if not servers:
        pytest.skip("this host keeps its own resolver")
    conf = host.file("/etc/resolv.conf").content_string
    assert re.findall(r"^nameserver\s+(\S+)", conf, re.M) == servers


def test_the_dns_servers_answer_this_host(host: Any, client_vars: dict[str, Any]) -> None:
    """Each DNS server resolves this host's own name to its address, asked from this host."""
    servers = client_vars["common__dns_servers"]
    variables = inventory_vars(host)
    if not servers:
        pytest.skip("this host keeps its own resolver")
    name = f"{variables['inventory_hostname']}.{variables['fellesdrift_domain']}"
    for server in servers:
        answer = dig(host, "+short", f"@{server}", name, "A").stdout.split()
        assert answer == [variables["ansible_host"]], f"{server} answers {name} with {answer}"


def test_the_time_servers_serve_this_host(host: Any, client_vars: dict[str, Any]) -> None:
    servers = client_vars["common__ntp_servers"]
    if not servers:
        pytest.skip("no time servers configured")
    for server in servers:
        answer = sntp(host, server)
        assert answer is not None, f"no NTP answer from {server}"
        leap, mode, stratum = answer
        assert mode == 4 and leap != 3 and stratum < 16, f"{server} answers {answer}"
