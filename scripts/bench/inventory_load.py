#!/usr/bin/env python3
"""Benchmark: load and validate a large generated inventory; compare with ansible-inventory.

Generates N municipalities × S sites (default 400 × 25 = 10,000 sites) in the schema_version 2
format, plus an equivalent Ansible YAML inventory (one file per municipality: a group with the
municipality's fields as group vars and one host per site with the site's fields as host vars).
Then, in one run:

- `fellesdrift` in-process: ``inventory.load`` of the folder (read, parse, validate, every
  cross-file rule), best of --repeat runs, with a breakdown by phase;
- `fellesdrift validate` as a command (a fresh interpreter, as a user or CI runs it);
- `ansible-inventory --list` on the Ansible inventory, best of --ansible-repeat runs;

and prints both and their ratio. Usage::

    .venv/bin/python scripts/bench/inventory_load.py [--municipalities 400] [--sites 25] [--json]

A benchmark reports what it measured; it asserts nothing (see docs/BENCHMARKS.md for results).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fellesdrift.inventory import load as inventory  # noqa: E402
from fellesdrift.inventory import rules, safeyaml  # noqa: E402
from fellesdrift.inventory.model import Municipality, OperationsCentre  # noqa: E402

BIN = Path(sys.executable).parent
KINDS = ["town_hall", "school", "kindergarten", "care_home", "health_centre", "library", "depot",
         "fire_station", "culture_house", "office"]
PROVIDERS = 8  # 10,000 sites need several handoffs: each carries at most 4,093 VLANs

ADDRESS_PLAN = """\
address_plan:
  aggregates:
    - 10.0.0.0/8
  centre_ranges:
    - name: servers
      prefix: 10.255.0.0/24
    - name: backbone
      prefix: 10.255.1.0/24
    - name: links  # one /30 per /24 of the aggregate: 65,536 × 4 addresses
      prefix: 10.248.0.0/14
"""

CATALOGUE = """\
service_levels:
  - id: standard
    name: Standard
    support_hours: weekdays 08-16
    response_hours: 4
    availability_percent: 99.5
services:
  - id: drift
    name: Drift og brukarstøtte
    billing: per_user
    prices:
      standard: 130.00
  - id: breiband
    name: Breiband og ruter per bygg
    billing: per_site
    prices:
      standard: 1950.00
