"""What the role ``monitoring`` promises, checked the way an operator would: through
Prometheus's HTTP API on the monitoring host.

Run by the platform against every host; the tests skip on hosts that are not monitoring
hosts (the host's function comes from the Ansible inventory)::

    ANSIBLE_CONFIG=ansible.cfg pytest fellesdrift/verify/suites/test_monitoring.py \
        --ansible-inventory=.lab/<env>/inventory.yml --connection=ansible \
        --hosts=ansible://overvaking

Verify runs after the network phase, when every endpoint must answer: each probe's endpoint
answers curl from this host (the positive control, the way the probe module fetches it) and
the probe succeeds.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from conftest import inventory_vars, only_for, role_vars_for

#: The host functions this suite checks (conftest parametrizes it with those hosts only).
FUNCTIONS = ('monitoring',)

ROLE = "monitoring"
AVAILABILITY_RECORD = "municipality_service:probe_success:avg_over_time_30d"
TARGET_RECORD = "municipality_service:availability_target:ratio"
AVAILABILITY_WINDOW = "30d"
ALERTS = ("ProbeDown", "AvailabilityBelowTarget")
# A scrape interval plus margin: targets are scraped for the first time within one interval.
SETTLE_SECONDS = 35.0

T = TypeVar("T")


@pytest.fixture(scope="module")
def mon(host: Any) -> dict[str, Any]:
    """The role's variables on a monitoring host; skips every other host."""
    only_for(host, ROLE)
    return role_vars_for(host, ROLE)


@pytest.fixture(scope="module")
def api(host: Any, mon: dict[str, Any]) -> Callable[..., Any]:
    """``api(path, **params)``: the ``data`` of a Prometheus API answer (GET, url-encoded)."""
    port = str(mon["monitoring__listen_address"]).rsplit(":", 1)[1]

    def call(path: str, **params: str) -> Any:
        args = ["curl", "-sS", "--fail", "--max-time", "15", "-G", f"http://127.0.0.1:{port}{path}"]
        for name, value in params.items():
            args += ["--data-urlencode", f"{name}={value}"]
        result = host.run(shlex.join(args))
        assert result.rc == 0, f"GET {path} {params}: {result.stderr.strip()}"
        answer = json.loads(result.stdout)
        assert answer.get("status") == "success", f"GET {path} {params}: {answer}"
        return answer["data"]

    return call


def poll(check: Callable[[], T], done: Callable[[T], bool], within: float = SETTLE_SECONDS) -> T:
    """Call ``check`` until ``done`` holds or ``within`` seconds pass; the last result."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if done(value) or time.monotonic() >= deadline:
            return value
        time.sleep(3)


def active_targets(api: Callable[..., Any], job: str) -> list[dict[str, Any]]:
    return [
        t
        for t in api("/api/v1/targets", state="active")["activeTargets"]
        if t["labels"].get("job") == job
    ]


def probe_key(labels: dict[str, Any]) -> tuple[str, str]:
    return str(labels.get("municipality")), str(labels.get("service"))


def seconds(duration: str) -> float:
    """A Prometheus duration (``30s``, ``1m30s``) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", duration))


def size_bytes(size: str) -> int:
    """A Prometheus size (``1GB``, printed back as ``1GiB``; both mean 2**30 bytes) in bytes."""
    match = re.fullmatch(r"(\d+)([KMGTPE]?)i?B", size.strip())
    assert match, f"not a Prometheus size: {size!r}"
    return int(match[1]) * int(1024 ** " KMGTPE".index(match[2] or " "))


def probe_settle(mon: dict[str, Any]) -> float:
    """How long until every probe has run at least once more: one probe interval plus margin."""
    return seconds(str(mon["monitoring__probe_interval"])) + 15


def never_scraped(target: dict[str, Any]) -> bool:
    return str(target.get("lastScrape", "")).startswith("0001-")


def test_services_run(host: Any, mon: dict[str, Any]) -> None:
    for unit in ("prometheus", "prometheus-blackbox-exporter"):
        service = host.service(unit)
        assert service.is_running, f"{unit} is not running"
        assert service.is_enabled, f"{unit} is not enabled"


