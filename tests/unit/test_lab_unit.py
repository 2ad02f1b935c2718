"""The lab driver's pure parts: known_hosts editing, recipe hashing, guards (no Podman needed)."""

from __future__ import annotations

import json
import re
import shutil
import stat
import tomllib
from pathlib import Path

import pytest

from fellesdrift.access import keys
from fellesdrift.lab import guard as lab_guard
from fellesdrift.lab import hosts as lab_hosts
from fellesdrift.lab import image as lab_image
from fellesdrift.lab import networks as lab_networks
from fellesdrift.lab import podman as lab_podman
from fellesdrift.lab import routes as lab_routes
from fellesdrift.lab import runner as lab_runner
from fellesdrift.lab import shaping as lab_shaping

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpi1HErZaRONPQnCBveb3xsFH0ZwfaBETTnt0CV4Yhj"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID+WFQ/zXJU845krT1d1YScWjB37kXYXqkRmxeqzDTsS"


def test_known_hosts_add_to_empty() -> None:
    assert keys.update_known_hosts_text("", "10.100.250.10", KEY_A) == f"10.100.250.10 {KEY_A}\n"


def test_known_hosts_add_replaces_the_line_for_that_ip_only() -> None:
    text = f"10.100.250.10 {KEY_A}\n10.100.250.11 {KEY_A}\n"
    out = keys.update_known_hosts_text(text, "10.100.250.10", KEY_B)
    assert out.splitlines() == [f"10.100.250.11 {KEY_A}", f"10.100.250.10 {KEY_B}"]


def test_known_hosts_add_drops_the_key_comment() -> None:
    out = keys.update_known_hosts_text("", "10.100.250.10", f"{KEY_A} root@labtest-a\n")
    assert out == f"10.100.250.10 {KEY_A}\n"


def test_known_hosts_ip_is_not_a_prefix_match() -> None:
    text = f"10.100.250.100 {KEY_A}\n"
    assert keys.update_known_hosts_text(text, "10.100.250.10", None) == text


def test_known_hosts_remove_keeps_other_hosts_of_a_shared_line_and_comments() -> None:
    text = f"# pinned\n10.100.250.10,10.100.250.12 {KEY_A}\n[10.100.250.10]:22 {KEY_B}\n"
    out = keys.update_known_hosts_text(text, "10.100.250.10", None)
    assert out == f"# pinned\n10.100.250.12 {KEY_A}\n"


def test_known_hosts_rejects_what_is_not_a_public_key() -> None:
    with pytest.raises(keys.AccessError, match="not a single OpenSSH public key line"):
        keys.update_known_hosts_text("", "10.100.250.10", "garbage")
    with pytest.raises(keys.AccessError):
        keys.update_known_hosts_text("", "10.100.250.10", f"{KEY_A}\n{KEY_B}")


def test_known_hosts_file_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "lab_dir", lambda env: tmp_path / env)
    keys.known_hosts_add("unit", "10.100.250.10", KEY_A)
    keys.known_hosts_add("unit", "10.100.250.11", KEY_B)
    keys.known_hosts_add("unit", "10.100.250.10", KEY_B)
    path = keys.known_hosts_path("unit")
    assert path == tmp_path / "unit" / "known_hosts"
    assert path.read_text() == f"10.100.250.11 {KEY_B}\n10.100.250.10 {KEY_B}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys.known_hosts_remove("unit", "10.100.250.11")
    keys.known_hosts_remove("unit", "10.100.250.99")
    assert path.read_text() == f"10.100.250.10 {KEY_B}\n"


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_lab_keypair_is_made_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "lab_dir", lambda env: tmp_path / env)
    key, pub = keys.lab_keypair("unit")
    assert key == tmp_path / "unit" / "id_ed25519"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert pub.startswith("ssh-ed25519 ") and pub.endswith("fellesdrift-lab-unit")
    assert keys.lab_keypair("unit") == (key, pub)


def _copy_recipe(tmp_path: Path) -> Path:
    recipe = tmp_path / "golden-image"
    shutil.copytree(lab_image.RECIPE_DIR, recipe)
    return recipe


def test_recipe_hash_is_12_hex_and_stable(tmp_path: Path) -> None:
    recipe = _copy_recipe(tmp_path)
    digest = lab_image.recipe_hash(recipe)
    assert re.fullmatch(r"[0-9a-f]{12}", digest)
    assert digest == lab_image.recipe_hash(lab_image.RECIPE_DIR)  # location does not matter
    assert lab_image.golden_image_ref(recipe) == f"localhost/fellesdrift-golden:{digest}"


