"""Which hosts a change to some municipalities touches: the hosts `up -m SLUG` (and
`--only-changed`) converges, pushes and verifies.

A municipality's own hosts (its site routers and clients), and exactly the centre hosts whose
configuration is rendered from it (fellesdrift/hostvars.py, the network templates):

- the core router: it ends every site's link and routes every site's LAN;
- DNS/NTP: it holds a record for every host;
- monitoring: it scrapes every host and probes every subscriber's hosted services;
- the hosting server of each service the municipality subscribes to (GIS, finance): one
  database, login and site list per subscriber.

A municipality that is being removed (``removed``) is no longer in the model, so its services
are unknown: every hosting server is touched. The apt proxy's configuration depends on the
address plan only, never on a municipality.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from fellesdrift.inventory.model import Inventory
from fellesdrift.plan import topology
from fellesdrift.plan.functions import Grouped, function_of, municipality_of

H = TypeVar("H", bound=Grouped)

#: Centre functions rendered from every municipality, whatever it subscribes to.
EVERY_MUNICIPALITY = frozenset({"core_router", "dns_ntp", "monitoring"})


def centre_functions(model: Inventory, slugs: Iterable[str], removed: Iterable[str] = ()
                     ) -> set[str]:
    """The centre functions whose configuration depends on these municipalities."""
    slugs, removed = list(slugs), list(removed)
    if not slugs and not removed:
        return set()
    subscribed = {s.service for slug in slugs for s in model.municipality(slug).services}
    hosting = {function for function, service in topology.HOSTING_SERVICE.items()
               if removed or service in subscribed}
    return set(EVERY_MUNICIPALITY) | hosting


def hosts(model: Inventory, every: Sequence[H], slugs: Iterable[str],
          removed: Iterable[str] = ()) -> list[H]:
    """The hosts of ``every`` that a change to municipalities ``slugs`` (and the removal of
    ``removed``) touches, in the order of ``every``."""
    slugs, removed = set(slugs), set(removed)
    functions = centre_functions(model, sorted(slugs), sorted(removed))
    return [h for h in every
            if municipality_of(h) in slugs
            or (municipality_of(h) is None and function_of(h) in functions)]


def neighbours(every: Sequence[H], slugs: Iterable[str]) -> list[H]:
    """The site clients of the other municipalities: their isolation check is the column of
    the network tenancy matrix that says whether they reach the selected municipalities."""
    slugs = set(slugs)
    return [h for h in every if function_of(h) == "site_client"
            and municipality_of(h) not in (None, *slugs)]
