"""Drivers decide where machines and networks come from; components do not know which is used.

The stack's configuration names the driver (``fellesdrift:driver``, from the environment:
fellesdrift/environment.py); each is registered here by module path and imported only when a
stack uses it, so the program imports no driver it does not run (the lab's imports Podman's
layer, fellesdrift.lab)."""

from __future__ import annotations

import importlib

import pulumi

from .base import Driver

#: Driver name -> "module:class"; the class makes itself from the stack's configuration.
DRIVERS = {"lab": "stacks.drivers.lab:LabDriver", "proxmox": "stacks.drivers.proxmox:ProxmoxDriver"}


def from_config(kind: str, env: str, config: pulumi.Config) -> Driver:
    """The driver ``kind`` of environment ``env``, with its settings from ``config``."""
    where = DRIVERS.get(kind)
    if where is None:
        raise ValueError(f"fellesdrift:driver {kind!r}: use one of {', '.join(DRIVERS)}")
    module, _, name = where.partition(":")
    made: Driver = getattr(importlib.import_module(module), name).from_config(env, config)
    return made
