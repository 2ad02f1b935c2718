"""What the role ``common`` promises on every host, checked the way an operator would.

Run by the platform against each host, for example::

    pytest fellesdrift/verify/suites/test_common.py --hosts=ssh://ops@host \
        --ssh-config=.lab/<env>/ssh_config
    pytest fellesdrift/verify/suites/test_common.py --ansible-inventory=<inventory> \
        --hosts=ansible://all

Commands that need root run through sudo (the platform connects as ``ops``).
"""

from __future__ import annotations

import base64
import re
import shlex
from typing import Any

import pytest

# The policy, independent of the role's defaults: a host may offer fewer algorithms than
# these, never others.
MODERN_CIPHERS = {
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
}
MODERN_MACS = {
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
}
MODERN_KEX = {
    "sntrup761x25519-sha512@openssh.com",
    "mlkem768x25519-sha256",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
}

# Kernel network hardening every host must have (value as sysctl prints it).
SYSCTL_POLICY = {
    "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.default.accept_redirects": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv4.conf.all.accept_source_route": "0",
    "net.ipv4.conf.default.accept_source_route": "0",
    "net.ipv4.conf.all.log_martians": "1",
    "net.ipv4.tcp_syncookies": "1",
    "net.ipv4.icmp_echo_ignore_broadcasts": "1",
    "net.ipv6.conf.all.accept_redirects": "0",
    "net.ipv6.conf.default.accept_redirects": "0",
}
SYSCTL_RP_FILTER = "net.ipv4.conf.all.rp_filter"  # 1 (strict) or 2 (loose), never 0

SUDOERS_FILE = "/etc/sudoers.d/fellesdrift-admins"
JOURNALD_DROPIN = "/etc/systemd/journald.conf.d/60-fellesdrift.conf"
CHRONY_CONTAINER_DROPIN = "/etc/systemd/system/chrony.service.d/50-fellesdrift-container.conf"


def root(host: Any, command: str, *args: str) -> Any:
    """Run a command as root and return its result (rc, stdout, stderr)."""
    with host.sudo():
        return host.run(command, *args)


def root_output(host: Any, command: str, *args: str) -> str:
    """Run a command as root; fail the test with its stderr when it fails."""
    result = root(host, command, *args)
    assert result.rc == 0, f"{result.command!r} exited {result.rc}: {result.stderr.strip()}"
    return str(result.stdout)


# --------------------------------------------------------------------------- SSH


@pytest.fixture(scope="module")
def sshd(host: Any, common_vars: dict[str, Any]) -> dict[str, list[str]]:
    """The effective sshd configuration (`sshd -T`) for a login of the operations user."""
    spec = f"user={common_vars['common_ops_user']},host=localhost,addr=127.0.0.1"
    out = root_output(host, "/usr/sbin/sshd -T -C %s", spec)
    config: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        config.setdefault(key.lower(), []).append(value.strip())
    return config


def one(config: dict[str, list[str]], key: str) -> str:
    assert key in config, f"sshd -T does not report {key}"
    return config[key][0]


def test_sshd_configuration_is_valid(host: Any) -> None:
    root_output(host, "/usr/sbin/sshd -t")


def test_sshd_is_running_and_enabled(host: Any) -> None:
    ssh = host.service("ssh")
    assert ssh.is_running
    assert ssh.is_enabled


@pytest.mark.parametrize(
    ("keyword", "wanted"),
    [
        ("passwordauthentication", "no"),
        ("kbdinteractiveauthentication", "no"),
        ("permitemptypasswords", "no"),
        ("pubkeyauthentication", "yes"),
        ("permitrootlogin", "no"),
        ("x11forwarding", "no"),
        ("hostbasedauthentication", "no"),
    ],
)
def test_sshd_effective_setting(sshd: dict[str, list[str]], keyword: str, wanted: str) -> None:
    assert one(sshd, keyword) == wanted


def test_sshd_login_limits(sshd: dict[str, list[str]], common_vars: dict[str, Any]) -> None:
    assert int(one(sshd, "maxauthtries")) == common_vars["common_ssh_max_auth_tries"]
    assert int(one(sshd, "maxauthtries")) < 6, "MaxAuthTries is not tighter than sshd's default"
    assert int(one(sshd, "logingracetime")) == common_vars["common_ssh_login_grace_time"]
    assert 0 < int(one(sshd, "logingracetime")) <= 60


