"""The plan of a change as its reviewer reads it (fellesdrift/change/review.py and its parts):
the hosts as planned, the routers' commands, the comparison after `up --plan`, and the
renderings (terminal, Markdown that no inventory value or diff can break, JSON)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from plan_change import changed_copy
from pulumi import automation as auto

from fellesdrift import paths
from fellesdrift.change import apply, audit, check, invoices, planfile, preview, review, routers
from fellesdrift.converge import run as converge
from fellesdrift.converge.run import ChangedTask, ConvergeResult
from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import Inventory
from fellesdrift.network import config, intended
from fellesdrift.network.push import DeviceResult
from fellesdrift.pipeline import job as pipeline
from fellesdrift.plan import naming, topology
from fellesdrift.provision import stacks as provision
from fellesdrift.provision.hosts import Host


@pytest.fixture
def changed(tmp_path: Path, fixture_inventories: Path) -> Inventory:
    """The fixture with a new site in Vinje and Vinje rådhus' link at 500/500 Mbit/s."""
    changed_copy(fixture_inventories, tmp_path / "inv")
    return inventory.load([tmp_path / "inv"])


def lab_hosts(model: Inventory) -> list[Host]:
    """The fixture's hosts as a lab would have them (centre hosts and one router and client per
    site; addresses as the stacks declare them)."""
    found = [Host(naming.CORE_ROUTER, "lab-core-router", ("core_router", naming.CENTRE_GROUP),
                  topology.centre_networks(model.centre)[0].router, "root", 22, "ssh-ed25519 A")]
    for h in model.centre.shared_hosts:
        found.append(Host(h.hostname, f"lab-{h.hostname}", (h.role, naming.CENTRE_GROUP),
                          h.address, "root", 22, "ssh-ed25519 B"))
    for m in model.municipalities:
        for s in m.sites:
            groups = (naming.municipality_group(m.slug), naming.site_group(m.slug, s.id))
            found.append(Host(naming.site_router(m.slug, s.id), "x", ("site_router", *groups),
                              topology.nth(s.lan_prefix, 1), "root", 22, "k"))
            found.append(Host(naming.site_client(m.slug, s.id), "y", ("site_client", *groups),
                              topology.nth(s.lan_prefix, 10), "root", 22, "k"))
    return found


# --- The hosts as planned ---------------------------------------------------------------------

def test_a_new_site_gets_the_hosts_its_stack_declares_and_nothing_else_is_new(
        fixture_inventories: Path, changed: Inventory) -> None:
    provisioned = lab_hosts(inventory.load([fixture_inventories]))
    every, new = check.planned_hosts(changed, provisioned)
    assert [(h.name, h.address, h.groups) for h in new] == [
        ("vinje-skule-router", "10.104.3.1",
         ("site_router", "municipality_vinje", "site_vinje-skule")),
        ("vinje-skule-client", "10.104.3.10",
         ("site_client", "municipality_vinje", "site_vinje-skule"))]
    assert every == provisioned + new
    # The stacks' host names are naming's (the planned hosts must match what up makes).
    assert {h.name for h in new} == {naming.site_router("vinje", "skule"),
                                     naming.site_client("vinje", "skule")}


def test_new_hosts_are_listed_where_the_lab_will_list_them(changed: Inventory) -> None:
    """Stack by stack (files sorted by name), a municipality's site by site: the DNS zone and
    the monitoring targets rendered from the plan's hosts read as they will after the apply."""
    provisioned = lab_hosts(changed)
    without_tokke = [h for h in provisioned if not h.name.startswith("tokke-")]
    every, new = check.planned_hosts(changed, without_tokke)
    assert [h.name for h in new] == ["tokke-skule-router", "tokke-skule-client"]
    assert [h.name for h in every] == [h.name for h in provisioned]


def test_the_hosts_of_a_removed_site_are_gone_from_the_plan(
        fixture_inventories: Path, changed: Inventory) -> None:
    every, new = check.planned_hosts(inventory.load([fixture_inventories]), lab_hosts(changed))
    assert not new
    assert {h.name for h in lab_hosts(changed)} - {h.name for h in every} == {
        "vinje-skule-router", "vinje-skule-client"}


