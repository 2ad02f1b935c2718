"""What the role ``common`` promises on every host, checked the way an operator would.

Run by the platform against each host, for example::

    pytest fellesdrift/verify/suites/test_common.py --hosts=ssh://ops@host \
        --ssh-config=.lab/<env>/ssh_config
    pytest fellesdrift/verify/suites/test_common.py --ansible-inventory=<inventory> \
        --hosts=ansible://all

Commands that need root run through sudo (the platform connects as ``ops``). What the checks
read from a host is gathered at once (:func:`facts`: one round trip, the commands run side by
side on the host, then :func:`probes` for what depends on the first answers), and each check
asserts on the answers of the same commands it would have run itself.
"""

from __future__ import annotations

import base64
import re
import shlex
from typing import Any

import pytest
from conftest import Ran, run_all

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


CHRONY_CONF = "/etc/chrony/chrony.conf"
RESOLV_CONF = "/etc/resolv.conf"
#: The units whose state the checks read (systemctl is-active / is-enabled).
UNITS = ("ssh", "chrony", "systemd-journald", "apt-daily-upgrade.timer")
q = shlex.quote


def _ca_check(certificates: list[dict[str, Any]]) -> str:
    """Prints yes/no per certificate: is it in the store OpenSSL and Python trust by default."""
    check = (
        "import base64, ssl, sys\n"
        "ctx = ssl.create_default_context()\n"
        "store = ctx.get_ca_certs(binary_form=True)\n"
        "ders = [ssl.PEM_cert_to_DER_cert(base64.b64decode(a).decode()) for a in sys.argv[1:]]\n"
        "print(' '.join('yes' if d in store else 'no' for d in ders))\n"
    )
    encoded = [base64.b64encode(c["pem"].encode()).decode() for c in certificates]
    return f"python3 -c {q(check)} {' '.join(encoded)}"


def ca_path(cert: dict[str, Any]) -> str:
    return f"/usr/local/share/ca-certificates/{cert['name']}.crt"


def _commands(v: dict[str, Any]) -> dict[str, str | tuple[str, str]]:
    """Every command the checks of this module read, as testinfra's modules would run them
    (service: systemctl is-active/is-enabled; user: id, id -nG, getent passwd; group: getent
    group; file: test -e, stat -Lc, cat --; package: dpkg-query), keyed by themselves or, for a
    long one, by a name; (command, "root") runs through sudo."""
    spec = f"user={v['common__ops_user']},host=localhost,addr=127.0.0.1"
    users = [v["common__ops_user"], *(a["name"] for a in v["common__admin_users"])]
    commands: dict[str, str | tuple[str, str]] = {
        "sshd -T": (f"/usr/sbin/sshd -T -C {q(spec)}", "root"),
        "/usr/sbin/sshd -t": ("/usr/sbin/sshd -t", "root"),
        "chronyc -n tracking": ("chronyc -n tracking", "root"),
        "ps chronyd": "ps -C chronyd -ww -o args=",
        "systemd-detect-virt": "systemd-detect-virt --container --quiet",
        "journald config": ("systemd-analyze cat-config systemd/journald.conf", "root"),
        "journald started":
            "systemctl show systemd-journald -p ActiveEnterTimestamp --timestamp=unix --value",
        "apt-config dump": "apt-config dump",
        "apt proxy": "apt-config dump --format '%v%n' Acquire::http::Proxy",
        "unattended-upgrades": "dpkg-query -f '${Status}' -W unattended-upgrades",
        f"getent group {v['common__admin_group']}": f"getent group {q(v['common__admin_group'])}",
        f"cat {SUDOERS_FILE}": (f"cat {SUDOERS_FILE}", "root"),
        "visudo -c": ("visudo -c", "root"),
    }
    for unit in UNITS:
        for verb in ("is-active", "is-enabled"):
            commands[f"systemctl {verb} {unit}"] = f"systemctl {verb} {q(unit)}"
    for user in users:
        for command in ("id", "id -nG", "getent passwd"):
            commands[f"{command} {user}"] = f"{command} {q(user)}"
    for path in (CHRONY_CONF, v["common__sysctl_file"], JOURNALD_DROPIN, RESOLV_CONF):
        commands[f"cat -- {path}"] = f"cat -- {q(path)}"
    for path in (CHRONY_CONTAINER_DROPIN, v["common__sysctl_file"], JOURNALD_DROPIN, SUDOERS_FILE):
        commands[f"test -e {path}"] = f"test -e {q(path)}"
        commands[f"stat {path}"] = f"stat -Lc '%U %G %a %Y' {q(path)}"
    if v["common__ca_certificates"]:
        commands["ca trusted"] = _ca_check(v["common__ca_certificates"])
        for cert in v["common__ca_certificates"]:
            commands[f"openssl verify {ca_path(cert)}"] = (
                f"openssl verify -CAfile /etc/ssl/certs/ca-certificates.crt {q(ca_path(cert))}")
    return commands


