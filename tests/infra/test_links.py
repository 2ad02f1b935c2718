"""A site's broadband link delivers the bandwidth the inventory states, measured the way an
operator would: iperf3 from the site client to the centre's iperf3 server (the core router),
both directions, through the site router's shaped link. Within ±15% for links up to 1 Gbit/s.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

TOLERANCE = 0.15
MAX_MEASURED_MBPS = 1000


@pytest.fixture(scope="module")
def link(require: Any, role_vars: Any) -> dict[str, Any]:
    require("site_client")
    found = dict(role_vars("site_client")["site_client_link"])
    if not found.get("iperf3_server"):
        pytest.skip("no iperf3 server in the centre")
    return found


def _measure(host: Any, server: str, reverse: bool) -> float:
    # -O 1: leave TCP's slow start out of the figure. The server runs one test at a time and
    # needs a moment between tests: a "busy" answer is retried.
    error = ""
    for _ in range(30):
        out = host.run("iperf3 -c %s -t 4 -O 1 -J" + (" -R" if reverse else ""), server)
        data = json.loads(out.stdout or "{}")
        error = str(data.get("error", "")) or (out.stderr if out.rc else "")
        if not error:
            return float(data["end"]["sum_received"]["bits_per_second"]) / 1e6
        if "busy" not in error:
            break
        time.sleep(2)
    raise AssertionError(f"iperf3 to {server}: {error}")


# One iperf3 server serves one test at a time: every link check runs on one xdist worker.
@pytest.mark.xdist_group("iperf3")
@pytest.mark.parametrize("direction", ["down", "up"])
def test_the_link_delivers_its_bandwidth(host: Any, link: dict[str, Any], direction: str) -> None:
    stated = int(link[f"{direction}_mbps"])
    if stated > MAX_MEASURED_MBPS:
        pytest.skip(f"{stated} Mbit/s: beyond what the lab measures reliably")
    measured = _measure(host, link["iperf3_server"], reverse=direction == "down")
    assert abs(measured - stated) <= TOLERANCE * stated, (
        f"{direction}: measured {measured:.1f} Mbit/s, the inventory says {stated} (±15%)")