def test_the_change_of_one_municipality_touches_its_hosts_and_the_centre_hosts_of_it(
        changed: Inventory) -> None:
    every, _ = check.planned_hosts(changed, lab_hosts(changed))
    slugs, hosts = check.touched(changed, "unit-review-none", every, ["vinje", "tokke"], [])
    assert slugs == ["vinje", "tokke"]  # never applied in this environment: both changed
    _, hosts = check.touched(changed, "unit-review-none", every, ["vinje"], [])
    names = {h.name for h in hosts}
    assert {"core-router", "vinje-radhus-router", "vinje-skule-client"} <= names
    assert not {h for h in names if h.startswith("tokke-")}
    assert "apt-proxy" not in names  # its configuration depends on the address plan only


# --- The converge comparison ------------------------------------------------------------------

def planned_check() -> dict[str, object]:
    return check.ConvergePlan(
        changed=["vinje"],
        hosts={"okonomi-01": [check.TaskChange("finance_hosting", "Allow the sites", False,
                                               "+host okonomi_vinje 10.104.3.0/24\n")],
               "katalog": []},
        new=["vinje-skule-client"]).as_dict()


def task(host: str, role: str, name: str) -> ChangedTask:
    return ChangedTask(host, role, name, False)


def test_an_apply_that_changed_what_the_check_said_is_as_planned() -> None:
    applied = [task("okonomi-01", "finance_hosting", "Allow the sites"),
               task("vinje-skule-client", "common", "Install packages")]
    assert check.unplanned(planned_check(), applied) == []


def test_a_task_not_planned_or_a_planned_one_not_done_or_an_unchecked_host_is_named() -> None:
    applied = [task("okonomi-01", "finance_hosting", "Restart postgresql"),
               task("katalog", "dns_ntp", "Write the zone"),
               task("tokke-skule-router", "common", "Install packages")]
    assert check.unplanned(planned_check(), applied) == [
        "katalog: changed, not planned: dns_ntp : Write the zone",
        "okonomi-01: changed, not planned: finance_hosting : Restart postgresql; planned, not "
        "changed: finance_hosting : Allow the sites",
        "tokke-skule-router: not checked in the plan, changed common : Install packages"]


def test_a_command_the_check_could_not_tell_about_may_change_or_not() -> None:
    planned = check.ConvergePlan(
        changed=["vinje"], hosts={"katalog": []},
        may_change={"katalog": [check.TaskChange("dns_ntp", "Check the zone", False, "")]}
    ).as_dict()
    assert check.unplanned(planned, [task("katalog", "dns_ntp", "Check the zone")]) == []
    assert check.unplanned(planned, []) == []
    assert check.unplanned(planned, [task("katalog", "dns_ntp", "Write the zone")]) == [
        "katalog: changed, not planned: dns_ntp : Write the zone"]


def test_check_mode_names_the_commands_ansible_skipped_without_running_them() -> None:
    seen = converge._Events()
    for event in (
        {"event": "runner_on_skipped", "event_data": {
            "host": "katalog", "role": "dns_ntp", "task": "Check the zone",
            "res": {"skipped": True, "changed": False, "msg": converge.WOULD_HAVE_RUN}}},
        {"event": "runner_on_skipped", "event_data": {
            "host": "katalog", "role": "dns_ntp", "task": "Only on Ubuntu",
            "res": {"skipped": True, "skip_reason": "Conditional result was False"}}},
        {"event": "runner_on_skipped", "event_data": {
            "host": "katalog", "role": "common", "task": "Apply each", "res": {
                "skipped": True, "results": [{"skipped": True, "msg": converge.WOULD_HAVE_RUN}]}}},
    ):
        seen(event)
    assert [str(t) for t in seen.may_change] == ["katalog: dns_ntp : Check the zone (task)",
                                                 "katalog: common : Apply each (task)"]


