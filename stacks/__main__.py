"""The Pulumi program: one stack per municipality, `<env>.<slug>`.

Stack configuration (set by `fellesdrift up`): fellesdrift:env, fellesdrift:municipality,
fellesdrift:inventory (the folder of inventory files), fellesdrift:image and
fellesdrift:authorizedKey (the lab's golden image and its SSH public key).
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from fellesdrift import inventory
from stacks.components import MunicipalSite
from stacks.drivers.lab import LabDriver

config = pulumi.Config("fellesdrift")
model = inventory.load([Path(config.require("inventory"))])
municipality = model.municipality(config.require("municipality"))
driver = LabDriver(env=config.require("env"), image=config.require("image"),
                   authorized_key=config.require("authorizedKey"))

sites = [MunicipalSite(municipality, site, driver) for site in municipality.sites]
pulumi.export("municipality", municipality.slug)
pulumi.export("hosts", [h for s in sites for h in s.hosts])
