#!/usr/bin/env python3
"""Benchmark: the same no-op converge of an existing lab run all here, and split over this
machine and one execution node (ansible-runner's ``transmit | worker | process`` over SSH,
fellesdrift/converge/nodes.py), in the same run.

"No-op": the lab has converged already, so both runs apply every role and change nothing.
The lab must have a centre host of function ``execution_node`` (a shared host of role
``execution_node`` in its centre file); ``--serve`` names the municipalities it converges
(default: every municipality but the first, so both shards have hosts). On 2 cores little is
gained from the split (both shards share the same CPUs); what the ratio shows is the
protocol's overhead: the job's payload, the node's own Ansible start, the events streamed back.
Goal: split / local ≤ 1.15. Runs alternate, after --warmup untimed runs of each (default 1),
and the medians are compared. Asserts nothing.

    .venv/bin/python scripts/bench/execution_node.py [--env x1] [--rounds 1] [--serve tokke]
        [--json] [paths]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fellesdrift.converge import nodes  # noqa: E402
from fellesdrift.converge import run as converge  # noqa: E402
from fellesdrift.environment import ExecutionNode  # noqa: E402
from fellesdrift.paths import lab_dir  # noqa: E402
from fellesdrift.plan.functions import function_of, municipality_of  # noqa: E402
from fellesdrift.provision import hosts as lab  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="lab", help="an existing, converged lab with a node")
    parser.add_argument("--rounds", type=int, default=1, help="timed runs of each")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each first")
    parser.add_argument("--serve", action="append", default=[],
                        help="a municipality the node converges (repeatable)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    hosts = lab.load(args.env)
    node_host = next((h for h in hosts if function_of(h) == "execution_node"), None)
    if node_host is None:
        print(f"lab {args.env!r} has no execution node; add a shared host of role "
              "execution_node to its centre file and `fellesdrift up -m core`", file=sys.stderr)
        return 2
    slugs = sorted({m for h in hosts if (m := municipality_of(h))})
    served = tuple(args.serve or slugs[1:])
    node = ExecutionNode(node_host.name, node_host.address, served, node_host.ssh_user,
                         "--serve")
    inv = lab_dir(args.env) / "inventory.yml"
    shards = nodes.split(nodes.inventory_groups(inv), [node])

    def one(kind: str) -> tuple[float, int]:
        started = time.perf_counter()
        result = converge.run(args.env, inv, len(hosts), nodes=(node,) if kind == "split"
                              else ())
        seconds = time.perf_counter() - started
        if not result.ok:
            raise SystemExit(f"{kind} run failed: {result.failures[:3]}")
        print(f"  {kind}: {seconds:.1f} s, {result.host_tasks} host-tasks, "
              f"changed {result.changed}", file=sys.stderr)
        return seconds, result.host_tasks

    print(f"{len(hosts)} hosts of lab {args.env}; shards: "
          + ", ".join(f"{s.name} {len(s.hosts)}" for s in shards), file=sys.stderr)
    for _ in range(args.warmup):
        one("local")
        one("split")
    timings: dict[str, list[float]] = {"local": [], "split": []}
    counts: dict[str, int] = {}
    for _ in range(args.rounds):
        for kind in ("split", "local"):
            seconds, count = one(kind)
            timings[kind].append(seconds)
            counts[kind] = count
    median = {k: statistics.median(v) for k, v in timings.items()}
    sizes = {s.name: len(s.hosts) for s in shards}
    ratio = median["split"] / median["local"]
    out = {"hosts": len(hosts), "node": node.name, "served": list(served),
           "shards": sizes, "host_tasks": counts,
           "seconds": median, "ratio": ratio, "goal": {"ratio_max": 1.15},
           "met": ratio <= 1.15}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"local: {median['local']:.1f} s for {counts['local']} host-tasks")
        print(f"split: {median['split']:.1f} s for {counts['split']} host-tasks "
              f"({', '.join(f'{k} {v} hosts' for k, v in sizes.items())})")
        print(f"ratio split / local: {ratio:.2f}× (goal ≤ 1.15)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