def test_a_plan_made_without_a_lab_is_not_compared_task_by_task() -> None:
    first = check.ConvergePlan(changed=["vinje"], skipped="no host is provisioned in x: its "
                               "first apply converges every host", lab=False).as_dict()
    assert check.unplanned(first, [task("katalog", "dns_ntp", "Write the zone")]) == []
    nothing = check.ConvergePlan(skipped="no municipality changed since its last apply")
    assert check.unplanned(nothing.as_dict(), [task("katalog", "dns_ntp", "Write")]) == [
        "katalog: not checked in the plan, changed dns_ntp : Write"]


# --- The routers ------------------------------------------------------------------------------

def test_a_router_is_planned_against_its_last_archived_configuration_without_a_lab(
        tmp_path: Path, fixture_inventories: Path, changed: Inventory) -> None:
    before = inventory.load([fixture_inventories])
    pushed = intended.render(before, "vinje-radhus-router", "frr",
                             interfaces={"10.104.1.1": "eth7", "10.104.252.6": "eth9"})
    archive = tmp_path / "backups" / "unit" / "vinje-radhus-router"
    archive.mkdir(parents=True)
    (archive / "20261201T100000.000000Z.cfg").write_text("hostname old\n")
    (archive / "20261201T120000.000000Z.cfg").write_text(pushed)
    assert routers.interfaces_of(pushed) == {"10.104.1.1": "eth7", "10.104.252.6": "eth9"}
    plan = routers.plan(changed, "unit", ["vinje-radhus-router", "no-such-router",
                                          "vinje-skule-router"], {}, tmp_path / "backups")
    radhus, skule = plan
    assert radhus.base == "archived"
    # The bandwidth is in the uplink's description: one line set anew, on the interface the
    # archived configuration names.
    assert list(radhus.commands) == [
        "interface eth9",
        "description uplink fibre vtk vlan 101 500/500 Mbit/s (10.104.252.6/30)", "exit"]
    wanted = intended.render(changed, "vinje-radhus-router", "frr",
                             interfaces={"10.104.1.1": "eth7", "10.104.252.6": "eth9"})
    assert config.commands(pushed, wanted) == list(radhus.commands)
    # A router the change adds: its whole configuration, against nothing.
    assert skule.base == "new" and skule.device == "vinje-skule-router"
    assert list(skule.commands) == config.commands("", intended.render(
        changed, "vinje-skule-router", "frr"))
    assert "router bgp 4200004036" in skule.commands


def test_the_core_router_comes_first_and_only_the_changed_municipalities_routers(
        changed: Inventory, tmp_path: Path) -> None:
    names = routers.routers_of(changed, ["vinje"])
    assert names == ["core-router", "vinje-radhus-router", "vinje-skule-router"]
    plan = routers.plan(changed, "unit", list(reversed(names)), {}, tmp_path)
    assert [r.device for r in plan] == names


def device(name: str, status: str, diff: str = "") -> DeviceResult:
    return DeviceResult(name, status, diff)  # type: ignore[arg-type]


CORE_DIFF = ("--- core-router (running)\n+++ core-router (intended)\n@@ -1 +1,3 @@\n"
             "+interface eth4\n+ description link vinje-skule-router vtk vlan 103\n"
             " hostname core\n")


def test_a_push_is_compared_with_the_plan_line_by_line_except_new_interface_names() -> None:
    planned = [routers.RouterPlan("core-router", "running", ("interface eth4",), CORE_DIFF)
               .as_dict(),
               routers.RouterPlan("vinje-skule-router", "new", ("hostname x",), "").as_dict(),
               routers.RouterPlan("tokke-skule-router", "running", (), "").as_dict()]
    # The lab attached the new link as eth6, not eth4: the same change.
    applied = [device("core-router", "changed", CORE_DIFF.replace("eth4", "eth6")),
               device("vinje-skule-router", "changed", "+anything\n"),
               device("tokke-skule-router", "unchanged")]
    assert routers.unplanned(planned, applied) == []
    other = CORE_DIFF.replace("vlan 103", "vlan 104")
    assert routers.unplanned(planned, [
        device("core-router", "changed", other), device("vinje-skule-router", "unchanged"),
        device("tokke-skule-router", "changed", "+x\n"),
        device("tokke-radhus-router", "changed", "+y\n")]) == [
        "router core-router: the configuration pushed differs from the planned one",
        "router tokke-radhus-router: changed, but the plan has no commands for it",
        "router tokke-skule-router: planned 0 command(s), changed",
        "router vinje-skule-router: planned 1 command(s), nothing changed"]
    assert routers.unplanned(planned, [device("tokke-skule-router", "unchanged")]) == [
        "router core-router: planned 1 command(s), not pushed",
        "router vinje-skule-router: planned 1 command(s), not pushed"]