def test_recipe_hash_changes_when_the_recipe_changes(tmp_path: Path) -> None:
    recipe = _copy_recipe(tmp_path)
    before = lab_image.recipe_hash(recipe)
    build = recipe / "build.sh"
    build.write_text(build.read_text().replace("iputils-ping", "iputils-ping curl"))
    edited = lab_image.recipe_hash(recipe)
    assert edited != before
    (recipe / "files" / "extra.conf").write_text("# new file\n")
    added = lab_image.recipe_hash(recipe)
    assert added != edited
    (recipe / "files" / "extra.conf").chmod(0o755)
    assert lab_image.recipe_hash(recipe) != added


def test_recipe_hash_of_a_missing_recipe_is_a_lab_error(tmp_path: Path) -> None:
    with pytest.raises(lab_runner.LabError, match="recipe not found"):
        lab_image.recipe_hash(tmp_path / "nothing")


def test_podman_conf_sets_what_the_lab_needs() -> None:
    conf = tomllib.loads(lab_podman.PODMAN_CONF_TEXT)
    assert conf["engine"]["runtime"] == "runc"
    assert conf["engine"]["cgroup_manager"] == "cgroupfs"
    assert conf["containers"]["default_ulimits"] == ["nofile=1024:20000", "nproc=4096:8192"]
    assert conf["network"]["network_backend"] == "netavark"


@pytest.mark.parametrize(
    "prefix", ["0.0.0.0/0", "8.8.8.0/24", "10.0.0.0/7", "10.100.0.1/16", "not-a-prefix"]
)
def test_unreachable_routes_refuse_dangerous_prefixes(prefix: str) -> None:
    with pytest.raises(lab_runner.LabError, match="unreachable route"):
        lab_routes.add_unreachable_routes([prefix])


def test_invalid_env_names_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "lab_dir", lambda env: tmp_path / env)
    for env in ("", "../x", ".hidden"):
        with pytest.raises(keys.AccessError, match="invalid lab env name"):
            keys.known_hosts_add(env, "10.100.250.10", KEY_A)


# --------------------------------------------------------------------------- addresses, networks


def test_routers_take_the_first_address_and_the_control_node_the_last() -> None:
    assert lab_networks.router_address("10.100.241.0/24") == "10.100.241.1"
    assert lab_networks.control_address("10.100.241.0/24") == "10.100.241.254"
    assert lab_networks.control_address("10.100.243.0/29") == "10.100.243.6"
    assert lab_networks.control_address("10.100.243.4/30") == "10.100.243.6"
    for bad in ("10.100.241.1/24", "10.100.241.0/31", "fd00::/64", "nonsense"):
        with pytest.raises(lab_runner.LabError):
            lab_networks.control_address(bad)


@pytest.mark.parametrize(
    ("gateway", "match"),
    [
        ("10.100.242.1", "not a usable address of 10.100.241.0/24"),
        ("10.100.241.255", "not a usable address"),
        ("10.100.241.0", "not a usable address"),
        ("gw", "invalid gateway"),
    ],
)
def test_ensure_network_refuses_a_bridge_address_outside_the_subnet(
    gateway: str, match: str
) -> None:
    with pytest.raises(lab_runner.LabError, match=match):  # refused before Podman is asked
        lab_networks.ensure_network("unit", "unit-lan", "10.100.241.0/24", gateway=gateway)


def test_pairs_round_trip() -> None:
    pairs = [("unit-lan", "eth0"), ("unit-core", "eth1")]
    assert lab_networks.format_pairs(pairs) == "unit-lan=eth0,unit-core=eth1"
    assert lab_networks.parse_pairs(lab_networks.format_pairs(pairs)) == pairs
    assert lab_networks.parse_pairs("") == [] and lab_networks.format_pairs([]) == ""
    with pytest.raises(lab_runner.LabError, match="name=value"):
        lab_networks.parse_pairs("eth0")


def test_egress_network_is_named_after_the_lab() -> None:
    assert lab_networks.egress_network_name("lab") == "fd-lab-egress"


# --------------------------------------------------------------------------- forward guard


def test_guard_drops_what_a_lab_bridge_would_route_in_or_out() -> None:
    rules = lab_guard.guard_rules("unit", "unit-lan", "podman7", "10.100.241.0/24", egress=False)
    comment = ["-m", "comment", "--comment", "fellesdrift.lab=unit net=unit-lan"]
    both = [
        ["-i", "podman7", "!", "-o", "podman7", *comment, "-j", "DROP"],
        ["!", "-i", "podman7", "-o", "podman7", *comment, "-j", "DROP"],
    ]
    assert rules == [("iptables", r) for r in both] + [("ip6tables", r) for r in both]


def test_guard_lets_the_egress_bridge_forward_only_its_own_sources() -> None:
    rules = lab_guard.guard_rules("unit", "fd-unit-egress", "podman9", "10.89.0.0/24", egress=True)
    v4 = [spec for binary, spec in rules if binary == "iptables"]
    assert v4 == [
        ["-i", "podman9", "!", "-s", "10.89.0.0/24", "-m", "comment", "--comment",
         "fellesdrift.lab=unit net=fd-unit-egress", "-j", "DROP"],
    ]  # fmt: skip
    assert len([b for b, _ in rules if b == "ip6tables"]) == 2


