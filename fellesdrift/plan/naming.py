"""Every name the platform derives from the inventory, built in one place, with the limits of the
systems that hold them.

Stacks, hosts, containers, lab networks, DNS names, databases and logins, Ansible groups, router
object names and the CA's subject are all made here from the model's slugs, site ids, range names
and host names. The validator (:mod:`fellesdrift.rules`) checks every one of them up front:
unique where its system needs it, not one of the reserved names, and within its system's length
limit once the longest environment name this module accepts (:data:`MAX_ENV_LENGTH`) is added.

The environment name (``--env``) becomes part of the stack names (``<env>.<slug>``), of every
container and VM name (``<env>-<host>``, also the host's hostname) and of the DNS domain
(``<env>.fellesdrift.internal``). It is a DNS label of at most :data:`MAX_ENV_LENGTH` characters
(:func:`env_problem`); the bound is this module's assumption, and every inventory limit follows
from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal, NamedTuple

from fellesdrift.plan import functions

# --- The environment --------------------------------------------------------------------------

#: The longest environment name accepted; derived names are checked as if the environment had
#: this many characters.
MAX_ENV_LENGTH = 16
_ENV = re.compile(rf"[a-z](?:[a-z0-9-]{{0,{MAX_ENV_LENGTH - 2}}}[a-z0-9])?\Z")
#: The environment every length check assumes.
LONGEST_ENV = "x" * MAX_ENV_LENGTH


def env_problem(env: str) -> str | None:
    """What is wrong with an environment name, or None when it is fine."""
    if _ENV.match(env):
        return None
    return (f"the environment name {env!r} must be lower-case ASCII letters, digits and hyphens, "
            f"starting with a letter, at most {MAX_ENV_LENGTH} characters (it becomes part of "
            "stack, host and DNS names)")


# --- Limits -----------------------------------------------------------------------------------

#: A DNS label (RFC 1035), a container or VM name (it is the machine's hostname too).
DNS_LABEL = 63
#: A whole DNS name, dots included.
DNS_NAME = 253
#: Pulumi's limit for a stack name.
PULUMI_STACK = 100
#: PostgreSQL's NAMEDATALEN - 1, in bytes: the longest database or role name.
POSTGRES_IDENTIFIER = 63
#: X.509 ub-common-name and ub-organization-name (RFC 5280), UTF-8 bytes as cryptography counts.
X509_NAME = 64

# --- Fixed names ------------------------------------------------------------------------------

#: The centre's stack target: its stack is ``<env>.core``.
CORE_STACK = "core"
#: The core router's host name.
CORE_ROUTER = "core-router"
DOMAIN_SUFFIX = "fellesdrift.internal"
#: DNS names pointing at the host that serves them, by the host's function.
SERVICE_ALIASES = functions.SERVICE_ALIASES
#: The hosted services with one database and login per subscriber, by service id.
DATABASE_SERVICES = ("gis", "okonomi")
#: What each aliased service is, in words.
_SERVICE_WORDS = {name: functions.FUNCTIONS[name].words for name in SERVICE_ALIASES}
#: The Ansible group of the centre's hosts; ``all`` and ``ungrouped`` are Ansible's own.
CENTRE_GROUP = "centre"
ANSIBLE_GROUPS = ("all", "ungrouped", CENTRE_GROUP)
#: Names PostgreSQL keeps for itself: no database or login may take them.
POSTGRES_RESERVED = frozenset({"postgres", "template0", "template1", "public", "none",
                               "current_user", "current_role", "session_user", "system_user"})
POSTGRES_RESERVED_PREFIX = "pg_"

#: Slugs that would take a name the centre has: why, by slug.
RESERVED_SLUGS = {CORE_STACK: f"the centre's stack is <env>.{CORE_STACK}"}
#: Host names that a shared host may not take: why, by name.
RESERVED_HOSTS: dict[str, str] = {
    CORE_ROUTER: "the core router's host name",
    **{alias: f"the DNS name of the {_SERVICE_WORDS[function]} service"
       for function, alias in SERVICE_ALIASES.items()},
    **{group: "an Ansible group of the lab's inventory" for group in ANSIBLE_GROUPS},
}


# --- Derived names ----------------------------------------------------------------------------


def stack(env: str, target: str) -> str:
    """A stack: ``<env>.core`` for the centre, ``<env>.<slug>`` for a municipality."""
    return f"{env}.{target}"


def site(slug: str, site_id: str) -> str:
    """A site's own name (its component, and the stem of its hosts and networks)."""
    return f"{slug}-{site_id}"


def site_router(slug: str, site_id: str) -> str:
    return f"{site(slug, site_id)}-router"


def site_client(slug: str, site_id: str) -> str:
    return f"{site(slug, site_id)}-client"


def site_lan(slug: str, site_id: str) -> str:
    """The network name of a site's LAN."""
    return f"{site(slug, site_id)}-lan"


def site_link(slug: str, site_id: str) -> str:
    """The network name of a site's broadband link."""
    return f"{site(slug, site_id)}-link"


def centre_network(range_name: str) -> str:
    """The network name of a centre range."""
    return f"centre-{range_name}"


def machine(env: str, name: str) -> str:
    """A host's container or VM name (and its hostname), or a lab network's Podman name."""
    return f"{env}-{name}"


