"""Issue 12's done-when on the fixture lab: a change reviewed as one plan, applied as planned.

In a copy of the lab's inventories, Vinje gets a new site (skule) and its town hall's link goes
from 1000/1000 to 500/500 Mbit/s. `plan -m vinje --out` shows Pulumi's creates and the shaping
update, the converge diffs on the centre hosts (the finance server's pg_hba line, the DNS zone,
the monitoring targets), the new router's commands and the invoice delta; an inventory edit
after planning makes `up --plan` refuse; `up --plan` applies it and its comparison with the plan
finds no difference. The lab is put back to the fixture at the end (`up -m vinje` on the
inventories it was made from), as the later modules (test_secrets.py … test_up.py) expect.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from plan_change import changed_copy

from fellesdrift import environment
from fellesdrift.access import credentials
from fellesdrift.change import audit
from fellesdrift.inventory import load as inventory
from fellesdrift.plan import naming, topology
from fellesdrift.provision import hosts as lab_hosts

pytestmark = pytest.mark.lab


def fellesdrift(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fellesdrift", *map(str, args)],
                          capture_output=True, text=True, check=False, timeout=2400)


@dataclass
class Change:
    env: str
    original: Path  # the inventories the lab was made from
    folder: Path  # the copy with the change
    plan_file: Path
    markdown: Path
    plan: dict[str, Any]
    new_lan: str
    applied: bool = False


@pytest.fixture(scope="module")
def change(pipeline_lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Change]:
    env = pipeline_lab.env
    original = Path(environment.get(env).inventory[0])  # what the lab's `up` was given
    root = tmp_path_factory.mktemp("plan-review")
    lan = changed_copy(original, root / "inventories")
    plan_file, markdown = root / "plan.json", root / "plan.md"
    proc = fellesdrift("plan", root / "inventories", "--env", env, "-m", "vinje", "--out",
                       plan_file, "--markdown", markdown, "--json")
    assert proc.returncode == 0, proc.stderr[-6000:]
    found = Change(env, original, root / "inventories", plan_file, markdown,
                   json.loads(proc.stdout), lan)
    yield found
    if found.applied:  # put the lab back as the fixture made it, for the later modules
        back = fellesdrift("up", original, "--env", env, "-m", "vinje", "--json")
        assert back.returncode == 0, back.stderr[-6000:] + back.stdout[-3000:]
        assert not any(h.name == naming.site_router("vinje", "skule")
                       for h in lab_hosts.load(env))


def steps(plan: dict[str, Any], stack: str) -> dict[str, dict[str, Any]]:
    found = next(s for s in plan["stacks"] if s["stack"] == stack)
    return {s["name"]: s for s in found["steps"]}


def test_the_plan_shows_the_creates_and_the_shaping_update(change: Change) -> None:
    vinje = steps(change.plan, naming.stack(change.env, "vinje"))
    for name in (naming.site_router("vinje", "skule"), naming.site_client("vinje", "skule")):
        assert vinje[name]["op"] == "create", vinje.get(name)
    shaping = vinje[f"{naming.site_link('vinje', 'radhus')}-shaping"]
    assert shaping["op"] == "update"
    assert {(p["key"], p["before"], p["after"]) for p in shaping["properties"]} == {
        ("down_mbps", "1000", "500"), ("up_mbps", "1000", "500")}
    # Nothing else of the lab moves: the centre's stack and Tokke's are not touched.
    core = next(s for s in change.plan["stacks"] if s["stack"] == naming.stack(change.env,
                                                                                 "core"))
    assert core["changed"] == 0 and core["steps"] == []


def test_the_plan_checks_only_the_hosts_the_change_touches_and_shows_their_diffs(
        change: Change) -> None:
    converge = change.plan["converge"]
    assert converge["changed_municipalities"] == ["vinje"]
    checked = set(converge["checked"])
    assert {"core-router", "okonomi-01", "gis-01", "katalog", "overvaking",
            naming.site_router("vinje", "radhus"), naming.site_client("vinje", "radhus")} \
        == checked, checked  # not Tokke's hosts, not the apt proxy
    assert set(converge["new"]) == {naming.site_router("vinje", "skule"),
                                    naming.site_client("vinje", "skule")}

    def diffs(host: str) -> str:
        return "".join(t["diff"] for t in converge["hosts"][host])

    assert change.new_lan in diffs("okonomi-01")  # the new site's line in pg_hba.conf
    assert naming.site_client("vinje", "skule") in diffs("katalog")  # the DNS zone
    assert naming.site_router("vinje", "skule") in diffs("overvaking")  # monitoring targets
    assert not converge["failures"]
    assert converge["seconds"] > 0


def test_the_plan_shows_each_routers_commands(change: Change) -> None:
    routers = {r["device"]: r for r in change.plan["network"]}
    assert list(routers) == ["core-router", naming.site_router("vinje", "radhus"),
                             naming.site_router("vinje", "skule")]
    new = routers[naming.site_router("vinje", "skule")]
    assert new["base"] == "new" and f"network {change.new_lan}" in new["commands"]
    radhus = routers[naming.site_router("vinje", "radhus")]
    assert radhus["base"] == "running"
    assert any("500/500 Mbit/s" in c for c in radhus["commands"]), radhus["commands"]
    model = inventory.load([change.folder])
    skule = model.municipality("vinje").sites[1]
    router_on_link = topology.nth(topology.link_subnet(model.centre, skule), 2)
    assert routers["core-router"]["base"] == "running"
    assert any(c.startswith(f"neighbor {router_on_link} remote-as")
               for c in routers["core-router"]["commands"]), routers["core-router"]


def test_the_plan_shows_the_invoice_delta_and_a_markdown_comment(change: Change) -> None:
    (delta,) = change.plan["invoices"]
    assert delta["municipality"] == "vinje"
    lines = {(ln["service"], ln["area"]): ln for ln in delta["lines"]}
    assert ("breiband", None) in lines and lines[("breiband", None)]["change"] != "0"
    text = change.markdown.read_text(encoding="utf-8")
    for heading in ("### Provision", "### Converge", "### Network", "### Invoice"):
        assert heading in text
    assert "```diff" in text
    # No secret of the lab's store in what a change request would show.
    shown = text + json.dumps(change.plan) + change.plan_file.read_text(encoding="utf-8")
    for name, secret in credentials.every_secret(change.env).items():
        assert secret not in shown, name


def test_an_inventory_edit_after_planning_makes_up_refuse(change: Change) -> None:
    tokke = change.folder / "tokke.yaml"
    kept = tokke.read_bytes()
    before = list(audit.entries(change.env))
    try:
        tokke.write_bytes(kept + b"# edited after planning\n")
        proc = fellesdrift("up", change.folder, "--env", change.env, "--plan", change.plan_file)
    finally:
        tokke.write_bytes(kept)
    assert proc.returncode == 1, proc.stderr[-3000:]
    message = " ".join(proc.stderr.split())
    assert "no longer matches its inputs" in message and "inventories/tokke.yaml changed" \
        in message and "nothing was applied" in message
    assert list(audit.entries(change.env)) == before


def test_up_applies_the_plan_and_finds_no_difference_from_it(change: Change) -> None:
    proc = fellesdrift("up", change.folder, "--env", change.env, "--plan", change.plan_file,
                       "--json")
    change.applied = True
    assert proc.returncode == 0, proc.stderr[-6000:] + proc.stdout[-3000:]
    result = json.loads(proc.stdout)
    assert result["ok"] and result["unplanned"] == [], result["unplanned"]
    assert {naming.site_router("vinje", "skule"), naming.site_client("vinje", "skule")} <= {
        h.name for h in lab_hosts.load(change.env)}
    last = list(audit.entries(change.env))[-1]
    assert last["planned"] is True and last["outcome"] == "ok"