def test_guard_comments_parse_and_others_do_not() -> None:
    comment = lab_guard.guard_comment("unit", "unit-lan")
    assert lab_guard.parse_guard_comment(comment) == ("unit", "unit-lan")
    for other in ("netavark firewall plugin rules", "fellesdrift.lab= net=x", ""):
        assert lab_guard.parse_guard_comment(other) is None


# --------------------------------------------------------------------------- host plans

NETS: dict[str, dict[str, str]] = {
    "unit-mgmt": {"subnet": "10.100.240.0/24", "gateway": "10.100.240.1", "internal": "true"},
    "unit-lan": {"subnet": "10.100.241.0/24", "gateway": "10.100.241.254", "internal": "true"},
    "unit-core": {"subnet": "10.100.242.0/24", "gateway": "10.100.242.254", "internal": "true"},
    "unit-link": {"subnet": "10.100.243.0/30", "gateway": "", "internal": "true"},
    "podman": {"subnet": "10.88.0.0/16", "gateway": "10.88.0.1", "internal": "false"},
}


def test_plan_of_a_plain_host_is_the_original_one() -> None:
    plan = lab_hosts.plan_host("unit", "unit-a", [("unit-mgmt", "10.100.240.10")], NETS)
    assert plan.interfaces == [("unit-mgmt", "eth0")]
    args = plan.run_args
    assert args[:2] == ["--network", "unit-mgmt:ip=10.100.240.10,interface_name=eth0"]
    assert "--dns" in args and args[args.index("--dns") + 1] == "none"
    assert "net.ipv4.ip_forward=0" in args  # a new netns inherits this machine's setting
    assert "--cap-add" not in args and "--privileged" not in args
    label = args[args.index("--label") + 1]
    assert label.startswith(f"{lab_runner.SPEC_LABEL}=") and json.loads(label.split("=", 1)[1]) == {
        "v": 1,
        "networks": [["unit-mgmt", "10.100.240.10", "eth0"]],
        "router": False,
        "egress": False,
        "gateway": "",
        "routes": [],
    }


def test_plan_of_a_router_names_interfaces_in_order_and_adds_only_net_caps() -> None:
    plan = lab_hosts.plan_host(
        "unit",
        "unit-r",
        [
            ("unit-lan", "10.100.241.1"),
            ("unit-core", "10.100.242.1"),
            ("unit-link", "10.100.243.1"),
        ],
        NETS,
        router=True,
    )
    assert plan.interfaces == [("unit-lan", "eth0"), ("unit-core", "eth1"), ("unit-link", "eth2")]
    args = plan.run_args
    assert "unit-core:ip=10.100.242.1,interface_name=eth1" in args
    assert "net.ipv4.ip_forward=1" in args
    caps = [args[i + 1] for i, a in enumerate(args) if a == "--cap-add"]
    assert caps == ["NET_ADMIN", "NET_RAW"]
    assert "--privileged" not in args and not any("SYS_ADMIN" in a for a in args)


def test_plan_of_the_egress_host_puts_the_egress_network_last() -> None:
    plan = lab_hosts.plan_host(
        "unit",
        "unit-p",
        [("unit-core", "10.100.242.20")],
        NETS,
        egress=True,
        routes=[("10.100.241.0/24", "10.100.242.1")],
    )
    assert plan.interfaces == [("unit-core", "eth0"), ("fd-unit-egress", "eth1")]
    assert "fd-unit-egress:interface_name=eth1" in plan.run_args
    assert "--dns" not in plan.run_args  # it resolves the mirrors through this machine
    assert plan.spec["routes"] == [["10.100.241.0/24", "10.100.242.1"]]


def test_plan_gateway_is_a_router_on_one_of_the_hosts_networks() -> None:
    plan = lab_hosts.plan_host(
        "unit", "unit-c", [("unit-lan", "10.100.241.10")], NETS, gateway="10.100.241.1"
    )
    assert plan.spec["gateway"] == "10.100.241.1"
    assert "net.ipv4.ip_forward=0" in plan.run_args


