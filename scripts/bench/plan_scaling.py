#!/usr/bin/env python3
"""Benchmark: what the plan of one changed municipality costs in a big centre and alone.

The design says a change costs what that municipality costs, whatever the centre's size (one
stack per municipality; the others are not previewed). This measures it. Generated with the
generator of ``inventory_load.py``, in a temporary folder:

- A: a centre and N municipalities × S sites (default 400 × 25 = 10,000 sites);
- B: the same centre and one of those municipalities alone (the identical file).

The municipality's stack reads the core through a StackReference, so the core stack of the lab
environment ``bench`` is applied once first (the core router container and the backbone
network: the generated centre has no shared hosts). Then, in the same run and alternating
(after one untimed warm-up each), ``fellesdrift plan A --env bench -m <slug> --json`` and the
same for B are timed as commands (wall clock, fresh interpreter and engine, as CI runs them),
and the medians and their ratio A / B are printed. Goal: ratio ≤ 1.5. The municipality has no
stack applied, so its plan is every resource of its 25 sites to create; both plans must say
the same, and the bench stops if they do not.

At the end, always (also on an error or Ctrl-C): ``fellesdrift down --env bench`` (destroys
the bench stacks; removes the core container, the network, the unreachable route, the keys)
and the temporary folder. Usage::

    .venv/bin/python scripts/bench/plan_scaling.py [--municipalities 400] [--sites 25]
        [--rounds 3] [--json]

Run it as root on a machine set up for the lab (``make up`` or ``make setup`` has run). It uses
the lab environment ``bench`` only and refuses to start while another run of it holds its lock.
A benchmark reports what it measured; it asserts nothing (see docs/BENCHMARKS.md for results).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inventory_load as generator  # noqa: E402  (puts the checkout on sys.path)

from fellesdrift import environment  # noqa: E402
from fellesdrift.inventory import load as inventory  # noqa: E402
from fellesdrift.paths import ROOT  # noqa: E402
from fellesdrift.pipeline import job as pipeline  # noqa: E402
from fellesdrift.provision import stacks as provision  # noqa: E402

ENV = "bench"
FELLESDRIFT = str(Path(sys.executable).parent / "fellesdrift")
GOAL = 1.5

# The lab routes the aggregates unreachable while it exists, so they must not cover this
# machine's uplink or resolvers; 10.0.0.0/10 also stays clear of the sample lab (10.100.0.0/14),
# the end-to-end lab (10.104.0.0/16) and Podman's own default ranges (10.88.0.0/16, 10.89.x).
# The generator numbers site LANs from 10.0.0.0/24 up (10,000 sites end at 10.39.15.0/24); the
# links range holds one /30 per /24 of the aggregate (16,384 × 4 addresses: a /16).
ADDRESS_PLAN = """\
address_plan:
  aggregates:
    - 10.0.0.0/10
  centre_ranges:
    - name: backbone
      prefix: 10.62.255.0/24
    - name: links
      prefix: 10.63.0.0/16
