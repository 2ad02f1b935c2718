"""The Pulumi program: `<env>.core` for the operations centre, `<env>.<slug>` per municipality.

Stack configuration (set by `fellesdrift up`/`plan`): fellesdrift:env, fellesdrift:target
(`core` or a municipality slug), fellesdrift:inventory (the folder of inventory files),
fellesdrift:driver (`lab`), and for the lab driver fellesdrift:image and
fellesdrift:authorizedKey. Municipality stacks read the core through a StackReference.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from fellesdrift.inventory import load as inventory
from stacks.components import MunicipalSite, OperationsCentre
from stacks.drivers.base import Driver
from stacks.drivers.lab import LabDriver

config = pulumi.Config("fellesdrift")
env = config.require("env")
target = config.require("target")
folder = Path(config.require("inventory"))
# The core sizes its hosting from every subscriber, so it reads every file. A municipality's
# stack reads only the centre and its own file: its cost does not grow with the number of
# municipalities (`fellesdrift plan`/`up` have validated the whole folder before).
model = inventory.load([folder] if target == "core" else
                       [folder / inventory.CENTRE_FILE, folder / f"{target}.yaml"])


def driver() -> Driver:
    kind = config.get("driver") or "lab"
    if kind == "proxmox":  # docs/proxmox.md lists its configuration
        from stacks.drivers.proxmox import ProxmoxDriver

        return ProxmoxDriver(
            env=env, node=config.require("proxmoxNode"),
            template_vm_id=config.require_int("proxmoxTemplate"),
            datastore=config.require("proxmoxDatastore"),
            trunk_bridge=config.get("proxmoxTrunkBridge") or "vmbr0",
            authorized_key=config.require("authorizedKey"))
    if kind != "lab":
        raise ValueError(f"fellesdrift:driver {kind!r}: use lab or proxmox")
    return LabDriver(env=env, image=config.require("image"),
                     authorized_key=config.require("authorizedKey"))


if target == "core":
    centre = OperationsCentre(model, driver())
    pulumi.export("core_router", centre.core_router.machine)
    pulumi.export("hosts", centre.hosts)
else:
    municipality = model.municipality(target)
    core = pulumi.StackReference(f"organization/{pulumi.get_project()}/{env}.core")
    core_router = core.require_output("core_router")
    sites = [MunicipalSite(model, municipality, site, core_router, driver())
             for site in municipality.sites]
    pulumi.export("municipality", municipality.slug)
    pulumi.export("hosts", [h for s in sites for h in s.hosts])
