#!/usr/bin/env python3
"""Benchmark: sweep every router of a lab (connect through netops/vtysh + show running-config)
with N workers and with 1 worker, in the same run; print connect p50/p95 and the speed-up.

    .venv/bin/python scripts/bench/network_sweep.py --env dev --workers 8 --rounds 3

Uses an existing lab (`fellesdrift up` made it); reads only, changes nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from fellesdrift.access import keys
from fellesdrift.network import frr, push
from fellesdrift.provision import hosts as lab_hosts


def sweep(routers: list[lab_hosts.Host], key: str, known: str, workers: int
          ) -> tuple[float, list[float]]:
    def one(h: lab_hosts.Host) -> float:
        started = time.perf_counter()
        conn = frr.connect(h.address, "netops", key, known)
        connected = time.perf_counter() - started
        conn.running_config()
        conn.disconnect()
        return connected
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        connects = list(pool.map(one, routers))
    return time.perf_counter() - started, connects


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="lab", help="the lab environment (default: lab)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    routers = push.routers(lab_hosts.load(args.env))
    if not routers:
        raise SystemExit(f"lab {args.env} has no routers")
    key, _ = keys.lab_keypair(args.env)
    known = str(keys.known_hosts_path(args.env))
    results: dict[int, tuple[list[float], list[float]]] = {}
    for workers in (1, args.workers):
        walls, connects = [], []
        for _ in range(args.rounds):
            wall, c = sweep(routers, str(key), known, workers)
            walls.append(wall)
            connects += c
        results[workers] = (walls, connects)
    print(f"{len(routers)} routers, {args.rounds} round(s) each")
    for workers, (walls, connects) in results.items():
        print(f"  {workers:>2} worker(s): sweep median {statistics.median(walls):.2f} s; connect "
              f"p50 {pct(connects, 0.5):.2f} s, p95 {pct(connects, 0.95):.2f} s")
    speedup = statistics.median(results[1][0]) / statistics.median(results[args.workers][0])
    print(f"  speed-up with {args.workers} workers: {speedup:.2f}x")


if __name__ == "__main__":
    main()