def test_listen_addresses(host: Any, mon: dict[str, Any]) -> None:
    """Prometheus answers where it was told to; the blackbox exporter (which fetches any URL it
    is given) listens only on its address, by default loopback."""
    assert host.socket(f"tcp://{mon['monitoring__listen_address']}").is_listening
    blackbox = str(mon["monitoring__blackbox_listen_address"])
    assert host.socket(f"tcp://{blackbox}").is_listening
    address, port = blackbox.rsplit(":", 1)
    if address.startswith("127."):
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, (
            "blackbox exporter listens on all addresses"
        )


def test_configuration_is_valid_and_loaded(host: Any, api: Callable[..., Any]) -> None:
    check = host.run("promtool check config /etc/prometheus/prometheus.yml")
    assert check.rc == 0, check.stdout + check.stderr
    assert api("/api/v1/status/runtimeinfo")["reloadConfigSuccess"] is True


def test_retention(mon: dict[str, Any], api: Callable[..., Any]) -> None:
    """Prometheus keeps what it was told to (it prints durations and sizes its own way: 35d as
    5w, 1GB as 1GiB), and at least the 30 days the availability is computed over."""
    flags = api("/api/v1/status/flags")
    kept = seconds(flags["storage.tsdb.retention.time"])
    assert kept == seconds(str(mon["monitoring__retention_time"]))
    assert kept >= seconds(AVAILABILITY_WINDOW)
    assert size_bytes(flags["storage.tsdb.retention.size"]) == size_bytes(
        str(mon["monitoring__retention_size"] or "0B")
    )


def test_every_node_target_is_listed(
    host: Any, mon: dict[str, Any], api: Callable[..., Any]
) -> None:
    """Every host of the inventory is a node target, and each is listed where it is scraped."""
    targets = mon["monitoring__node_targets"]
    everyone = set(inventory_vars(host).get("groups", {}).get("all", []))
    assert everyone, "the inventory lists no host"
    assert {t["name"] for t in targets} == everyone, "node targets are not the inventory's hosts"
    listed = {
        t["labels"].get("host"): t["labels"].get("instance") for t in active_targets(api, "node")
    }
    for target in targets:
        address = f"{target['address']}:{target.get('port', 9100)}"
        assert listed.get(target["name"]) == address, (
            f"node target {target['name']} ({address}) missing; listed: {listed}"
        )


def test_every_node_target_is_up(mon: dict[str, Any], api: Callable[..., Any]) -> None:
    wanted = {t["name"] for t in mon["monitoring__node_targets"]}
    assert wanted, "no node target to scrape"

    def down() -> dict[str, str]:
        return {
            str(
                t["labels"].get("host")
            ): f"{t['health']}: {t.get('lastError') or 'not scraped yet'}"
            for t in active_targets(api, "node")
            if t["labels"].get("host") in wanted and t["health"] != "up"
        }

    still_down = poll(down, lambda d: not d)
    assert not still_down, "node exporters not up: " + "; ".join(
        f"{name}: {why}" for name, why in sorted(still_down.items())
    )


def test_every_probe_is_listed_with_its_catalogue_target(
    mon: dict[str, Any], api: Callable[..., Any]
) -> None:
    """Each probe is a target of job blackbox carrying the catalogue's service level, and the
    exporter has run it (a failed probe still answers the scrape; an unknown module does not)."""
    probes = mon["monitoring__probes"]
    if not probes:
        pytest.skip("no probes configured")

    def targets() -> dict[tuple[str, str], dict[str, Any]]:
        return {probe_key(t["labels"]): t for t in active_targets(api, "blackbox")}

    found = poll(
        targets,
        lambda ts: all(probe_key(p) in ts and not never_scraped(ts[probe_key(p)]) for p in probes),
        within=probe_settle(mon),
    )
    for p in probes:
        key = probe_key(p)
        assert key in found, f"probe {key} is not a target; listed: {sorted(found)}"
        target = found[key]
        labels = target["labels"]
        assert labels["instance"] == p["url"]
        assert labels["tier"] == p["tier"]
        assert float(labels["availability_target"]) == pytest.approx(
            float(p["availability_percent"])
        )
        assert f"module={p['module']}" in target["scrapeUrl"]
        assert not never_scraped(target), f"probe {key} has not run"
        assert target["health"] == "up", (
            f"blackbox exporter did not answer for {key}: {target.get('lastError')}"
        )