class Facts:
    """The answers of :func:`_commands` on one host, read the way testinfra's modules read
    them."""

    def __init__(self, ran: dict[str, Ran]) -> None:
        self.ran = ran

    def __getitem__(self, key: str) -> Ran:
        return self.ran[key]

    def output(self, key: str) -> str:
        """stdout of a command that must succeed (the check fails with its stderr)."""
        result = self.ran[key]
        assert result.rc == 0, f"{result.command!r} exited {result.rc}: {result.stderr.strip()}"
        return result.stdout

    def running(self, unit: str) -> bool:
        return self.ran[f"systemctl is-active {unit}"].rc == 0

    def enabled(self, unit: str) -> bool:
        return self.ran[f"systemctl is-enabled {unit}"].rc == 0

    def _test(self, key: str) -> bool:
        """A test whose exit code means yes (0) or no (1); anything else is an error."""
        result = self.ran[key]
        assert result.rc in (0, 1), f"{result.command!r} exited {result.rc}: {result.stderr}"
        return result.rc == 0

    def exists(self, path: str) -> bool:
        return self._test(f"test -e {path}")

    def content(self, path: str) -> str:
        result = self.ran[f"cat -- {path}"]
        if result.rc != 0:
            raise RuntimeError(f"Unexpected output {result}")
        return result.stdout

    def stat(self, path: str) -> tuple[str, str, int, int]:
        """(user, group, mode, mtime) of a file."""
        user, group, mode, mtime = self.ran[f"stat {path}"].output().split()
        return user, group, int(mode, 8), int(mtime)

    def user_exists(self, name: str) -> bool:
        return self._test(f"id {name}")

    def groups(self, name: str) -> list[str]:
        return self.ran[f"id -nG {name}"].output().split(" ")

    def home(self, name: str) -> str:
        return self.ran[f"getent passwd {name}"].output().split(":")[5]


@pytest.fixture(scope="module")
def facts(host: Any, common_vars: dict[str, Any]) -> Facts:
    """What the checks of this module read from the host, gathered in one round trip."""
    return Facts(run_all(host, _commands(common_vars)))


# --------------------------------------------------------------------------- SSH


@pytest.fixture(scope="module")
def sshd(facts: Facts) -> dict[str, list[str]]:
    """The effective sshd configuration (`sshd -T`) for a login of the operations user."""
    out = facts.output("sshd -T")
    config: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        config.setdefault(key.lower(), []).append(value.strip())
    return config


def one(config: dict[str, list[str]], key: str) -> str:
    assert key in config, f"sshd -T does not report {key}"
    return config[key][0]


def test_sshd_configuration_is_valid(facts: Facts) -> None:
    facts.output("/usr/sbin/sshd -t")