# --- Pulumi's steps ---------------------------------------------------------------------------

def meta(op: str, typ: str, name: str, old: dict[str, object] | None,
         new: dict[str, object] | None, diffs: list[str] | None = None
         ) -> auto.StepEventMetadata:
    def state(inputs: dict[str, object] | None) -> auto.StepEventStateMetadata | None:
        return None if inputs is None else auto.StepEventStateMetadata(
            type=typ, urn=f"urn:pulumi:lab.vinje::fellesdrift::{typ}::{name}", id="",
            parent="", provider="", inputs=inputs, outputs={})
    return auto.StepEventMetadata(op=auto.OpType(op), urn=f"urn:pulumi:lab.vinje::fellesdrift::"
                                  f"fellesdrift:index:MunicipalSite${typ}::{name}", type=typ,
                                  provider="", old=state(old), new=state(new), diffs=diffs)


VM = "proxmoxve:index/vmLegacy:VmLegacy"


def test_a_preview_step_names_the_resource_and_the_properties_that_change() -> None:
    update = preview.step(meta("update", preview.DYNAMIC, "vinje-radhus-link-shaping",
                               {"down_mbps": 1000, "up_mbps": 1000, "machine": "r"},
                               {"down_mbps": 500, "up_mbps": 500, "machine": "r"},
                               ["down_mbps", "up_mbps", "__provider"]))
    assert update is not None
    assert str(update) == "update vinje-radhus-link-shaping"
    assert [str(p) for p in update.properties] == ["down_mbps: 1000 → 500",
                                                    "up_mbps: 1000 → 500"]
    create = preview.step(meta("create", VM, "vinje-skule-router", None, {
                               "machine": "lab-vinje-skule-router", "password": {
                                   "4dabf18193072939515e22adb298388d": preview.SECRET_SIG,
                                   "value": "hunter2"}, "blob": "x" * 200,
                               "networks": [["lan", preview.UNKNOWN]]}))
    assert create is not None and create.op == "create"
    assert str(create) == f"create vinje-skule-router ({VM})"
    shown = {p.key: p.after for p in create.properties}
    assert shown["password"] == "[secret]" and "hunter2" not in str(create.as_dict())
    assert shown["blob"] is not None and len(shown["blob"]) == 80
    assert shown["networks"] == '[["lan", "(known after apply)"]]'
    for quiet in (meta("same", "fellesdrift:lab:LabHost", "x", {}, {}),
                  meta("create", "pulumi:pulumi:Stack", "fellesdrift-lab.vinje", None, {}),
                  meta("create", "pulumi:providers:command", "default", None, {})):
        assert preview.step(quiet) is None
    # A dynamic provider names no changed key: the inputs that differ are the change.
    dynamic = preview.step(meta("update", preview.DYNAMIC, "vinje-radhus-link-shaping",
                                {"down_mbps": 1000, "machine": "r", "__provider": "a"},
                                {"down_mbps": 500, "machine": "r", "__provider": "b"}))
    assert dynamic is not None and [str(p) for p in dynamic.properties] == [
        "down_mbps: 1000 → 500"]
    delete = preview.step(meta("delete", "fellesdrift:lab:LabHost", "old", {"a": 1}, None))
    assert delete is not None and delete.properties == ()


# --- Rendering --------------------------------------------------------------------------------

