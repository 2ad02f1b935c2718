"""The network phase's logic without a lab: normalising, diffing, the commands that replace a
configuration, and archive / push / verify / roll back against a fake vtysh."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from fellesdrift.network import config, frr, push
from fellesdrift.provision.hosts import Host

RUNNING = """Building configuration...

Current configuration:
!
frr version 8.4.4
frr defaults traditional
hostname r1
log syslog informational
no ipv6 forwarding
service integrated-vtysh-config
!
interface eth0
 description old
exit
!
router bgp 65001
 bgp router-id 10.0.0.1
 neighbor 10.9.9.1 remote-as 65000
 neighbor 10.9.9.1 description gone
 neighbor 10.9.9.5 remote-as 65000
 !
 address-family ipv4 unicast
  network 10.1.0.0/24
  neighbor 10.9.9.1 route-map IN in
  neighbor 10.9.9.5 route-map IN in
 exit-address-family
exit
!
ip prefix-list STALE seq 10 permit 192.0.2.0/24
!
route-map OLD permit 10
 match ip address prefix-list STALE
exit
!
end
"""

INTENDED = """frr defaults traditional
hostname r1
log syslog informational
no ipv6 forwarding
service integrated-vtysh-config
!
interface eth0
 description new
exit
!
router bgp 65001
 bgp router-id 10.0.0.1
 neighbor 10.9.9.5 remote-as 65000
 !
 address-family ipv4 unicast
  network 10.1.0.0/24
  network 10.2.0.0/24
  neighbor 10.9.9.5 route-map IN in
 exit-address-family