def test_sshd_is_running_and_enabled(facts: Facts) -> None:
    assert facts.running("ssh")
    assert facts.enabled("ssh")


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
    assert int(one(sshd, "maxauthtries")) == common_vars["common__ssh_max_auth_tries"]
    assert int(one(sshd, "maxauthtries")) < 6, "MaxAuthTries is not tighter than sshd's default"
    assert int(one(sshd, "logingracetime")) == common_vars["common__ssh_login_grace_time"]
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
    facts: Facts, sshd: dict[str, list[str]], common_vars: dict[str, Any]
) -> None:
    allowed = {group for line in sshd.get("allowgroups", []) for group in line.split()}
    assert common_vars["common__admin_group"] in allowed
    ops_groups = set(facts.groups(common_vars["common__ops_user"]))
    assert ops_groups & allowed, (
        f"{common_vars['common__ops_user']} (groups {sorted(ops_groups)}) is locked out by "
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


def ssh_to_self(target: tuple[str, str], *options: str) -> str:
    """The command that tries to log in to the host's own sshd (from the host, to itself)
    without a key."""
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
    return f"ssh -p {port} {args} nobody@{address} true || exit 1"


#: The logins :func:`probes` tries: (key, ssh options); "" is a login with no option changed.
WEAK_ALGORITHMS = [
    ("Ciphers=aes256-cbc", "no matching cipher"),
    ("MACs=hmac-sha1", "no matching MAC"),
    ("KexAlgorithms=diffie-hellman-group14-sha1", "no matching key exchange"),
]


def _weak(option: str) -> list[str]:
    # A CTR cipher so that the MAC is negotiated (AEAD ciphers carry their own).
    return [option] if option.startswith("Ciphers") else ["Ciphers=aes128-ctr", option]


@pytest.fixture(scope="module")
def probes(host: Any, facts: Facts, sysctl_file: dict[str, str], ssh_target: tuple[str, str],
           common_vars: dict[str, Any]) -> dict[str, Ran]:
    """What depends on the first answers, in a second round trip: logins to the host's own
    sshd, the live values of the sysctl file's net.* keys, the admin users' authorized keys."""
    commands: dict[str, str | tuple[str, str]] = {"login": ssh_to_self(ssh_target)}
    for option, _ in WEAK_ALGORITHMS:
        commands[f"login {option}"] = ssh_to_self(ssh_target, *_weak(option))
    keys = sorted(k for k in sysctl_file if k.startswith("net."))
    if keys:
        commands["sysctl"] = ("sysctl -e " + " ".join(keys), "root")
    for admin in common_vars["common__admin_users"]:
        if admin.get("state", "present") != "absent" and facts.user_exists(admin["name"]):
            path = f"{facts.home(admin['name'])}/.ssh/authorized_keys"
            commands[f"keys {admin['name']}"] = (f"cat {path}", "root")
    return run_all(host, commands)


def test_running_sshd_accepts_public_keys_only(probes: dict[str, Ran]) -> None:
    result = probes["login"]
    assert result.rc != 0
    match = re.search(r"Permission denied \(([^)]*)\)", result.stderr)
    assert match, f"unexpected answer from sshd: {result.stderr.strip()}"
    assert match.group(1).split(",") == ["publickey"]


@pytest.mark.parametrize(("option", "refusal"), WEAK_ALGORITHMS)
def test_running_sshd_refuses_weak_algorithms(
    probes: dict[str, Ran], option: str, refusal: str
) -> None:
    result = probes[f"login {option}"]
    assert result.rc != 0
    assert refusal in result.stderr, result.stderr.strip()


# -------------------------------------------------------------------------- time


def test_chrony_is_running_and_enabled(facts: Facts) -> None:
    assert facts.running("chrony")
    assert facts.enabled("chrony")


def test_chrony_answers_tracking(facts: Facts) -> None:
    out = facts.output("chronyc -n tracking")
    assert re.search(r"^Reference ID\s*:", out, re.MULTILINE), out
    assert re.search(r"^Leap status\s*:", out, re.MULTILINE), out


def test_chrony_uses_configured_servers_only(facts: Facts, common_vars: dict[str, Any]) -> None:
    conf = facts.content(CHRONY_CONF)
    directives = [line.split() for line in conf.splitlines() if line.strip()]
    servers = [d[1] for d in directives if d[0] == "server"]
    assert servers == list(common_vars["common__ntp_servers"])
    assert not [d for d in directives if d[0] in ("pool", "peer", "sourcedir")], (
        "chrony.conf has time sources besides common__ntp_servers"
    )


def test_chronyd_leaves_the_clock_alone_only_in_a_container(facts: Facts) -> None:
    is_container = facts["systemd-detect-virt"].rc == 0
    # chronyd forks a helper (name resolution, NTS); both carry the command line. ps -C selects
    # by command name, as testinfra's process.filter(comm=...).
    processes = [line.strip() for line in facts["ps chronyd"].stdout.splitlines() if line.strip()]
    assert processes, "chronyd is not running"
    for chronyd in processes:
        args = chronyd.split()
        if is_container:
            assert "-x" in args, f"chronyd in a container must run with -x: {chronyd}"
        else:
            assert "-x" not in args, f"chronyd on a VM must discipline the clock: {chronyd}"
    assert facts.exists(CHRONY_CONTAINER_DROPIN) == is_container


# ------------------------------------------------------------------------ sysctl


@pytest.fixture(scope="module")
def sysctl_file(facts: Facts, common_vars: dict[str, Any]) -> dict[str, str]:
    """Keys and values of the role's sysctl.d file ({} when it is missing)."""
    path = common_vars["common__sysctl_file"]
    settings: dict[str, str] = {}
    if not facts.exists(path):
        return settings
    for line in facts.content(path).splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")) and "=" in line:
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def test_sysctl_file_exists(facts: Facts, common_vars: dict[str, Any]) -> None:
    path = common_vars["common__sysctl_file"]
    assert facts.exists(path), f"{path} is missing"
    assert facts.stat(path)[:2] == ("root", "root")


def test_sysctl_file_holds_the_hardening_policy(sysctl_file: dict[str, str]) -> None:
    wrong = {k: sysctl_file.get(k) for k, v in SYSCTL_POLICY.items() if sysctl_file.get(k) != v}
    assert not wrong, f"missing or weaker than policy {SYSCTL_POLICY}: {wrong}"
    assert sysctl_file.get(SYSCTL_RP_FILTER) in ("1", "2")


def test_sysctl_network_values_are_live(probes: dict[str, Ran], sysctl_file: dict[str, str]
                                        ) -> None:
    """The network-namespaced (net.*) values of the file hold in the running kernel.

    In a container whose /proc/sys is read-only the container runtime must set them
    (podman run --sysctl); the role cannot, and this test then says which ones are off.
    """
    keys = sorted(k for k in sysctl_file if k.startswith("net."))
    assert keys, "the sysctl file sets no net.* keys"
    out = probes["sysctl"].output()
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


def test_journald_limits(facts: Facts, common_vars: dict[str, Any]) -> None:
    assert facts.exists(JOURNALD_DROPIN)
    merged = facts.output("journald config")
    assert f"# {JOURNALD_DROPIN}" in merged, "journald does not read the drop-in"
    settings = dict(
        line.split("=", 1) for line in facts.content(JOURNALD_DROPIN).splitlines() if "=" in line
    )
    assert settings.get("SystemMaxUse") == common_vars["common__journald_system_max_use"]
    assert settings.get("MaxRetentionSec") == common_vars["common__journald_max_retention"]


def test_journald_runs_with_its_limits(facts: Facts) -> None:
    assert facts.running("systemd-journald")
    started = facts["journald started"].output()
    written = facts.stat(JOURNALD_DROPIN)[3]
    assert started.startswith("@"), started
    assert int(started[1:]) >= int(written), "journald was not restarted after its limits changed"


# --------------------------------------------------------------- unattended upgrades


@pytest.fixture(scope="module")
def apt_config(facts: Facts) -> str:
    return facts["apt-config dump"].output()


def test_unattended_upgrades_is_installed(facts: Facts) -> None:
    # As testinfra's package(...).is_installed reads dpkg-query's status.
    result = facts["unattended-upgrades"]
    status = result.stdout.strip().split()
    assert result.rc == 0 and status[0] in ("install", "hold") and status[1:3] == [
        "ok", "installed"], f"unattended-upgrades is not installed: {result.stdout.strip()}"


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


def test_apt_upgrade_timer_is_active(facts: Facts) -> None:
    assert facts.enabled("apt-daily-upgrade.timer")
    assert facts.running("apt-daily-upgrade.timer")


# ------------------------------------------------------------------ admins and sudo


def test_admin_group_exists(facts: Facts, common_vars: dict[str, Any]) -> None:
    result = facts[f"getent group {common_vars['common__admin_group']}"]
    assert result.rc in (0, 2), f"getent group exited {result.rc}: {result.stderr.strip()}"
    assert result.rc == 0


def test_operations_user_is_admin(facts: Facts, common_vars: dict[str, Any]) -> None:
    assert facts.user_exists(common_vars["common__ops_user"])
    assert common_vars["common__admin_group"] in facts.groups(common_vars["common__ops_user"])


def test_sudoers_grant_for_admin_group(facts: Facts, common_vars: dict[str, Any]) -> None:
    assert facts.exists(SUDOERS_FILE)
    user, group, mode, _ = facts.stat(SUDOERS_FILE)
    assert (user, group, mode) == ("root", "root", 0o440)
    rules = [
        line.split()
        for line in facts.output(f"cat {SUDOERS_FILE}").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert [f"%{common_vars['common__admin_group']}", "ALL=(ALL:ALL)"] in [r[:2] for r in rules]


def test_sudo_configuration_is_valid(facts: Facts) -> None:
    facts.output("visudo -c")


def test_admin_users(facts: Facts, probes: dict[str, Ran], common_vars: dict[str, Any]) -> None:
    admins = common_vars["common__admin_users"]
    if not admins:
        pytest.skip("no admin users configured for this host")
    group = common_vars["common__admin_group"]
    for admin in admins:
        exists = facts.user_exists(admin["name"])
        if admin.get("state", "present") == "absent":
            assert not exists, f"{admin['name']} should have been removed"
            continue
        assert exists, f"{admin['name']} is missing"
        assert group in facts.groups(admin["name"])
        keys = [
            line.strip()
            for line in probes[f"keys {admin['name']}"].output().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        assert keys == [k.strip() for k in admin.get("ssh_keys", [])]


# ----------------------------------------------------- apt proxy, resolver, CA certificates


def test_apt_proxy_setting(facts: Facts, common_vars: dict[str, Any], function: str) -> None:
    """apt goes through the configured apt proxy, or fetches directly when there is none."""
    if not function:
        pytest.skip("no inventory: the host's apt proxy is unknown")
    configured = facts["apt proxy"].output().strip()
    assert configured == common_vars["common__apt_proxy_url"]


def test_resolver_uses_the_configured_dns_servers(facts: Facts, common_vars: dict[str, Any]
                                                  ) -> None:
    servers = common_vars["common__dns_servers"]
    if not servers:
        pytest.skip("no DNS servers configured: the host keeps its provisioned resolver")
    conf = facts.content(RESOLV_CONF)
    assert re.findall(r"^nameserver\s+(\S+)", conf, re.M) == list(servers)
    search = [d for line in re.findall(r"^search\s+(.*)$", conf, re.M) for d in line.split()]
    assert search == list(common_vars["common__dns_search"])


def test_ca_certificates_are_trusted(facts: Facts, common_vars: dict[str, Any]) -> None:
    """Each configured CA is in the store OpenSSL and Python trust by default (and verifies
    against it, which for a self-signed CA means it is in the bundle)."""
    certificates = common_vars["common__ca_certificates"]
    if not certificates:
        pytest.skip("no CA certificates configured")
    out = facts["ca trusted"].output().split()
    untrusted = [c["name"] for c, ok in zip(certificates, out, strict=True) if ok != "yes"]
    assert not untrusted, f"not in the default trust store: {untrusted}"
    for cert in certificates:
        path = ca_path(cert)
        result = facts[f"openssl verify {path}"]
        assert result.rc == 0, f"{path}: {result.stdout.strip()} {result.stderr.strip()}"
