#!/usr/bin/env python3
"""Benchmark: a no-op converge of an existing lab, the project's Ansible settings against
Ansible's defaults, on the same hosts, in the same run.

"No-op": the lab has converged already, so both runs apply every role and change nothing;
what is measured is what idempotent runs cost (the second converge of every `make up`).

- project: ansible.cfg (pipelining, SSH multiplexing with ControlPersist, forks sized to the
  host count, fact cache, gathering once per run), exactly as `fellesdrift converge` runs it;
- defaults: an empty ansible.cfg (Ansible's own defaults: no pipelining, forks 5), the same
  inventory (host, user, key, known_hosts) and roles path.

Both go through ansible-runner with the same playbook; host-tasks are counted from events
(every task result on every host). Prints seconds per host-task of each and the ratio
defaults / project. Goals: project ≤ 0.15 s per host-task, ratio ≥ 3. Runs alternate, after
--warmup untimed runs of each (default 1), and the medians are compared. Asserts nothing.

    .venv/bin/python scripts/bench/converge_noop.py [--env lab] [--rounds 1] [--json] [paths]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fellesdrift.converge import run as converge  # noqa: E402
from fellesdrift.inventory import load as inventory  # noqa: E402
from fellesdrift.paths import INVENTORIES, lab_dir  # noqa: E402
from fellesdrift.pipeline import job as pipeline  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[INVENTORIES])
    parser.add_argument("--env", default="lab", help="an existing, converged lab")
    parser.add_argument("--rounds", type=int, default=1, help="timed runs of each")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each first")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    model = inventory.load(args.paths)
    hosts, inv = pipeline.inventory_for(model, args.env)
    if not hosts:
        print(f"lab {args.env!r} has no hosts; run `fellesdrift up --env {args.env}` first",
              file=sys.stderr)
        return 2
    defaults_dir = Path(tempfile.mkdtemp(prefix="fd-bench-"))
    (defaults_dir / "ansible.cfg").write_text(
        f"[defaults]\nroles_path = {ROOT / 'roles'}\n")
    defaults = {"ANSIBLE_CONFIG": str(defaults_dir / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}

    def one(kind: str) -> tuple[float, int, int]:
        started = time.perf_counter()
        if kind == "project":
            result = converge.run(args.env, inv, len(hosts))
        else:
            result = converge.run(args.env, inv, len(hosts), settings=defaults, forks=5)
        seconds = time.perf_counter() - started
        if not result.ok:
            raise SystemExit(f"{kind} run failed: {result.failures[:3]}")
        print(f"  {kind}: {seconds:.1f} s, {result.host_tasks} host-tasks, "
              f"changed {result.changed}", file=sys.stderr)
        return seconds, result.host_tasks, result.changed

    print(f"{len(hosts)} hosts of lab {args.env}", file=sys.stderr)
    for _ in range(args.warmup):
        one("project")
        one("defaults")
    timings: dict[str, list[float]] = {"project": [], "defaults": []}
    counts: dict[str, int] = {}
    for _ in range(args.rounds):
        for kind in ("defaults", "project"):
            seconds, count, _changed = one(kind)
            timings[kind].append(seconds)
            counts[kind] = count
    median = {k: statistics.median(v) for k, v in timings.items()}
    per = {k: median[k] / max(1, counts[k]) for k in median}
    ratio = median["defaults"] / median["project"]
    result = {"hosts": len(hosts), "host_tasks": counts, "seconds": median,
              "seconds_per_host_task": per, "ratio": ratio,
              "goals": {"per_host_task_max": 0.15, "ratio_min": 3.0},
              "met": per["project"] <= 0.15 and ratio >= 3.0,
              "artifacts": str(lab_dir(args.env) / "ansible")}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"project:  {median['project']:.1f} s for {counts['project']} host-tasks = "
              f"{per['project']:.3f} s per host-task (goal ≤ 0.15)")
        print(f"defaults: {median['defaults']:.1f} s for {counts['defaults']} host-tasks = "
              f"{per['defaults']:.3f} s per host-task")
        print(f"ratio defaults / project: {ratio:.2f}× (goal ≥ 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