providers:
""" + "".join(f"  - id: p{i}\n    name: Provider {i}\n    handoff: trunk {i}\n"
              for i in range(PROVIDERS))


def centre_text(address_plan: str = ADDRESS_PLAN) -> str:
    """The centre file: this address plan (YAML, from ``address_plan:``) and the catalogue every
    generated municipality subscribes from (services drift and breiband, providers p0…p7)."""
    return "schema_version: 2\nname: Benchmark centre\n" + address_plan + CATALOGUE


CENTRE = centre_text()


def slug_of(m: int) -> str:
    return f"kommune-{m:04d}"


def site_fields(m: int, s: int, sites: int) -> dict[str, Any]:
    n = m * sites + s
    return {
        "id": f"site{s:02d}", "name": f"Bygg {s} i kommune {m}", "kind": KINDS[s % len(KINDS)],
        "address": f"Skulevegen {s + 1}, {3000 + m % 1000} Stad", "users": 20 + s,
        "lan_prefix": f"10.{n // 256}.{n % 256}.0/24",
        "link": {"access": "fibre", "provider": f"p{m % PROVIDERS}", "down_mbps": 1000,
                 "up_mbps": 1000, "vlan": 100 + (m // PROVIDERS) * sites + s},
        "device": {"platform": "cisco_ios", "model": "C1111-4P", "serial": f"FGL{n:08d}",
                   "installed": "2023-05-02", "lease_end": "2028-05-01"},
    }


def municipality_text(m: int, sites: int) -> str:
    slug = slug_of(m)
    lines = [
        "# yaml-language-server: $schema=../schema/municipality.schema.json",
        "---", "schema_version: 2", f'code: "{1000 + m:04d}"', f"name: Kommune {m}",
        f"slug: {slug}", "contacts:", "  - name: IT-ansvarleg", "    role: it",
        f"    email: it@{slug}.kommune.no", '    phone: "+47 35 00 00 00"',
        "services:", "  - service: drift", "    tier: standard", "  - service: breiband",
        "    tier: standard", "users:", "  administration: 120", "  education: 300",
        "  health_care: 250", "  technical: 40", "  culture: 15", "sites:",
    ]
    for s in range(sites):
        f = site_fields(m, s, sites)
        lines += [f"  - id: {f['id']}", f"    name: {f['name']}", f"    kind: {f['kind']}",
                  f"    address: {f['address']}", f"    users: {f['users']}",
                  f"    lan_prefix: {f['lan_prefix']}", "    link:"]
        lines += [f"      {k}: {v}" for k, v in f["link"].items()]
        lines.append("    device:")
        lines += [f"      {k}: {v}" for k, v in f["device"].items()]
    return "\n".join(lines) + "\n"


def ansible_text(m: int, sites: int) -> str:
    """The same data as an Ansible YAML inventory: a group per municipality, a host per site."""
    slug = slug_of(m)
    group = slug.replace("-", "_")
    lines = ["---", "all:", "  children:", f"    {group}:", "      vars:",
             f'        code: "{1000 + m:04d}"', f"        name: Kommune {m}",
             f"        slug: {slug}", "        contacts:", "          - name: IT-ansvarleg",
             "            role: it", f"            email: it@{slug}.kommune.no",
             '            phone: "+47 35 00 00 00"', "        services:",
             "          - {service: drift, tier: standard}",
             "          - {service: breiband, tier: standard}",
             "        users: {administration: 120, education: 300, health_care: 250, "
             "technical: 40, culture: 15}", "      hosts:"]
    for s in range(sites):
        f = site_fields(m, s, sites)
        lines += [f"        {slug}-{f['id']}:", f"          ansible_host: "
                  f"{f['lan_prefix'].split('/')[0].rsplit('.', 1)[0]}.1",
                  f"          site_name: {f['name']}", f"          kind: {f['kind']}",
                  f"          address: {f['address']}", f"          users: {f['users']}",
                  f"          lan_prefix: {f['lan_prefix']}", "          link:"]
        lines += [f"            {k}: {v}" for k, v in f["link"].items()]
        lines.append("          device:")
        lines += [f"            {k}: {v}" for k, v in f["device"].items()]
    return "\n".join(lines) + "\n"


def write_inventory(folder: Path, municipalities: range | list[int], sites: int,
                    centre: str = CENTRE) -> Path:
    """An inventory folder: the centre file and the files of these municipalities (numbers),
    each with ``sites`` sites. The folder is created; it must not exist yet."""
    folder.mkdir()
    (folder / "operations-centre.yaml").write_text(centre, encoding="utf-8")
    for m in municipalities:
        (folder / f"{slug_of(m)}.yaml").write_text(municipality_text(m, sites), encoding="utf-8")
    return folder


def generate(where: Path, municipalities: int, sites: int) -> tuple[Path, Path]:
    ours = write_inventory(where / "inventories", range(municipalities), sites)
    theirs = where / "ansible"
    theirs.mkdir()
    for m in range(municipalities):
        (theirs / f"{slug_of(m)}.yml").write_text(ansible_text(m, sites), encoding="utf-8")
    return ours, theirs


def phases(folder: Path) -> dict[str, float]:
    """Where the time goes, by phase (one run, outside the timed runs)."""
    files = sorted(folder.glob("kommune-*.yaml"))
    collecting = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        texts = [f.read_bytes().decode("utf-8") for f in files]
        t1 = time.perf_counter()
        docs = [safeyaml.parse(text, str(f), []) for f, text in zip(files, texts, strict=True)]
        t2 = time.perf_counter()
        models = [Municipality.model_validate(d.data) for d in docs if d is not None]
        t3 = time.perf_counter()
        pairs = [(d, m) for d, m in zip(docs, models, strict=True) if d is not None]
        for d, m in pairs:
            list(rules.municipality(d, m))
        t4 = time.perf_counter()
        centre_doc = safeyaml.read(folder / inventory.CENTRE_FILE, [])
        assert centre_doc is not None
        centre = OperationsCentre.model_validate(centre_doc.data)
        t5 = time.perf_counter()
        list(rules.across(None, centre, pairs))
        t6 = time.perf_counter()
    finally:
        if collecting:
            gc.enable()
    return {"read": t1 - t0, "parse_yaml": t2 - t1, "validate_model": t3 - t2,
            "file_rules": t4 - t3, "cross_file_rules": t6 - t5}


def timed(command: list[str], env: dict[str, str] | None = None,
          cwd: Path | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd,
                          check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--municipalities", type=int, default=400)
    parser.add_argument("--sites", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=5, help="runs of ours (best is reported)")
    parser.add_argument("--ansible-repeat", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--keep", type=Path, help="generate into this (empty) folder and keep it")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="fellesdrift-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        ours, theirs = generate(work, args.municipalities, args.sites)
        size = sum(f.stat().st_size for f in ours.iterdir())

        runs = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            model = inventory.load([ours])
            runs.append(time.perf_counter() - started)
        sites = sum(len(m.sites) for m in model.municipalities)
        assert sites == args.municipalities * args.sites
        breakdown = phases(ours)

        command, _ = timed([str(BIN / "fellesdrift"), "validate", str(ours)])
        # Run from the work folder, so no ansible.cfg of the checkout applies; only the YAML
        # inventory plugin is enabled, as an inventory of this shape needs.
        env = {**os.environ, "ANSIBLE_INVENTORY_ENABLED": "yaml",
               "ANSIBLE_LOCALHOST_WARNING": "False", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False"}
        env.pop("ANSIBLE_CONFIG", None)
        ansible_runs = []
        for _ in range(args.ansible_repeat):
            seconds, listing = timed([str(BIN / "ansible-inventory"), "-i", str(theirs),
                                      "--list"], env, cwd=work)
            ansible_runs.append(seconds)
        hosts = len(json.loads(listing)["_meta"]["hostvars"])
        assert hosts == sites, (hosts, sites)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    ours_best, ansible_best = min(runs), min(ansible_runs)
    result = {
        "municipalities": args.municipalities, "sites": sites, "bytes": size,
        "fellesdrift_load_seconds": round(ours_best, 3),
        "fellesdrift_load_median_seconds": round(statistics.median(runs), 3),
        "fellesdrift_validate_command_seconds": round(command, 3),
        "ansible_inventory_list_seconds": round(ansible_best, 3),
        "ratio": round(ansible_best / ours_best, 1),
        "ratio_commands": round(ansible_best / command, 1),
        "phases_seconds": {k: round(v, 3) for k, v in breakdown.items()},
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "libyaml": safeyaml.yaml.__with_libyaml__,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"inventory: {args.municipalities} municipalities × {args.sites} sites = {sites} sites, "
          f"{size / 1e6:.1f} MB of YAML (libyaml: {result['libyaml']}, {os.cpu_count()} CPUs)")
    print(f"fellesdrift inventory.load (in process, best of {args.repeat}): "
          f"{ours_best:.3f} s (median {statistics.median(runs):.3f} s)")
    print("  " + ", ".join(f"{k} {v:.3f} s" for k, v in breakdown.items()))
    print(f"fellesdrift validate (command, fresh interpreter): {command:.3f} s")
    print(f"ansible-inventory --list (best of {args.ansible_repeat}): {ansible_best:.3f} s")
    print(f"ratio: ansible-inventory / fellesdrift = {result['ratio']}× in process, "
          f"{result['ratio_commands']}× as commands")


if __name__ == "__main__":
    main()