"""
MAX_SITES = 62 * 256  # site LANs 10.0.0.0/24 … 10.61.255.0/24; the centre's ranges follow


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """One run of this bench at a time: they would share the lab environment `bench`."""
    path = ROOT / ".lab" / f"{ENV}-plan-scaling.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another plan_scaling run holds {path}; wait for it") from None
        yield


def generate(work: Path, municipalities: int, sites: int, chosen: int) -> tuple[Path, Path]:
    centre = generator.centre_text(ADDRESS_PLAN)
    big = generator.write_inventory(work / "centre", range(municipalities), sites, centre)
    alone = generator.write_inventory(work / "alone", [chosen], sites, centre)
    name = f"{generator.slug_of(chosen)}.yaml"
    assert (big / name).read_bytes() == (alone / name).read_bytes()
    return big, alone


def validate(folder: Path) -> float:
    """`fellesdrift validate` of a folder (also a figure: what loading it costs a command)."""
    started = time.perf_counter()
    proc = subprocess.run([FELLESDRIFT, "validate", str(folder)], capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"the generated inventory {folder} is not valid:\n"
                         f"{(proc.stdout + proc.stderr)[-3000:]}")
    return seconds


def apply_core(folder: Path) -> dict[str, int]:
    """Apply `bench.core` once, from Python: `fellesdrift up -m` would apply the municipality."""
    model = inventory.load([folder])
    settings = pipeline.stack_settings(environment.get(ENV, [folder]), model,
                                       say=lambda line: log(f"  {line}"))
    result = provision.many(lambda t: provision.up(t, folder, settings), [provision.CORE], ENV)[0]
    if result.error:
        raise SystemExit(f"applying {result.stack} failed: {result.error}")
    return result.changes


def plan(folder: Path, slug: str) -> tuple[float, dict[str, Any]]:
    """`fellesdrift plan FOLDER --env bench -m SLUG --json`, timed as a command."""
    command = [FELLESDRIFT, "plan", str(folder), "--env", ENV, "-m", slug, "--json"]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    try:
        result: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        result = {"ok": False}
    if proc.returncode != 0 or not result.get("ok"):
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n"
                         f"{(proc.stdout + proc.stderr)[-3000:]}")
    return seconds, result


def down() -> str:
    proc = subprocess.run([FELLESDRIFT, "down", "--env", ENV, "--json"], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        return (f"FAILED ({proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}\n"
                f"clean up with `fellesdrift recover --env {ENV}`, then "
                f"`fellesdrift down --env {ENV}`")
    with contextlib.suppress(ValueError):
        result = json.loads(proc.stdout)
        return (f"destroyed {', '.join(result['stacks']) or 'no stacks'}; removed "
                + ", ".join(f"{n} {what}" for what, n in result["removed"].items()))
    return proc.stdout.strip()


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    chosen = args.municipalities // 2
    slug = generator.slug_of(chosen)
    log(f"generating {args.municipalities} municipalities × {args.sites} sites into {work} …")
    big, alone = generate(work, args.municipalities, args.sites, chosen)
    validate_big, validate_alone = validate(big), validate(alone)

    log(f"applying {provision.stack_name(ENV, provision.CORE)} (the core router) …")
    core = apply_core(alone)

    plans: dict[str, tuple[Path, list[float]]] = {"centre": (big, []), "alone": (alone, [])}
    summaries: dict[str, dict[str, Any]] = {}
    for which, (folder, _) in plans.items():  # warm-up: makes the stack, warms caches
        seconds, summaries[which] = plan(folder, slug)
        log(f"warm-up plan {which}: {seconds:.2f} s")
    if summaries["centre"]["stacks"] != summaries["alone"]["stacks"]:
        raise SystemExit(f"the two plans differ: {summaries}")
    for r in range(args.rounds):
        order = ["centre", "alone"] if r % 2 == 0 else ["alone", "centre"]
        for which in order:
            folder, times = plans[which]
            seconds, _ = plan(folder, slug)
            times.append(seconds)
            log(f"round {r + 1}/{args.rounds} plan {which}: {seconds:.2f} s")

    centre_median = statistics.median(plans["centre"][1])
    alone_median = statistics.median(plans["alone"][1])
    ratio = centre_median / alone_median
    stack = summaries["alone"]["stacks"][0]
    return {
        "municipalities": args.municipalities, "sites_per_municipality": args.sites,
        "sites": args.municipalities * args.sites, "municipality": slug,
        "env": ENV, "core_changes": core, "plan_changes": stack["changes"],
        "rounds": args.rounds,
        "plan_centre_seconds": [round(s, 3) for s in plans["centre"][1]],
        "plan_alone_seconds": [round(s, 3) for s in plans["alone"][1]],
        "plan_centre_median_seconds": round(centre_median, 3),
        "plan_alone_median_seconds": round(alone_median, 3),
        "ratio": round(ratio, 2), "goal": GOAL, "goal_met": ratio <= GOAL,
        "validate_centre_seconds": round(validate_big, 3),
        "validate_alone_seconds": round(validate_alone, 3),
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def report(result: dict[str, Any]) -> None:
    n, s = result["municipalities"], result["sites_per_municipality"]
    changes = ", ".join(f"{k} {v}" for k, v in sorted(result["plan_changes"].items()))
    print(f"centre: {n} municipalities × {s} sites = {result['sites']} sites; alone: "
          f"{result['municipality']} only ({s} sites, the identical file) "
          f"({result['cpus']} CPUs, load average {result['load_average'][0]})")
    print(f"plan {ENV}.{result['municipality']} ({changes}), {result['rounds']} rounds "
          "alternating, median:")
    for label, which in ((f"in the centre of {n}:", "centre"), ("alone:", "alone")):
        runs = ", ".join(f"{x:.2f}" for x in result[f"plan_{which}_seconds"])
        print(f"  {label:<{len(str(n)) + 19}} "
              f"{result[f'plan_{which}_median_seconds']:.2f} s  ({runs})")
    print(f"  (validate as a command: {result['validate_centre_seconds']:.2f} s vs "
          f"{result['validate_alone_seconds']:.2f} s)")
    print(f"ratio centre / alone = {result['ratio']:.2f} (goal ≤ {GOAL}: "
          f"{'met' if result['goal_met'] else 'NOT met'})")


def interrupt(signum: int, frame: object) -> None:
    """A TERM stops the run as Ctrl-C does, so the lab is still removed."""
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Applies the core of the lab environment `bench` and always removes it "
        "(`fellesdrift down --env bench`). Progress goes to stderr.")
    parser.add_argument("--municipalities", type=int, default=400,
                        help="municipalities in the big centre (default 400)")
    parser.add_argument("--sites", type=int, default=25,
                        help="sites per municipality (default 25)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed plans of each inventory, alternating (default 3)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.municipalities < 1 or args.sites < 1 or args.rounds < 1:
        parser.error("--municipalities, --sites and --rounds must be at least 1")
    if args.municipalities * args.sites > MAX_SITES:
        parser.error(f"at most {MAX_SITES} sites fit the bench's address plan (10.0.0.0/10)")
    if os.geteuid() != 0:
        parser.error("the lab needs root (Podman networks, routes)")

    signal.signal(signal.SIGTERM, interrupt)
    with exclusive():
        work = Path(tempfile.mkdtemp(prefix="fellesdrift-plan-bench-"))
        try:
            result = measure(args, work)
        except KeyboardInterrupt:
            log("interrupted; nothing measured")
            raise SystemExit(130) from None
        finally:
            log(f"fellesdrift down --env {ENV} …")
            log(f"  {down()}")
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)


if __name__ == "__main__":
    main()