def domain(env: str) -> str:
    return f"{env}.{DOMAIN_SUFFIX}"


def fqdn(env: str, name: str) -> str:
    return f"{name}.{domain(env)}"


def database(service: str, slug: str) -> str:
    """Database and login role of a municipality in a hosted service: ``gis_vinje``."""
    return f"{service}_{slug.replace('-', '_')}"


def municipality_group(slug: str) -> str:
    return f"municipality_{slug}"


def site_group(slug: str, site_id: str) -> str:
    return f"site_{site(slug, site_id)}"


def prefix_list(slug: str) -> str:
    """The core router's prefix list of a municipality's site LANs."""
    return f"SITES-{slug.upper()}"


def route_map_from(slug: str) -> str:
    """The core router's route map for what a municipality's site routers announce."""
    return f"FROM-{slug.upper()}"


def ca_subject(centre_name: str, env: str) -> tuple[str, str]:
    """The lab CA's organisation and common name."""
    return centre_name, f"{centre_name} CA ({env})"


def postgres_reserved(name: str) -> bool:
    return name in POSTGRES_RESERVED or name.startswith(POSTGRES_RESERVED_PREFIX)


# --- Every derived name, with its limit -------------------------------------------------------

#: The namespaces in which a name must be unique. Hosts and DNS share one (every host is a DNS
#: name, and the service aliases are too); a container name is ``<env>-<host>``, unique with it.
Namespace = Literal["host", "stack", "network", "database"]


Kind = Literal["host", "network", "stack", "database", "ca", "alias"]


class Derived(NamedTuple):
    """A name the platform derives, the namespace it is unique in, and what kind of name it is
    (which says where it goes and so its limits: :meth:`too_long`)."""

    namespace: Namespace | None  # None: a name that need not be unique
    name: str
    what: str  # e.g. "the site router's host name"
    kind: Kind

    def limits(self, env: str = LONGEST_ENV) -> list[tuple[str, str, int, bool]]:
        """(system, the name as that system holds it, its limit, counted in bytes)."""
        if self.kind == "host":
            return [("the container or VM name (also its hostname)", machine(env, self.name),
                     DNS_LABEL, False), ("the DNS name", fqdn(env, self.name), DNS_NAME, False),
                    ("the DNS label", self.name, DNS_LABEL, False)]
        if self.kind == "network":
            return [("the lab network name", machine(env, self.name), DNS_LABEL, False)]
        if self.kind == "stack":
            return [("the Pulumi stack name", self.name, PULUMI_STACK, False)]
        if self.kind == "database":
            return [("the PostgreSQL identifier", self.name, POSTGRES_IDENTIFIER, True)]
        if self.kind == "ca":
            organisation, common = ca_subject(self.name, env)
            return [("the CA's organisation name", organisation, X509_NAME, True),
                    ("the CA's common name", common, X509_NAME, True)]
        return []

    def too_long(self, env: str = LONGEST_ENV) -> Iterator[tuple[str, str, int, int, str]]:
        """(system, full name, its length, the limit, its unit) for every limit exceeded."""
        for system, full, most, in_bytes in self.limits(env):
            length = len(full.encode()) if in_bytes else len(full)
            if length > most:
                yield system, full, length, most, "bytes" if in_bytes else "characters"


def site_names(slug: str, site_id: str) -> list[Derived]:
    """The names one site makes."""
    return [Derived("host", site_router(slug, site_id), "the site router's host name", "host"),
            Derived("host", site_client(slug, site_id), "the site client's host name", "host"),
            Derived("network", site_lan(slug, site_id), "the lab network", "network"),
            Derived("network", site_link(slug, site_id), "the lab network", "network")]


def site_names_fit(slug: str, site_id: str) -> bool:
    """Whether every name of :func:`site_names` fits its limits (the longest is a host's
    container name, ``<env>-<slug>-<site>-client``): the quick check for most sites."""
    return len(machine(LONGEST_ENV, site_client(slug, site_id))) <= DNS_LABEL


def municipality_names(slug: str, env: str = LONGEST_ENV) -> list[Derived]:
    """The names a municipality makes besides its sites' (databases whether it subscribes or
    not: a subscription may come later)."""
    return [Derived("stack", stack(env, slug), "the municipality's stack", "stack"),
            *(Derived("database", database(service, slug), f"the {service} database and login",
                      "database") for service in DATABASE_SERVICES)]


def shared_host_names(hostname: str) -> list[Derived]:
    return [Derived("host", hostname, "the shared host's name", "host")]


def centre_names(env: str = LONGEST_ENV) -> list[Derived]:
    """The names the centre makes whatever its file says."""
    return [Derived("stack", stack(env, CORE_STACK), "the centre's stack", "stack"),
            Derived("host", CORE_ROUTER, "the core router's host name", "host"),
            *(Derived("host", alias, f"the DNS name of the {_SERVICE_WORDS[function]} service",
                      "alias") for function, alias in SERVICE_ALIASES.items())]


def centre_range_names(range_name: str) -> list[Derived]:
    """The names a centre range that is a network makes."""
    return [Derived("network", centre_network(range_name), "the lab network", "network")]


def ca_names(centre_name: str) -> Derived:
    """The lab CA's subject, made from the centre's name (:func:`ca_subject`)."""
    return Derived(None, centre_name, "the lab CA's subject", "ca")
