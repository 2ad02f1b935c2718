"""Drivers on the platform's side: what an environment's driver does on this machine before and
after its stacks (the stacks' side is stacks/drivers/).

A driver is registered here by name and module path and imported only when an environment
names it, so nothing in the pipeline imports a driver's package: the lab (Podman) is reached
only through :mod:`fellesdrift.lab.driver`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

from fellesdrift.environment import Environment
from fellesdrift.errors import FellesdriftError
from fellesdrift.inventory.model import Inventory

Say = Callable[[str], None]

#: Driver name -> "module:class" of its platform side.
DRIVERS = {
    "lab": "fellesdrift.lab.driver:LabDriver",
    "proxmox": "fellesdrift.provision.proxmox:ProxmoxDriver",
}


class DriverError(FellesdriftError, ValueError):
    """An environment names a driver that does not exist."""


class Driver(Protocol):
    """What the pipeline asks of an environment's driver."""

    name: str

    def prepare(self, env: Environment, model: Inventory, say: Say, build: bool = True
                ) -> dict[str, str]:
        """Make this machine ready for the environment's stacks (``build``: also what takes
        long, such as the lab's image) and return the driver's stack configuration
        (``fellesdrift:<key>`` values)."""
        ...

    def teardown(self, env: str) -> dict[str, int]:
        """Remove what the environment left on this machine beyond its stacks; counts by kind."""
        ...

    def check(self) -> tuple[bool, str]:
        """Whether this machine can run the driver's hosts, in one line (``doctor``)."""
        ...


def driver(env: Environment | str) -> Driver:
    """The platform side of ``env``'s driver (or of the driver named ``env``)."""
    name = env if isinstance(env, str) else env.driver
    where = DRIVERS.get(name)
    if where is None:
        raise DriverError(f"driver {name!r} does not exist; use one of {', '.join(DRIVERS)}")
    module, _, cls = where.partition(":")
    made: Driver = getattr(importlib.import_module(module), cls)()
    return made