HOSTILE = "Vinje</details><script>alert(1)</script> [x](http://evil) *b* @all | #1\n# h"
BREAKOUT = "+ok\n```\n# not a heading\n````\n<img src=x onerror=alert(1)>\n"


def a_review(name: str = "vinje", unchanged: bool = False) -> review.Review:
    stacks = [provision.StackResult("lab.core", {"same": 40}),
              provision.StackResult("lab.vinje", {"same": 9} if unchanged else
                                    {"create": 7, "update": 1, "same": 8})]
    steps = {} if unchanged else {"lab.vinje": [preview.Step(
        "update", preview.DYNAMIC, "vinje-radhus-link-shaping",
        (preview.Property("down_mbps", "1000", "500"),))]}
    converge = check.ConvergePlan(changed=[] if unchanged else [name], hosts={
        "okonomi-01": [] if unchanged else [check.TaskChange(
            "finance_hosting", f"Allow the sites of {name}", False, BREAKOUT)],
        "katalog": []}, new=[] if unchanged else ["vinje-skule-client"], seconds=12.3,
        may_change={} if unchanged else {"katalog": [check.TaskChange(
            "dns_ntp", "Check the zone", False, "")]})
    network = [routers.RouterPlan("core-router", "running", () if unchanged else (
        f"description link {name}", "exit"), "" if unchanged else "+x\n")]
    money = invoices.Delta(name, Decimal(100), Decimal(100 if unchanged else 150), () if
                           unchanged else (invoices.LineChange("breiband", None, "1 site",
                                                               "2 sites", Decimal(50)),))
    return review.Review("lab", False, [name], stacks, steps, converge, network, [money])


def test_an_unchanged_centre_says_so_in_one_line_per_part() -> None:
    assert review.terminal(a_review(unchanged=True)) == [
        "provision: no changes in 2 stack(s) (49 resources unchanged)",
        "converge: nothing would change (2 host(s) checked in 12 s: katalog, okonomi-01)",
        "network: no router would change (1 compared: core-router)",
        "invoice: unchanged for vinje"]
    md = review.markdown(a_review(unchanged=True))
    assert md.count("\n- ") == 4


def test_the_terminal_plan_shows_each_part_with_its_details() -> None:
    text = "\n".join(review.terminal(a_review()))
    for expected in ("lab.vinje: 7 to create, 1 to update, 8 unchanged",
                     "update vinje-radhus-link-shaping",
                     "down_mbps: 1000 → 500",
                     "okonomi-01: 1 task(s) would change",
                     "katalog: 1 command(s) may change (Ansible cannot check a command "
                     "without running it)",
                     "dns_ntp : Check the zone",
                     "vinje-skule-client: new host, every task of its role will run",
                     "core-router: 2 command(s) against its running configuration",
                     "description link vinje",
                     "invoice vinje: 100.00 NOK → 150.00 NOK a month (+50.00 NOK)"):
        assert expected in text, expected


def rendered(md: str) -> tuple[str, list[str], list[str]]:
    """(the HTML, the code blocks' contents, the headings) as a Markdown renderer sees them."""
    parser = MarkdownIt("commonmark", {"html": True})
    tokens = parser.parse(md)
    codes = [t.content for t in tokens if t.type == "fence"]
    headings = ["".join(c.content for c in tokens[i + 1].children or [])
                for i, t in enumerate(tokens) if t.type == "heading_open"]
    return parser.render(md), codes, headings


def test_markdown_keeps_an_untrusted_name_text_and_a_diff_inside_its_block() -> None:
    md = review.markdown(a_review(HOSTILE))
    html, codes, headings = rendered(md)
    # The name is text: no tag, link or emphasis of its own, on one line.
    assert "<script>" not in html and "<a href" not in html and "<em>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert headings == ["Plan for lab: " + " ".join(HOSTILE.split()), "Provision",
                        "Converge", "Network", "Invoice"]
    # The diff is one code block, whole, whatever fences and HTML it holds.
    assert BREAKOUT in codes
    assert "<img" not in html.replace("&lt;img", "")
    assert f"description link {HOSTILE}\nexit\n" in codes


