"""The centre's passphrase: Pulumi's passphrase provider and the encrypted secret store
(:mod:`fellesdrift.access.credentials`) use the same one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

#: Made once when neither PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE is set.
FILE = Path.home() / ".config" / "fellesdrift" / "pulumi-passphrase"


def passphrase_env() -> dict[str, str]:
    """Secrets use the passphrase provider; the passphrase is made once, 0600, outside git."""
    if "PULUMI_CONFIG_PASSPHRASE" in os.environ or "PULUMI_CONFIG_PASSPHRASE_FILE" in os.environ:
        return {}
    if not FILE.exists():
        FILE.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return {"PULUMI_CONFIG_PASSPHRASE_FILE": str(FILE)}
