"""What a host is for: the one table of host functions.

A host's function is its first Ansible group (the stacks declare it, :func:`function_of` reads
it). Everything the platform derives from a function is in :data:`FUNCTIONS`: the role that
converges it, whether it routes or reaches the package mirrors, the DNS name of the service it
serves, the centre file's ``role`` values that make one, the catalogue service it hosts and
the verify suites that check what it promises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Function = Literal["core_router", "site_router", "site_client", "apt_proxy", "dns_ntp",
                   "monitoring", "gis_hosting", "finance_hosting", "execution_node"]


@dataclass(frozen=True)
class HostFunction:
    name: Function
    #: The Ansible role applied after the baseline (playbooks/site.yml); its variables come
    #: from the function's builder, ``fellesdrift.converge.hostvars.BUILDERS[name]``.
    role: str
    #: The verify suites (fellesdrift/verify/suites) that check what the function promises.
    suites: tuple[str, ...]
    #: What it is, in words (messages, reserved names).
    words: str
    #: It routes: FRR, configured by the network phase; the driver lets it forward.
    router: bool = False
    #: It reaches Debian's mirrors (the centre's apt proxy); every other host goes through it.
    egress: bool = False
    #: The DNS name of the service it serves (``<alias>.<domain>``).
    alias: str | None = None
    #: The centre file's ``shared_hosts[].role`` values that make a host of this function.
    centre_roles: tuple[str, ...] = ()
    #: The catalogue service it hosts for subscribers (one database and login each).
    hosting: str | None = None
    #: It holds nothing the model and the lock do not rebuild: Pulumi does not protect it, so
    #: taking it out of the centre file deletes it (every other centre host is protected).
    disposable: bool = False


FUNCTIONS: dict[str, HostFunction] = {f.name: f for f in (
    HostFunction("core_router", "site_router", ("test_site_router",), "core router",
                 router=True),
    HostFunction("site_router", "site_router", ("test_site_router",), "site router",
                 router=True),
    HostFunction("site_client", "site_client", ("test_site_client", "test_links"),
                 "site client"),
    HostFunction("apt_proxy", "apt_proxy", ("test_apt_proxy",), "apt proxy", egress=True,
                 alias="apt", centre_roles=("apt_proxy",)),
    HostFunction("dns_ntp", "dns_ntp", ("test_dns_ntp",), "DNS and NTP", alias="dns",
                 centre_roles=("directory", "dns_ntp")),
    HostFunction("monitoring", "monitoring", ("test_monitoring",), "monitoring (Prometheus)",
                 alias="prometheus", centre_roles=("monitoring",)),
    HostFunction("gis_hosting", "gis_hosting", ("test_gis_hosting",), "GIS hosting",
                 alias="gis", centre_roles=("gis",), hosting="gis"),
    HostFunction("finance_hosting", "finance_hosting", ("test_finance_hosting",),
                 "finance hosting", alias="okonomi", centre_roles=("finance",),
                 hosting="okonomi"),
    HostFunction("execution_node", "execution_node", ("test_execution_node",),
                 "execution node (ansible-runner's worker)", centre_roles=("execution_node",),
                 disposable=True),
)}

#: The functions that route (the network phase configures them).
ROUTERS: tuple[str, ...] = tuple(f.name for f in FUNCTIONS.values() if f.router)
#: The functions hosting a catalogue service, and the service: {function: service id}.
HOSTING_SERVICE: dict[str, str] = {f.name: f.hosting for f in FUNCTIONS.values()
                                   if f.hosting}
#: The centre file's shared-host roles: {role: function}.
SHARED_FUNCTIONS: dict[str, Function] = {role: f.name for f in FUNCTIONS.values()
                                         for role in f.centre_roles}
#: DNS names pointing at the host that serves them: {function: alias}.
SERVICE_ALIASES: dict[str, str] = {f.name: f.alias for f in FUNCTIONS.values() if f.alias}


class Grouped(Protocol):
    """A host as far as its function goes: its Ansible groups, the function first."""

    @property
    def groups(self) -> tuple[str, ...]: ...


def function_of(host: Grouped) -> str:
    return host.groups[0]


def municipality_of(host: Grouped) -> str | None:
    """The slug of the municipality a site host belongs to (group ``municipality_<slug>``)."""
    return next((g.removeprefix("municipality_") for g in host.groups
                 if g.startswith("municipality_")), None)
