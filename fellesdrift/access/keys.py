"""SSH access to an environment's hosts: the key pair tools log in with, and known_hosts, which
pins every host's key as the driver read it from the host (strict host-key checking stays on)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fellesdrift.errors import FellesdriftError
from fellesdrift.files import locked, write_atomic
from fellesdrift.paths import lab_dir

_LOCK_NAME = ".lock"


class AccessError(FellesdriftError, ValueError):
    """A key is not what it should be, or ssh-keygen failed."""


def env_dir(env: str) -> Path:
    """The environment's own folder (0700), made on first use."""
    if not env or "/" in env or env.startswith("."):
        raise AccessError(f"invalid lab env name {env!r}")
    d = lab_dir(env)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def check_key_line(key: str, what: str) -> str:
    line = key.strip()
    parts = line.split()
    if (
        "\n" in line
        or len(parts) < 2
        or not (parts[0].startswith("ssh-") or parts[0].startswith("ecdsa-"))
    ):
        raise AccessError(f"{what}: not a single OpenSSH public key line: {line[:60]!r}")
    return line


def lab_keypair(env: str) -> tuple[Path, str]:
    """The lab's ed25519 key pair (made once); returns (private key path, public key line)."""
    d = env_dir(env)
    key = d / "id_ed25519"
    with locked(d / _LOCK_NAME):
        if not key.exists() or not key.with_suffix(".pub").exists():
            key.unlink(missing_ok=True)
            key.with_suffix(".pub").unlink(missing_ok=True)
            argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                    f"fellesdrift-lab-{env}", "-f", str(key)]
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise AccessError(f"ssh-keygen for lab {env}: {proc.stderr.strip()}")
        key.chmod(0o600)
    return key, key.with_suffix(".pub").read_text().strip()


def known_hosts_path(env: str) -> Path:
    return lab_dir(env) / "known_hosts"


def update_known_hosts_text(text: str, ip: str, host_key: str | None) -> str:
    """known_hosts content with every entry for ``ip`` removed, then ``ip host_key`` appended.

    ``host_key`` None only removes. Entries listing several hosts keep the others.
    """
    out: list[str] = []
    for line in text.splitlines():
        fields = line.split(maxsplit=1)
        if not fields or line.lstrip().startswith("#") or len(fields) < 2:
            out.append(line)
            continue
        marker = ""
        hosts_field, rest = fields
        if hosts_field.startswith("@"):  # @cert-authority / @revoked
            marker = hosts_field + " "
            sub = rest.split(maxsplit=1)
            if len(sub) < 2:
                out.append(line)
                continue
            hosts_field, rest = sub
        hosts = hosts_field.split(",")
        kept = [h for h in hosts if h not in (ip, f"[{ip}]:22")]
        if len(kept) == len(hosts):
            out.append(line)
        elif kept:
            out.append(f"{marker}{','.join(kept)} {rest}")
    if host_key is not None:
        key = " ".join(check_key_line(host_key, f"known_hosts entry for {ip}").split()[:2])
        out.append(f"{ip} {key}")
    return "".join(f"{line}\n" for line in out)


def _edit_known_hosts(env: str, ip: str, host_key: str | None) -> None:
    d = env_dir(env)
    path = known_hosts_path(env)
    with locked(d / _LOCK_NAME):
        text = path.read_text() if path.exists() else ""
        new = update_known_hosts_text(text, ip, host_key)
        if new != text:
            write_atomic(path, new, 0o600)


def known_hosts_add(env: str, ip: str, host_key: str) -> None:
    """Pin ``host_key`` for ``ip`` in the lab's known_hosts (replacing any line for ip)."""
    _edit_known_hosts(env, ip, host_key)


def known_hosts_remove(env: str, ip: str) -> None:
    if known_hosts_path(env).exists():
        _edit_known_hosts(env, ip, None)