def test_probe_results_carry_the_catalogue_target(
    mon: dict[str, Any], api: Callable[..., Any]
) -> None:
    probes = mon["monitoring__probes"]
    if not probes:
        pytest.skip("no probes configured")

    def series() -> dict[tuple[str, str], dict[str, Any]]:
        result = api("/api/v1/query", query='probe_success{job="blackbox"}')["result"]
        return {probe_key(s["metric"]): s["metric"] for s in result}

    found = poll(series, lambda s: all(probe_key(p) in s for p in probes), probe_settle(mon))
    for p in probes:
        key = probe_key(p)
        assert key in found, f"no probe_success for {key}"
        assert float(found[key]["availability_target"]) == pytest.approx(
            float(p["availability_percent"])
        )
        assert found[key]["tier"] == p["tier"]


def test_availability_rules_are_loaded(api: Callable[..., Any]) -> None:
    rules = [r for g in api("/api/v1/rules")["groups"] for r in g["rules"]]
    records = {r["name"] for r in rules if r["type"] == "recording"}
    alerts = {r["name"] for r in rules if r["type"] == "alerting"}
    assert AVAILABILITY_RECORD in records
    assert TARGET_RECORD in records
    assert set(ALERTS) <= alerts
    availability = next(r for r in rules if r["name"] == AVAILABILITY_RECORD)
    assert (
        "avg_over_time(probe_success" in availability["query"] and "[30d]" in availability["query"]
    )
    bad = {r["name"]: r.get("lastError") for r in rules if r.get("health") == "err"}
    assert not bad, f"rules failing to evaluate: {bad}"


def test_availability_targets_are_the_catalogue_s(
    mon: dict[str, Any], api: Callable[..., Any]
) -> None:
    """The series AvailabilityBelowTarget compares against: availability_percent / 100 per probe."""
    probes = mon["monitoring__probes"]
    if not probes:
        pytest.skip("no probes configured")

    def series() -> dict[tuple[str, str], float]:
        result = api("/api/v1/query", query=TARGET_RECORD)["result"]
        return {probe_key(s["metric"]): float(s["value"][1]) for s in result}

    found = poll(series, lambda s: all(probe_key(p) in s for p in probes))
    for p in probes:
        assert found.get(probe_key(p)) == pytest.approx(float(p["availability_percent"]) / 100)


def test_probes_succeed(host: Any, mon: dict[str, Any], api: Callable[..., Any]) -> None:
    """Every endpoint answers 2xx to curl from this host (IPv4, TLS verified against the system
    CA store, redirects followed: what the modules do), and its probe succeeds."""
    probes = mon["monitoring__probes"]
    if not probes:
        pytest.skip("no probes configured")
    def unanswered() -> list[str]:
        silent = []
        for p in probes:
            check = host.run(shlex.join(["curl", "-4", "-sS", "-L", "-o", "/dev/null",
                                         "--max-time", "5", "-w", "%{http_code}", p["url"]]))
            if not (check.rc == 0 and check.stdout.strip().startswith("2")):
                silent.append(f"{p['municipality']}/{p['service']} ({p['url']}: "
                              f"{check.stdout.strip() or '-'} {check.stderr.strip()[:120]})")
        return silent

    # As the probes: an endpoint busy past curl's 5 s (the GIS host drawing maps for the other
    # checks) is asked again within a probe interval; one that never answers fails.
    silent = poll(unanswered, lambda s: not s, within=probe_settle(mon))
    assert not silent, "endpoints that do not answer the monitoring host: " + "; ".join(silent)

    def results() -> dict[tuple[str, str], str]:
        result = api("/api/v1/query", query='probe_success{job="blackbox"}')["result"]
        return {probe_key(s["metric"]): str(s["value"][1]) for s in result}

    # A probe that ran before its endpoint came up succeeds at the next interval.
    found = poll(results, lambda r: all(r.get(probe_key(p)) == "1" for p in probes),
                 within=probe_settle(mon))
    failing = [probe_key(p) for p in probes if found.get(probe_key(p)) != "1"]
    assert not failing, f"endpoints answer curl but their probes fail: {failing}"
