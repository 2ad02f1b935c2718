"""A netmiko driver for FRR's vtysh, the shell of the routers' netops login.

netmiko's cisco_ios driver connects to vtysh and enters config mode, but keeps the prompt it
read at login: after a ``hostname`` change every later command waits for a prompt that never
comes. :class:`FrrVtysh` reads the base prompt again after each configuration set, saves with
``write memory`` and reads the configuration with ``show running-config``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from netmiko.cisco.cisco_ios import CiscoIosBase

#: vtysh answers a command it refuses with a line starting with "%".
ERROR_PATTERN = r"^%.*$"


class FrrVtysh(CiscoIosBase):
    """netmiko connection to FRR's vtysh (``device_type="frr_vtysh"`` in :func:`connect`)."""

    def session_preparation(self) -> None:
        self._test_channel_read(pattern=r"[>#]")
        self.set_base_prompt()
        self.disable_paging(command="terminal length 0")

    def send_config_set(self, config_commands: Any = None, **kwargs: Any) -> str:
        output: str = super().send_config_set(config_commands, **kwargs)
        if kwargs.get("exit_config_mode", True):
            self.set_base_prompt()  # a `hostname` in the set changed the prompt
        return output

    def save_config(self, cmd: str = "write memory", confirm: bool = False,
                    confirm_response: str = "") -> str:
        out: str = self._send_command_str(cmd, expect_string=r"#\s*$", read_timeout=60)
        if "[OK]" not in out and "saved" not in out.lower():
            raise OSError(f"write memory failed: {out.strip()}")
        return out

    def running_config(self) -> str:
        return str(self.send_command("show running-config", read_timeout=60))

    def interfaces(self) -> dict[str, str]:
        """The device's IPv4 addresses and their interfaces, from ``show interface brief``."""
        return parse_interface_brief(str(self.send_command("show interface brief")))

    def configure(self, commands: Sequence[str],
                  before_each: Callable[[int, str], None] | None = None) -> str:
        """Send configuration commands one by one inside config mode, stopping at the first
        one vtysh refuses (ConfigInvalidException). ``before_each(i, command)`` runs before
        command ``i`` is sent (a hook for tests that break a push half-way)."""
        output = self.config_mode()
        try:
            for i, command in enumerate(commands):
                if before_each is not None:
                    before_each(i, command)
                output += super().send_config_set(
                    [command], enter_config_mode=False, exit_config_mode=False,
                    error_pattern=ERROR_PATTERN, read_timeout=30)
        finally:
            if self.remote_conn is not None and self.check_config_mode():
                output += self.exit_config_mode()
        self.set_base_prompt()
        return output


def parse_interface_brief(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith(("Interface", "---")):
            continue
        if not line.startswith(" "):
            name = words[0]
        for word in words:
            m = re.match(r"^(\d+\.\d+\.\d+\.\d+)/\d+$", word)
            if m and name:
                found[m.group(1)] = name
    return found


def connect(address: str, username: str, key_file: str, known_hosts: str,
            timeout: float = 20) -> FrrVtysh:
    """Log in to a router's vtysh with a key, checking its host key against ``known_hosts``."""
    return FrrVtysh(host=address, username=username, use_keys=True, key_file=key_file,
                    allow_agent=False, ssh_strict=True, system_host_keys=False,
                    alt_host_keys=True, alt_key_file=known_hosts, conn_timeout=timeout,
                    auth_timeout=timeout, banner_timeout=timeout, fast_cli=False,
                    device_type="cisco_ios")
