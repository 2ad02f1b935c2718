"""The hosts a component makes, and the record of each that its ``hosts`` output carries."""

from __future__ import annotations

from typing import Any

import pulumi

from stacks.drivers.base import Driver, Host, HostSpec, Network


def host_record(spec: HostSpec, host: Host, driver: Driver) -> pulumi.Output[Any]:
    """What later phases know of a host: the stack output is the only way in."""
    return pulumi.Output.all(host.machine, host.address, host.host_key).apply(
        lambda v: {"name": spec.name, "machine": v[0], "function": spec.function,
                   "groups": [spec.function, *spec.groups], "address": v[1],
                   "ssh_user": driver.ssh_user, "ssh_port": driver.ssh_port, "host_key": v[2]})


class HostRecords:
    """Makes a component's hosts through its driver, as the component's children, and keeps
    their records (``records``: what the component registers as its ``hosts`` output)."""

    def __init__(self, driver: Driver, parent: pulumi.Resource) -> None:
        self.driver = driver
        self.parent = parent
        self.records: list[pulumi.Output[Any]] = []

    def add(self, spec: HostSpec, networks: dict[str, Network], protect: bool = False) -> Host:
        host = self.driver.host(spec, networks, parent=self.parent, protect=protect)
        self.records.append(host_record(spec, host, self.driver))
        return host