@pytest.mark.parametrize(
    ("keyword", "allowed"),
    [("ciphers", MODERN_CIPHERS), ("macs", MODERN_MACS), ("kexalgorithms", MODERN_KEX)],
)
def test_sshd_offers_modern_algorithms_only(
    sshd: dict[str, list[str]], keyword: str, allowed: set[str]
) -> None:
    offered = set(one(sshd, keyword).split(","))
    assert offered, f"sshd offers no {keyword}"
    assert offered <= allowed, f"{keyword} not in the modern list: {sorted(offered - allowed)}"


def test_sshd_allows_admin_group_and_operations_user(
    host: Any, sshd: dict[str, list[str]], common_vars: dict[str, Any]
) -> None:
    allowed = {group for line in sshd.get("allowgroups", []) for group in line.split()}
    assert common_vars["common_admin_group"] in allowed
    ops_groups = set(host.user(common_vars["common_ops_user"]).groups)
    assert ops_groups & allowed, (
        f"{common_vars['common_ops_user']} (groups {sorted(ops_groups)}) is locked out by "
        f"AllowGroups {sorted(allowed)}"
    )


@pytest.fixture(scope="module")
def ssh_target(sshd: dict[str, list[str]]) -> tuple[str, str]:
    """Where the host's own sshd listens, as seen from the host itself."""
    port = one(sshd, "port")
    addresses = [line.split()[0] for line in sshd.get("listenaddress", [])]
    hosts = [a.rsplit(":", 1)[0].strip("[]") for a in addresses]
    for candidate in ("0.0.0.0", "127.0.0.1"):
        if candidate in hosts:
            return "127.0.0.1", port
    if "::" in hosts:
        return "::1", port
    return (hosts[0] if hosts else "127.0.0.1"), port


def ssh_to_self(host: Any, target: tuple[str, str], *options: str) -> Any:
    """Try to log in to the host's own sshd (from the host, to itself) without a key."""
    address, port = target
    base = [
        "BatchMode=yes",
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "PubkeyAuthentication=no",
        "ConnectTimeout=10",
    ]
    args = " ".join(f"-o {opt}" for opt in [*base, *options])
    # ssh exits 255 when the login is refused; over testinfra's own ssh backend that code would
    # read as a failed connection to the host under test, so report it as 1.
    return host.run(f"ssh -p {port} {args} nobody@{address} true || exit 1")


def test_running_sshd_accepts_public_keys_only(host: Any, ssh_target: tuple[str, str]) -> None:
    result = ssh_to_self(host, ssh_target)
    assert result.rc != 0
    match = re.search(r"Permission denied \(([^)]*)\)", result.stderr)
    assert match, f"unexpected answer from sshd: {result.stderr.strip()}"
    assert match.group(1).split(",") == ["publickey"]


@pytest.mark.parametrize(
    ("option", "refusal"),
    [
        ("Ciphers=aes256-cbc", "no matching cipher"),
        ("MACs=hmac-sha1", "no matching MAC"),
        ("KexAlgorithms=diffie-hellman-group14-sha1", "no matching key exchange"),
    ],
)
def test_running_sshd_refuses_weak_algorithms(
    host: Any, ssh_target: tuple[str, str], option: str, refusal: str
) -> None:
    # A CTR cipher so that the MAC is negotiated (AEAD ciphers carry their own).
    options = [option] if option.startswith("Ciphers") else ["Ciphers=aes128-ctr", option]
    result = ssh_to_self(host, ssh_target, *options)
    assert result.rc != 0
    assert refusal in result.stderr, result.stderr.strip()


# -------------------------------------------------------------------------- time


def test_chrony_is_running_and_enabled(host: Any) -> None:
    chrony = host.service("chrony")
    assert chrony.is_running
    assert chrony.is_enabled


def test_chrony_answers_tracking(host: Any) -> None:
    out = root_output(host, "chronyc -n tracking")
    assert re.search(r"^Reference ID\s*:", out, re.MULTILINE), out
    assert re.search(r"^Leap status\s*:", out, re.MULTILINE), out


def test_chrony_uses_configured_servers_only(host: Any, common_vars: dict[str, Any]) -> None:
    conf = host.file("/etc/chrony/chrony.conf").content_string
    directives = [line.split() for line in conf.splitlines() if line.strip()]
    servers = [d[1] for d in directives if d[0] == "server"]
    assert servers == list(common_vars["common_ntp_servers"])
    assert not [d for d in directives if d[0] in ("pool", "peer", "sourcedir")], (
        "chrony.conf has time sources besides common_ntp_servers"
    )