@pytest.mark.parametrize(
    ("attachments", "kwargs", "match"),
    [
        ([], {}, "at least one network"),
        ([("unit-nope", "10.1.1.1")], {}, "does not exist"),
        ([("podman", "10.88.0.5")], {}, "not an internal lab network"),
        ([("unit-lan", "10.100.241.254")], {}, "not a usable host address"),
        ([("unit-lan", "10.100.242.10")], {}, "not a usable host address"),
        ([("unit-lan", "x")], {}, "invalid address"),
        ([("unit-lan", "10.100.241.10"), ("unit-lan", "10.100.241.11")], {}, "given twice"),
        ([("fd-unit-egress", "10.89.0.5")], {}, "egress=True"),
        ([("unit-lan", "10.100.241.1")], {"router": True, "egress": True}, "cannot have egress"),
        ([("unit-lan", "10.100.241.1")], {"router": True, "gateway": "10.100.241.2"}, "FRR"),
        ([("unit-lan", "10.100.241.10")], {"egress": True, "gateway": "10.100.241.1"}, "egress"),
        ([("unit-lan", "10.100.241.10")], {"gateway": "10.100.242.1"}, "none of the host's"),
        ([("unit-lan", "10.100.241.10")], {"gateway": "10.100.241.10"}, "not this host"),
        ([("unit-lan", "10.100.241.10")], {"gateway": "10.100.241.254"}, "bridge"),
        ([("unit-lan", "10.100.241.10")], {"routes": [("0.0.0.0/0", "10.100.241.1")]}, "gateway="),
        ([("unit-lan", "10.100.241.10")], {"routes": [("10.1.0.0/8", "10.100.241.1")]}, "prefix"),
    ],
)
def test_plan_refuses_what_the_lab_cannot_or_must_not_do(
    attachments: list[tuple[str, str]], kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(lab_runner.LabError, match=match):
        lab_hosts.plan_host("unit", "unit-x", attachments, NETS, **kwargs)  # type: ignore[arg-type]


def _container(labels: dict[str, str], nets: dict[str, str]) -> dict[str, object]:
    return {
        "Name": "unit-r",
        "Id": "abc",
        "ImageName": "img",
        "State": {"Status": "running"},
        "Config": {"Labels": labels},
        "NetworkSettings": {"Networks": {n: {"IPAddress": ip} for n, ip in nets.items()}},
    }


def test_host_summary_lists_the_management_network_first() -> None:
    plan = lab_hosts.plan_host(
        "unit", "unit-r", [("unit-lan", "10.100.241.1"), ("unit-core", "10.100.242.1")], NETS,
        router=True,
    )  # fmt: skip
    # Podman reports networks sorted by name: unit-core before unit-lan
    raw = _container(
        {lab_runner.LABEL: "unit", lab_runner.SPEC_LABEL: plan.spec_label},
        {"unit-core": "10.100.242.1", "unit-lan": "10.100.241.1"},
    )
    summary = lab_hosts._host_summary(raw)
    assert (summary["network"], summary["ip"], summary["router"]) == (
        "unit-lan",
        "10.100.241.1",
        "true",
    )
    assert summary["networks"] == "unit-lan=10.100.241.1,unit-core=10.100.242.1"
    assert summary["interfaces"] == "unit-lan=eth0,unit-core=eth1"
    assert lab_runner._spec_of(raw) == plan.spec


def test_host_summary_of_a_host_made_before_specs() -> None:
    summary = lab_hosts._host_summary(
        _container({lab_runner.LABEL: "unit"}, {"unit-mgmt": "10.100.240.10"}))
    assert (summary["network"], summary["ip"], summary["interfaces"]) == (
        "unit-mgmt",
        "10.100.240.10",
        "unit-mgmt=eth0",
    )
    assert summary["router"] == summary["egress"] == "false"


# --------------------------------------------------------------------------- link shaping


def test_tbf_args_carry_the_rate_in_bits_and_a_bucket_of_10_ms() -> None:
    assert lab_shaping.tbf_args(10) == [
        "tbf", "rate", "10000000bit", "burst", "16384", "latency", "50ms",
    ]  # fmt: skip
    assert lab_shaping.tbf_args(1000)[4] == "1250000"
    assert lab_shaping.tbf_args(0.5)[2] == "500000bit"
    for bad in (0, -1, 100_001):
        with pytest.raises(lab_runner.LabError, match="not in"):
            lab_shaping.tbf_args(bad)


def test_tbf_mbit_reads_tc_json() -> None:
    shaped = [{"kind": "tbf", "handle": "8001:", "root": True, "options": {"rate": 1250000}}]
    assert lab_shaping.tbf_mbit(shaped) == 10.0
    assert lab_shaping.tbf_mbit([{"kind": "tbf", "root": True, "options": {"rate": 62500}}]) == 0.5
    assert lab_shaping.tbf_mbit([{"kind": "noqueue", "handle": "0:", "root": True}]) is None
    assert lab_shaping.tbf_mbit([]) is None and lab_shaping.tbf_mbit(None) is None


def test_shaping_refuses_odd_interface_names() -> None:
    with pytest.raises(lab_runner.LabError, match="invalid interface name"):
        lab_shaping.shape_link("unit-x", "eth0; reboot", 10, 10)