exit
!
end
"""


def test_normalise_ignores_order_comments_and_version() -> None:
    lines = ["hostname r1", "!", "frr version 9.0", "log syslog informational"]
    shuffled = "\n".join(reversed(lines))
    assert config.normalise(shuffled) == config.normalise("hostname r1\nlog syslog informational\n")
    assert config.diff(RUNNING, RUNNING) == ""


def test_parse_knows_blocks() -> None:
    paths = config.parse(RUNNING)
    assert ("router bgp 65001", "address-family ipv4 unicast", "network 10.1.0.0/24") in paths
    assert ("route-map OLD permit 10", "match ip address prefix-list STALE") in paths
    assert ("ip prefix-list STALE seq 10 permit 192.0.2.0/24",) in paths


def test_diff_shows_what_changes() -> None:
    d = config.diff(RUNNING, INTENDED, "r1")
    assert "- description old" in d and "+ description new" in d
    assert "+  network 10.2.0.0/24" in d


def test_commands_replace_the_configuration() -> None:
    cmds = config.commands(RUNNING, INTENDED)
    assert "no route-map OLD permit 10" in cmds
    assert "no ip prefix-list STALE seq 10 permit 192.0.2.0/24" in cmds
    assert "no neighbor 10.9.9.1" in cmds  # the neighbor goes as a whole …
    assert not any(c.startswith("no neighbor 10.9.9.1 ") for c in cmds)  # … not line by line
    assert "no description old" not in cmds and "description new" in cmds  # replaced, not removed
    assert "no interface eth0" not in cmds
    assert cmds[-1] in ("exit", "exit-address-family", "network 10.2.0.0/24", "description new")
    # applying them to a model of the device gives the intended configuration
    assert config.normalise(_apply(RUNNING, cmds)) == config.normalise(INTENDED)


def test_no_commands_when_equal_and_negated_lines_are_restored() -> None:
    assert config.commands(INTENDED, RUNNING.replace("Building configuration...", "")) != []
    assert config.commands(INTENDED, INTENDED) == []
    assert config.commands("no ipv6 forwarding\n", "") == ["ipv6 forwarding"]


def _apply(running: str, commands: Sequence[str]) -> str:
    """A tiny model of vtysh: enough to check that commands lead to the intended paths."""
    paths = list(config.parse(running))
    ctx: list[str] = []
    for c in commands:
        if c in ("exit", "exit-address-family"):
            ctx.pop()
            continue
        if c.startswith("no "):
            target = (*ctx, c[3:])
            if c.startswith("no neighbor ") and len(c.split()) == 3:
                paths = [p for p in paths if not (p[:1] == tuple(ctx[:1]) and
                                                  p[-1].startswith(c[3:] + " "))]
            paths = [p for p in paths if p[:len(target)] != target]
            continue
        path = (*ctx, c)
        key = c.split()[0]
        if key in ("description", "hostname"):
            paths = [p for p in paths if not (p[:-1] == tuple(ctx) and p[-1].split()[0] == key)]
        if path not in paths:
            paths.append(path)
        if c.startswith(("interface ", "router ", "route-map ", "address-family ")):
            ctx.append(c)
    return config.canonical(paths)


class FakeVtysh:
    """A device whose configuration is text; a session can die after N commands."""

    def __init__(self, device: dict[str, str], die_after: int | None = None) -> None:
        self.device = device
        self.die_after = die_after
        self.saved = False

    def running_config(self) -> str:
        return self.device["config"]

    def interfaces(self) -> dict[str, str]:
        return {}

    def configure(self, commands: Sequence[str],
                  before_each: Callable[[int, str], None] | None = None) -> str:
        text = self.device["config"]
        for i, c in enumerate(commands):
            if before_each:
                before_each(i, c)
            if self.die_after is not None and i >= self.die_after:
                self.device["config"] = _apply(text, commands[:i])  # half-applied
                raise OSError("Socket is closed")
        self.device["config"] = _apply(text, commands)
        return ""

    def save_config(self) -> str:
        self.saved = True
        return "[OK]"

    def disconnect(self) -> None:
        pass


def _target() -> push.Target:
    host = Host("r1", "lab-r1", ("site_router", "municipality_x"), "10.0.0.1", "ops", 22, "k")
    return push.Target(host, "key", "known_hosts")


def _logins(device: dict[str, str], *sessions: FakeVtysh) -> Callable[[push.Target], frr.FrrVtysh]:
    queue = list(sessions)

    def login(_t: push.Target) -> frr.FrrVtysh:
        return queue.pop(0) if queue else FakeVtysh(device)  # type: ignore[return-value]
    return login


def test_push_changes_verifies_and_saves(tmp_path: Path) -> None:
    device = {"config": RUNNING}
    session = FakeVtysh(device)
    r = push.configure(_target(), lambda _i: INTENDED, "t", connect=_logins(device, session),
                       backups=tmp_path)
    assert r.status == "changed", r.error
    assert session.saved and Path(r.backup).read_text() == RUNNING
    assert config.diff(device["config"], INTENDED) == ""
    again = push.configure(_target(), lambda _i: INTENDED, "t", connect=_logins(device),
                           backups=tmp_path)
    assert again.status == "unchanged" and again.diff == ""


def test_dry_run_touches_nothing(tmp_path: Path) -> None:
    device = {"config": RUNNING}
    r = push.configure(_target(), lambda _i: INTENDED, "t", dry_run=True,
                       connect=_logins(device), backups=tmp_path)
    assert r.status == "would-change" and r.diff and not r.backup
    assert device["config"] == RUNNING and not list(tmp_path.rglob("*.cfg"))


def test_a_session_dying_half_way_restores_the_archive(tmp_path: Path) -> None:
    device = {"config": RUNNING}
    r = push.configure(_target(), lambda _i: INTENDED, "t",
                       connect=_logins(device, FakeVtysh(device, die_after=3)), backups=tmp_path)
    assert r.status == "failed" and r.rolled_back and "Socket is closed" in r.error
    assert config.diff(device["config"], RUNNING) == ""


def test_a_read_back_that_differs_fails_and_restores(tmp_path: Path) -> None:
    device = {"config": RUNNING}

    class Lossy(FakeVtysh):
        def running_config(self) -> str:
            return self.device["config"] if self.saved or not hasattr(self, "pushed") else ""

        def configure(self, commands: Sequence[str],
                      before_each: Callable[[int, str], None] | None = None) -> str:
            self.pushed = True
            return super().configure(commands, before_each)

    r = push.configure(_target(), lambda _i: INTENDED, "t",
                       connect=_logins(device, Lossy(device)), backups=tmp_path)
    assert r.status == "failed" and "read back differs" in r.error and r.rolled_back


def test_an_unreachable_device_fails_alone(tmp_path: Path) -> None:
    def login(_t: push.Target) -> frr.FrrVtysh:
        raise TimeoutError("no route to host")
    r = push.configure(_target(), lambda _i: INTENDED, "t", connect=login, backups=tmp_path)
    assert r.status == "failed" and "no route" in r.error and not r.rolled_back


@pytest.mark.parametrize(("groups", "chosen"), [
    ((), {"core-router", "a-x-router", "b-y-router"}),
    (("a",), {"core-router", "a-x-router"}),
])
def test_routers_selects_by_municipality(groups: tuple[str, ...], chosen: set[str]) -> None:
    def h(name: str, *g: str) -> Host:
        return Host(name, name, g, "10.0.0.1", "ops", 22, "k")
    hosts = [h("core-router", "core_router", "centre"), h("a-x-router", "site_router",
             "municipality_a"), h("b-y-router", "site_router", "municipality_b"),
             h("a-x-client", "site_client", "municipality_a")]
    assert {r.name for r in push.routers(hosts, list(groups))} == chosen


def test_interface_brief_parses() -> None:
    text = """Interface       Status  VRF             Addresses
---------       ------  ---             ---------
eth0            up      default         10.104.1.1/24
                                        + fe80::1/64
eth1            up      default         10.104.252.6/30
lo              up      default
"""
    assert frr.parse_interface_brief(text) == {"10.104.1.1": "eth0", "10.104.252.6": "eth1"}


def test_a_stale_interface_description_goes_without_its_text() -> None:
    # A removed municipality's link: its interface stays on the core, its description goes
    # (`no description <text>` is an unknown command in vtysh).
    running = "interface eth5\n description link hjartdal-skule-router vtk vlan 103\nexit\n"
    assert config.commands(running, "") == ["interface eth5", "no description", "exit"]


def test_a_push_reports_its_steps_and_its_result_is_in_the_one_family(tmp_path: Path) -> None:
    device = {"config": RUNNING}
    heard: list[tuple[str, str, str, str]] = []
    r = push.configure(_target(), lambda _i: INTENDED, "t", connect=_logins(device),
                       backups=tmp_path,
                       progress=lambda phase, item, state, detail, /: heard.append(
                           (phase, item, state, detail)))
    assert heard == [("network", "r1", "running", "connecting"),
                     ("network", "r1", "running", "pushing")]
    assert (r.name, r.ok, r.changed, r.state, r.detail) == (
        "r1", True, 1, "changed", "running = intended")
    assert r.as_dict()["device"] == "r1" and "name" not in r.as_dict()