def test_chronyd_leaves_the_clock_alone_only_in_a_container(host: Any, is_container: bool) -> None:
    # chronyd forks a helper (name resolution, NTS); both carry the command line.
    processes = host.process.filter(comm="chronyd")
    assert processes, "chronyd is not running"
    for chronyd in processes:
        args = chronyd.args.split()
        if is_container:
            assert "-x" in args, f"chronyd in a container must run with -x: {chronyd.args}"
        else:
            assert "-x" not in args, f"chronyd on a VM must discipline the clock: {chronyd.args}"
    assert host.file(CHRONY_CONTAINER_DROPIN).exists == is_container


# ------------------------------------------------------------------------ sysctl


@pytest.fixture(scope="module")
def sysctl_file(host: Any, common_vars: dict[str, Any]) -> dict[str, str]:
    """Keys and values of the role's sysctl.d file ({} when it is missing)."""
    f = host.file(common_vars["common_sysctl_file"])
    settings: dict[str, str] = {}
    if not f.exists:
        return settings
    for line in f.content_string.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")) and "=" in line:
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def test_sysctl_file_exists(host: Any, common_vars: dict[str, Any]) -> None:
    f = host.file(common_vars["common_sysctl_file"])
    assert f.exists, f"{common_vars['common_sysctl_file']} is missing"
    assert (f.user, f.group) == ("root", "root")


def test_sysctl_file_holds_the_hardening_policy(sysctl_file: dict[str, str]) -> None:
    wrong = {k: sysctl_file.get(k) for k, v in SYSCTL_POLICY.items() if sysctl_file.get(k) != v}
    assert not wrong, f"missing or weaker than policy {SYSCTL_POLICY}: {wrong}"
    assert sysctl_file.get(SYSCTL_RP_FILTER) in ("1", "2")


def test_sysctl_network_values_are_live(host: Any, sysctl_file: dict[str, str]) -> None:
    """The network-namespaced (net.*) values of the file hold in the running kernel.

    In a container whose /proc/sys is read-only the container runtime must set them
    (podman run --sysctl); the role cannot, and this test then says which ones are off.
    """
    keys = sorted(k for k in sysctl_file if k.startswith("net."))
    assert keys, "the sysctl file sets no net.* keys"
    out = root_output(host, "sysctl -e " + " ".join(keys))
    live = {
        key.strip(): value.strip()
        for key, _, value in (line.partition("=") for line in out.splitlines())
    }
    wrong = {
        k: {"file": sysctl_file[k], "live": live.get(k)}
        for k in keys
        if live.get(k) != sysctl_file[k]
    }
    assert not wrong, f"live values differ from the file: {wrong}"


# ----------------------------------------------------------------------- journald


def test_journald_limits(host: Any, common_vars: dict[str, Any]) -> None:
    dropin = host.file(JOURNALD_DROPIN)
    assert dropin.exists
    merged = root_output(host, "systemd-analyze cat-config systemd/journald.conf")
    assert f"# {JOURNALD_DROPIN}" in merged, "journald does not read the drop-in"
    settings = dict(
        line.split("=", 1) for line in dropin.content_string.splitlines() if "=" in line
    )
    assert settings.get("SystemMaxUse") == common_vars["common_journald_system_max_use"]
    assert settings.get("MaxRetentionSec") == common_vars["common_journald_max_retention"]


def test_journald_runs_with_its_limits(host: Any) -> None:
    journald = host.service("systemd-journald")
    assert journald.is_running
    started = host.check_output(
        "systemctl show systemd-journald -p ActiveEnterTimestamp --timestamp=unix --value"
    )
    written = host.file(JOURNALD_DROPIN).mtime.timestamp()
    assert started.startswith("@"), started
    assert int(started[1:]) >= int(written), "journald was not restarted after its limits changed"


# --------------------------------------------------------------- unattended upgrades


@pytest.fixture(scope="module")
def apt_config(host: Any) -> str:
    return str(host.check_output("apt-config dump"))


def test_unattended_upgrades_is_installed(host: Any) -> None:
    assert host.package("unattended-upgrades").is_installed


@pytest.mark.parametrize(
    "setting", ["APT::Periodic::Update-Package-Lists", "APT::Periodic::Unattended-Upgrade"]
)
def test_periodic_apt_job_is_on(apt_config: str, setting: str) -> None:
    assert f'{setting} "1";' in apt_config.splitlines()


def test_unattended_upgrades_takes_debian_security_updates(apt_config: str) -> None:
    patterns = re.findall(r'^Unattended-Upgrade::Origins-Pattern:: "([^"]*)";', apt_config, re.M)
    assert any("label=Debian-Security" in p for p in patterns), patterns
    # Security only: no pattern that takes every update of the Debian release.
    everything = [p for p in patterns if re.search(r"label=Debian(,|$)", p)]
    assert not everything, f"patterns beyond security updates: {everything}"


