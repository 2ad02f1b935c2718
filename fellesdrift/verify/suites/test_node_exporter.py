"""What the role ``node_exporter`` promises on every host: Prometheus can scrape
``http://<management address>:9100/metrics``, and every enabled collector works.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
from conftest import inventory_vars, role_vars_for


@pytest.fixture(scope="module")
def port(host: Any) -> int:
    return int(role_vars_for(host, "node_exporter")["node_exporter__port"])


@pytest.fixture(scope="module")
def metrics_url(host: Any, port: int) -> str:
    """Where Prometheus scrapes this host: its management address (the inventory's
    ansible_host), else the address the exporter listens on."""
    address = inventory_vars(host).get("ansible_host")
    if not address:
        listening = [
            s
            for s in host.socket.get_listening_sockets()
            if s.startswith("tcp://") and s.endswith(f":{port}")
        ]
        assert listening, f"nothing listens on TCP {port}"
        address = listening[0][len("tcp://") :].rsplit(":", 1)[0]
        address = "127.0.0.1" if address in ("0.0.0.0", "::") else address
    host_part = f"[{address}]" if ":" in str(address) else str(address)
    return f"http://{host_part}:{port}/metrics"


@pytest.fixture(scope="module")
def metrics(host: Any, metrics_url: str) -> str:
    result = host.run(f"curl -sf --max-time 10 {shlex.quote(metrics_url)}")
    assert result.rc == 0, f"{metrics_url} does not answer (curl exit {result.rc})"
    return str(result.stdout)


def test_node_exporter_is_running_and_enabled(host: Any) -> None:
    service = host.service("prometheus-node-exporter")
    assert service.is_running
    assert service.is_enabled


def test_listens_on_the_management_address(host: Any, port: int) -> None:
    address = inventory_vars(host).get("ansible_host")
    if not address:
        pytest.skip("no inventory: the management address is unknown")
    listening = {s for s in host.socket.get_listening_sockets() if s.endswith(f":{port}")}
    assert listening & {f"tcp://{address}:{port}", f"tcp://0.0.0.0:{port}", f"tcp://:::{port}"}, (
        f"TCP {port} is not open on {address}: {sorted(listening)}"
    )


def test_metrics_answer_with_node_metrics(metrics: str) -> None:
    for family in (
        "node_uname_info",
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_network_receive_bytes_total",
        "node_load1",
    ):
        assert re.search(rf"^{family}[{{ ]", metrics, re.M), f"{family} missing"


def test_root_filesystem_is_reported(metrics: str) -> None:
    """Disk space of / is what an operator alerts on first (in a container it is an overlay)."""
    assert re.search(r'^node_filesystem_avail_bytes\{[^}]*mountpoint="/"', metrics, re.M), (
        "node_filesystem_avail_bytes of / missing"
    )


def test_every_enabled_collector_succeeds(metrics: str) -> None:
    failing = re.findall(r'^node_scrape_collector_success\{collector="([^"]+)"\} 0$', metrics, re.M)
    assert not failing, f"collectors that fail on this host (disable them): {failing}"