def test_a_long_diff_is_folded_and_stays_whole() -> None:
    long = "".join(f"+line {i} ``` </details>\n" for i in range(review.FOLDED + 5))
    plan = a_review()
    plan.converge.hosts["okonomi-01"][0] = check.TaskChange("finance_hosting", "t", False, long)
    html, codes, _ = rendered(review.markdown(plan))
    assert long in codes
    assert html.count("<details>") == 1 and f"<summary>{review.FOLDED + 5} lines</summary>" in html
    assert html.index("<details>") < html.index("+line 0") < html.rindex("</details>")


@pytest.mark.parametrize("text", ["```\n", "a ``` b\n", "````` \n~~~\n", "no fence\n", ""])
def test_a_fence_is_longer_than_any_backtick_run_inside(text: str) -> None:
    _, codes, _ = rendered(review.md_fence(text, "diff"))
    assert codes == [text or "\n"]


def test_the_json_plan_has_every_part_and_the_plan_file_keeps_them(tmp_path: Path) -> None:
    found = a_review().as_dict()
    assert set(found) >= {"stacks", "converge", "network", "invoices", "ok"}
    assert found["stacks"][1]["steps"][0]["properties"] == [
        {"key": "down_mbps", "before": "1000", "after": "500"}]
    assert found["converge"]["hosts"]["okonomi-01"][0]["diff"] == BREAKOUT
    plan = planfile.Plan("lab", False, ["vinje"], {"inventories/vinje.yaml": "0" * 64}, "now",
                         found["stacks"], found["invoices"], found["converge"],
                         found["network"])
    planfile.write(tmp_path / "plan.json", plan)
    again = planfile.load(tmp_path / "plan.json")
    assert again.converge == found["converge"] and again.network == found["network"]


def test_a_new_link_on_the_core_router_gets_the_next_free_interface_not_another_links(
        tmp_path: Path, fixture_inventories: Path, changed: Inventory) -> None:
    names = {"10.104.0.1": "eth0", "10.104.0.129": "eth1", "10.104.252.5": "eth2",
             "10.104.252.9": "eth3"}
    running = intended.render(inventory.load([fixture_inventories]), "core-router", "frr",
                              interfaces=names)
    assert routers.interfaces_of(running) == names
    link = topology.nth(topology.link_subnet(changed.centre, changed.municipality(
        "vinje").sites[1]), 1)
    assert routers.with_new_links(changed, "core-router", names) == names | {link: "eth4"}
    (tmp_path / "unit" / "core-router").mkdir(parents=True)
    (tmp_path / "unit" / "core-router" / "20261201T120000.000000Z.cfg").write_text(running)
    planned = routers.plan_router(changed, "unit", "core-router", None, tmp_path)
    assert planned.base == "archived"
    # The new link is an interface of its own; the link named eth3 (tokke's) is left alone.
    assert "interface eth4" in planned.commands and "interface eth3" not in planned.commands
    assert f"description link vinje-skule-router vtk vlan 103 ({link}/30)" in planned.commands


HOSTILE_SITE = "Vinje <b>skule</b> [x](http://e) `x` *y* @all"