def test_apt_upgrade_timer_is_active(host: Any) -> None:
    timer = host.service("apt-daily-upgrade.timer")
    assert timer.is_enabled
    assert timer.is_running


# ------------------------------------------------------------------ admins and sudo


def test_admin_group_exists(host: Any, common_vars: dict[str, Any]) -> None:
    assert host.group(common_vars["common_admin_group"]).exists


def test_operations_user_is_admin(host: Any, common_vars: dict[str, Any]) -> None:
    ops = host.user(common_vars["common_ops_user"])
    assert ops.exists
    assert common_vars["common_admin_group"] in ops.groups


def test_sudoers_grant_for_admin_group(host: Any, common_vars: dict[str, Any]) -> None:
    sudoers = host.file(SUDOERS_FILE)
    assert sudoers.exists
    assert (sudoers.user, sudoers.group, sudoers.mode) == ("root", "root", 0o440)
    rules = [
        line.split()
        for line in root_output(host, f"cat {SUDOERS_FILE}").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert [f"%{common_vars['common_admin_group']}", "ALL=(ALL:ALL)"] in [r[:2] for r in rules]


def test_sudo_configuration_is_valid(host: Any) -> None:
    root_output(host, "visudo -c")


def test_admin_users(host: Any, common_vars: dict[str, Any]) -> None:
    admins = common_vars["common_admin_users"]
    if not admins:
        pytest.skip("no admin users configured for this host")
    group = common_vars["common_admin_group"]
    for admin in admins:
        user = host.user(admin["name"])
        if admin.get("state", "present") == "absent":
            assert not user.exists, f"{admin['name']} should have been removed"
            continue
        assert user.exists, f"{admin['name']} is missing"
        assert group in user.groups
        keys_file = f"{user.home}/.ssh/authorized_keys"
        keys = [
            line.strip()
            for line in root_output(host, f"cat {keys_file}").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        assert keys == [k.strip() for k in admin.get("ssh_keys", [])]


# ----------------------------------------------------- apt proxy, resolver, CA certificates


def test_apt_proxy_setting(host: Any, common_vars: dict[str, Any], function: str) -> None:
    """apt goes through the configured apt proxy, or fetches directly when there is none."""
    if not function:
        pytest.skip("no inventory: the host's apt proxy is unknown")
    configured = host.check_output("apt-config dump --format '%v%n' Acquire::http::Proxy").strip()
    assert configured == common_vars["common_apt_proxy_url"]


def test_resolver_uses_the_configured_dns_servers(host: Any, common_vars: dict[str, Any]) -> None:
    servers = common_vars["common_dns_servers"]
    if not servers:
        pytest.skip("no DNS servers configured: the host keeps its provisioned resolver")
    conf = host.file("/etc/resolv.conf").content_string
    assert re.findall(r"^nameserver\s+(\S+)", conf, re.M) == list(servers)
    search = [d for line in re.findall(r"^search\s+(.*)$", conf, re.M) for d in line.split()]
    assert search == list(common_vars["common_dns_search"])


def test_ca_certificates_are_trusted(host: Any, common_vars: dict[str, Any]) -> None:
    """Each configured CA is in the store OpenSSL and Python trust by default (and verifies
    against it, which for a self-signed CA means it is in the bundle)."""
    certificates = common_vars["common_ca_certificates"]
    if not certificates:
        pytest.skip("no CA certificates configured")
    check = (
        "import base64, ssl, sys\n"
        "ctx = ssl.create_default_context()\n"
        "store = ctx.get_ca_certs(binary_form=True)\n"
        "ders = [ssl.PEM_cert_to_DER_cert(base64.b64decode(a).decode()) for a in sys.argv[1:]]\n"
        "print(' '.join('yes' if d in store else 'no' for d in ders))\n"
    )
    encoded = [base64.b64encode(c["pem"].encode()).decode() for c in certificates]
    out = host.check_output(f"python3 -c {shlex.quote(check)} {' '.join(encoded)}").split()
    untrusted = [c["name"] for c, ok in zip(certificates, out, strict=True) if ok != "yes"]
    assert not untrusted, f"not in the default trust store: {untrusted}"
    for cert in certificates:
        path = f"/usr/local/share/ca-certificates/{cert['name']}.crt"
        result = host.run(f"openssl verify -CAfile /etc/ssl/certs/ca-certificates.crt {path}")
        assert result.rc == 0, f"{path}: {result.stdout.strip()} {result.stderr.strip()}"
