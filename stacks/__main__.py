"""The Pulumi program: `<env>.core` for the operations centre, `<env>.<slug>` per municipality.

Stack configuration (set by `fellesdrift up`/`plan`): fellesdrift:env, fellesdrift:target
(`core` or a municipality slug), fellesdrift:inventory (the folder of inventory files),
fellesdrift:driver (the environment's: `lab` or `proxmox`, stacks/drivers/) and the driver's
own keys (the lab: fellesdrift:image, fellesdrift:authorizedKey; proxmox: docs/proxmox.md).
Municipality stacks read the core through a StackReference.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from fellesdrift.inventory import load as inventory
from fellesdrift.plan import naming
from stacks import drivers
from stacks.components import (
    MunicipalSite,
    MunicipalSiteArgs,
    OperationsCentre,
    OperationsCentreArgs,
)
from stacks.drivers.base import Driver

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
    return drivers.from_config(config.get("driver") or "lab", env, config)


if target == "core":
    centre = OperationsCentre("centre", OperationsCentreArgs(model, driver()))
    pulumi.export("core_router", centre.core_router.machine)
    pulumi.export("hosts", centre.hosts)
else:
    municipality = model.municipality(target)
    core = pulumi.StackReference(f"organization/{pulumi.get_project()}/{env}.core")
    core_router = core.require_output("core_router")
    sites = [MunicipalSite(naming.site(municipality.slug, site.id),
                           MunicipalSiteArgs(model, municipality, site, core_router, driver()))
             for site in municipality.sites]
    pulumi.export("municipality", municipality.slug)
    pulumi.export("hosts", [h for s in sites for h in s.hosts])