def test_the_plan_command_of_an_environment_without_hosts_prints_and_writes_its_markdown(
        tmp_path: Path, fixture_inventories: Path) -> None:
    """`plan` end to end under Pulumi's mocks (no lab): a site whose name is Markdown and HTML
    is text in the comment, and inside its router's commands; no host to check; every router
    planned against nothing."""
    env = "pve-unit-review"
    folder = tmp_path / "inv"
    changed_copy(fixture_inventories, folder)
    vinje = folder / "vinje.yaml"
    vinje.write_text(vinje.read_text().replace("name: Vinje skule", f'name: "{HOSTILE_SITE}"'))
    environments = tmp_path / "environments.yaml"
    environments.write_text(f"{env}: {{driver: proxmox, inventory: {folder}, mocks: true, "
                            "settings: {proxmoxNode: pve1, proxmoxTemplate: '9000', "
                            "proxmoxDatastore: local-lvm}}\n")
    written = tmp_path / "plan.md"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "fellesdrift", "plan", "--env", env, "-m", "vinje",
             "--format", "markdown", "--markdown", str(written)], cwd=paths.ROOT,
            capture_output=True, text=True, timeout=300, check=False,
            env=dict(os.environ, FELLESDRIFT_ENVIRONMENTS=str(environments)))
    finally:
        shutil.rmtree(paths.lab_dir(env), ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == written.read_text(encoding="utf-8")
    html, codes, headings = rendered(proc.stdout)
    assert headings[1:] == ["Provision", "Converge", "Network", "Invoice"]
    assert "<b>" not in html and "<a href" not in html and "<em>" not in html
    assert "no host is provisioned in " + env in " ".join(proc.stdout.split()).replace("\\", "")
    skule = next(c for c in codes if "hostname vinje-skule-router" in c)
    assert f"description LAN {HOSTILE_SITE} (10.104.3.1/24)\n" in skule
    assert "first apply" in html  # the invoice of a municipality never applied


# --- Against the audit log: what changed since the last apply, and the apply of a plan -------

AUDIT_ENV = "chgr"
WINDOW_OPEN = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # the fixture's window: always open


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(paths, "STATE_DIR", tmp_path / ".state")
    return tmp_path / ".state"


def applied(model: Inventory, slugs: list[str], plan: planfile.Plan | None = None,
            outcome: pipeline.Outcome | None = None) -> apply.Apply:
    run = apply.start(model, AUDIT_ENV, pipeline.Selection(False, slugs), [], plan, None,
                      WINDOW_OPEN)
    run.done(outcome or pipeline.Outcome(stacks=[], idle=True), None)
    return run


def test_only_the_municipalities_changed_since_their_last_apply_are_checked(
        state: Path, fixture_inventories: Path, changed: Inventory) -> None:
    before = inventory.load([fixture_inventories])
    assert check.changed_municipalities(before, AUDIT_ENV, ["tokke", "vinje"]) == [
        "tokke", "vinje"]  # never applied
    applied(before, ["tokke", "vinje"])
    assert check.changed_municipalities(before, AUDIT_ENV, ["tokke", "vinje"]) == []
    assert check.changed_municipalities(changed, AUDIT_ENV, ["tokke", "vinje"]) == ["vinje"]


def test_an_apply_other_than_the_plans_converge_or_network_is_recorded_as_failed(
        state: Path, changed: Inventory, tmp_path: Path) -> None:
    plan = planfile.Plan(AUDIT_ENV, False, ["vinje"], {}, "2026-12-01T12:00:00Z",
                         converge=planned_check(), network=[routers.RouterPlan(
                             "vinje-radhus-router", "running", ("description x",),
                             "+ description x\n").as_dict()])
    result = ConvergeResult("successful", 0, tmp_path, changed_tasks=[
        task("okonomi-01", "finance_hosting", "Allow the sites"),
        task("katalog", "dns_ntp", "Write the zone")])
    outcome = pipeline.Outcome(stacks=[], converge=result, network=[
        device("vinje-radhus-router", "changed", "+ description x\n"),
        device("core-router", "changed", "+x\n")], idle=True)
    run = applied(changed, ["vinje"], plan, outcome)
    assert run.unplanned == [
        "converge katalog: changed, not planned: dns_ntp : Write the zone",
        "router core-router: changed, but the plan has no commands for it"]
    record = list(audit.entries(AUDIT_ENV))[-1]
    assert record["outcome"] == "failed: not as planned" and record["unplanned"] == run.unplanned
    assert audit.applied(AUDIT_ENV) == {}  # the gate still counts the change as not applied
    as_planned = pipeline.Outcome(stacks=[], converge=ConvergeResult(
        "successful", 0, tmp_path, changed_tasks=result.changed_tasks[:1]),
        network=outcome.network[:1], idle=True)  # idle: an outcome that is ok without hosts
    assert applied(changed, ["vinje"], plan, as_planned).unplanned == []
    assert list(audit.applied(AUDIT_ENV)) == ["vinje"]
