#!/usr/bin/env python3
"""Benchmark: what a municipality joining costs, in a small centre and in a big one.

The design says a join costs one municipality, whatever the centre's size: `up -m SLUG`
provisions the new municipality's stack and converges, pushes and verifies its hosts and the
centre hosts rendered from it (fellesdrift/plan/affected.py), not the whole lab. This measures it.

Join mode (``--centre FOLDER ENV``, given once per centre, e.g. a centre of 3 municipalities
and one of 13): for each centre, in the same run, the lab ``ENV`` made from ``FOLDER`` must be
up already. Timed as commands (wall clock, fresh interpreter and engine, as a user runs them):

    fellesdrift new tinn --code 4026 --name Tinn --site town_hall --site school --dir FOLDER
    fellesdrift up FOLDER --env ENV -m tinn --json

Then (untimed for the goal, printed as "leave") the municipality is taken out again: its file
is removed and ``fellesdrift up FOLDER --env ENV -m tinn --destroy-municipality tinn`` destroys
its stack, so the lab is as before (``--keep`` skips this). Printed: each centre's join time,
and the ratio of the last centre's to the first's. Goals: every join ≤ 180 s, ratio ≤ 1.3.

No-op mode (``--noop FOLDER ENV``): ``fellesdrift up FOLDER --env ENV`` twice on a lab that
does not exist yet (``--down-first`` removes it first); the second has nothing to change.
Printed: both times and second / first. Goal: ≤ 1/3. With ``--converge-all``, a third `up
--converge-all` (every host converged again although nothing changed) and third / first. The
lab stays up.

Usage (as root, on a machine set up for the lab)::

    .venv/bin/python scripts/bench/join.py --centre /tmp/pl-inv pl --centre inventories lab
    .venv/bin/python scripts/bench/join.py --noop inventories lab --down-first [--converge-all]

A benchmark reports what it measured; it asserts nothing (results: docs/BENCHMARKS.md). An
`up` that fails is reported as failed, with its time; the ratio is printed only when every
join succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fellesdrift.inventory import load as inventory  # noqa: E402
from fellesdrift.provision import hosts  # noqa: E402

FELLESDRIFT = str(Path(sys.executable).parent / "fellesdrift")
JOIN_GOAL_S = 180.0
RATIO_GOAL = 1.3
NOOP_GOAL = 1 / 3


def timed(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = subprocess.run([FELLESDRIFT, *args], capture_output=True, text=True, check=False)
    return round(time.monotonic() - started, 1), proc


def _summary(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        return {"ok": False, "error": proc.stderr.strip()[-800:]}
    return data if isinstance(data, dict) else {"ok": False}


def join(folder: Path, env: str, slug: str, code: str, name: str, keep: bool
         ) -> dict[str, Any]:
    model = inventory.load([folder])
    if any(m.slug == slug for m in model.municipalities):
        raise SystemExit(f"{folder} has {slug} already: pick another --slug")
    lab_hosts = hosts.load(env)
    if not lab_hosts:
        raise SystemExit(f"lab {env} has no hosts: run `fellesdrift up {folder} --env {env}` "
                         "first")
    row: dict[str, Any] = {"folder": str(folder), "env": env,
                           "municipalities": len(model.municipalities),
                           "hosts_before": len(lab_hosts)}
    new_s, new = timed("new", slug, "--code", code, "--name", name, "--site", "town_hall",
                       "--site", "school", "--dir", str(folder))
    if new.returncode != 0:
        raise SystemExit(f"fellesdrift new failed: {new.stderr.strip()}")
    try:
        up_s, up = timed("up", str(folder), "--env", env, "-m", slug, "--json")
        result = _summary(up)
        row |= {"new_s": new_s, "up_s": up_s, "join_s": round(new_s + up_s, 1),
                "ok": up.returncode == 0 and bool(result.get("ok")),
                "failed": result.get("failed") or result.get("error"),
                "hosts_worked_on": result.get("hosts_worked_on"),
                "hosts_in_lab": result.get("hosts_in_lab")}
    finally:
        if not keep:
            (folder / f"{slug}.yaml").unlink(missing_ok=True)
            leave_s, leave = timed("up", str(folder), "--env", env, "-m", slug,
                                   "--destroy-municipality", slug, "--json")
            row |= {"leave_s": leave_s, "leave_ok": leave.returncode == 0}
    return row


def noop(folder: Path, env: str, down_first: bool, converge_all: bool) -> dict[str, Any]:
    if hosts.load(env):
        if not down_first:
            raise SystemExit(f"lab {env} exists: --down-first removes it for a first `up`")
        subprocess.run([FELLESDRIFT, "down", "--env", env], capture_output=True, check=True)
    first_s, first = timed("up", str(folder), "--env", env, "--json")
    second_s, second = timed("up", str(folder), "--env", env, "--json")
    a, b = _summary(first), _summary(second)
    found = {"folder": str(folder), "env": env, "first_s": first_s, "second_s": second_s,
             "first_ok": first.returncode == 0, "second_ok": second.returncode == 0,
             "second_changes": {"pulumi": b.get("pulumi_changes"),
                                "ansible": b.get("ansible_changed")},
             "second_hosts": b.get("hosts_worked_on"),
             "second_unchanged_hosts": len(b.get("unchanged_hosts") or []),
             "first_failed": a.get("failed") or a.get("error"),
             "second_failed": b.get("failed") or b.get("error"),
             "ratio": round(second_s / first_s, 3) if first_s else None, "goal": NOOP_GOAL}
    if converge_all:  # what the second would cost if it converged every host again
        third_s, third = timed("up", str(folder), "--env", env, "--converge-all", "--json")
        c = _summary(third)
        found |= {"converge_all_s": third_s, "converge_all_ok": third.returncode == 0,
                  "converge_all_changed": c.get("ansible_changed"),
                  "converge_all_ratio": round(third_s / first_s, 3) if first_s else None}
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--centre", nargs=2, action="append", metavar=("FOLDER", "ENV"),
                    help="an inventory folder and the lab env made from it (repeat)")
    ap.add_argument("--noop", nargs=2, metavar=("FOLDER", "ENV"),
                    help="time a first and a second (nothing to change) `up` instead")
    ap.add_argument("--down-first", action="store_true", help="--noop: remove the lab first")
    ap.add_argument("--converge-all", action="store_true",
                    help="--noop: then a third `up --converge-all` (every host converged again)")
    ap.add_argument("--slug", default="tinn")
    ap.add_argument("--code", default="4026")
    ap.add_argument("--name", default="Tinn")
    ap.add_argument("--keep", action="store_true",
                    help="leave the joined municipality in the lab and its file in FOLDER")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root: the lab needs it", file=sys.stderr)
        return 2
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    if args.noop:
        result = noop(Path(args.noop[0]), args.noop[1], args.down_first, args.converge_all)
        if args.json:
            print(json.dumps({"machine": machine, **result}, indent=2))
        else:
            first = "ok" if result["first_ok"] else "FAILED"
            second = "ok" if result["second_ok"] else "FAILED"
            print(f"first up {result['first_s']} s ({first}), second up {result['second_s']} s "
                  f"({second}, {result['second_unchanged_hosts']} of "
                  f"{result['second_hosts']} hosts unchanged, not converged); second / first = "
                  f"{result['ratio']} (goal ≤ {NOOP_GOAL:.2f})")
            if "converge_all_s" in result:
                state = "ok" if result["converge_all_ok"] else "FAILED"
                print(f"third up --converge-all {result['converge_all_s']} s ({state}); "
                      f"third / first = {result['converge_all_ratio']}")
        return 0
    if not args.centre:
        ap.error("give --centre FOLDER ENV (one per centre) or --noop FOLDER ENV")
    rows = [join(Path(folder), env, args.slug, args.code, args.name, args.keep)
            for folder, env in args.centre]
    ratio = (round(rows[-1]["join_s"] / rows[0]["join_s"], 3)
             if len(rows) > 1 and all(r["ok"] for r in rows) else None)
    if args.json:
        print(json.dumps({"machine": machine, "centres": rows, "ratio": ratio,
                          "goals": {"join_s": JOIN_GOAL_S, "ratio": RATIO_GOAL}}, indent=2))
        return 0
    for r in rows:
        state = "ok" if r["ok"] else f"FAILED ({r['failed']})"
        print(f"{r['env']}: {r['municipalities']} municipalities, {r['hosts_before']} hosts: "
              f"join {r['join_s']} s (new {r['new_s']} s + up -m {r['up_s']} s, "
              f"{r['hosts_worked_on']} of {r['hosts_in_lab']} hosts) {state}"
              + (f"; leave {r['leave_s']} s" if "leave_s" in r else ""))
    if ratio is not None:
        print(f"ratio {rows[-1]['env']} / {rows[0]['env']} = {ratio} (goal ≤ {RATIO_GOAL}; "
              f"each join ≤ {JOIN_GOAL_S:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
