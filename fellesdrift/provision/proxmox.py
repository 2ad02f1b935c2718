"""The proxmox driver's platform side (its stacks' side is stacks/drivers/proxmox.py): the
environment's settings and the platform's admin key become the stack configuration; the
cluster holds everything else, so there is nothing to prepare or remove on this machine."""

from __future__ import annotations

from fellesdrift.access import keys
from fellesdrift.environment import Environment
from fellesdrift.inventory.model import Inventory
from fellesdrift.provision.drivers import DriverError, Say

#: The settings stacks/drivers/proxmox.py requires (docs/proxmox.md, "Selecting the driver").
REQUIRED = ("proxmoxNode", "proxmoxTemplate", "proxmoxDatastore")


class ProxmoxDriver:
    name = "proxmox"

    def prepare(self, env: Environment, model: Inventory, say: Say, build: bool = True
                ) -> dict[str, str]:
        missing = [k for k in REQUIRED if k not in env.settings]
        if missing:
            raise DriverError(f"environment {env.name} (proxmox) has no {', '.join(missing)} in "
                              "its settings (environments.yaml; docs/proxmox.md)")
        _, public_key = keys.lab_keypair(env.name)
        return {"authorizedKey": public_key, **env.settings}

    def teardown(self, env: str) -> dict[str, int]:
        return {}

    def check(self) -> tuple[bool, str]:
        return True, "proxmox: the cluster runs the hosts; nothing to check on this machine"
