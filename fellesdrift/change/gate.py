"""Whether `up` may change a municipality now: its window, unless nothing of it changed.

A municipality selected by `up` is *held* when all of these hold:

1. the audit log has a successful apply of it (:func:`.audit.applied`; a municipality never
   applied, or destroyed since, as by `down`, is a first deployment);
2. its inputs differ from that apply's (:func:`inputs`: its own file's model and the parts of
   the centre's file that shape its hosts and routers; a comment, a price or a window does not
   count, nor a change of the code, which the centre releases on its own schedule);
3. the window of its most demanding service level (:func:`.windows.governing`) is closed now.

`up` refuses before any lab work when one is held, naming each with its window and when that
opens, unless ``--emergency REASON`` is given (the audit log records the reason).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from fellesdrift.change import audit, windows
from fellesdrift.errors import RefusedError
from fellesdrift.inventory.model import Inventory, MaintenanceWindow, Municipality, OperationsCentre

#: The centre's fields that shape every municipality's hosts and routers.
CENTRE_FIELDS = {"name", "address_plan", "providers", "shared_hosts"}


class GateError(RefusedError, RuntimeError):
    """A change outside its window, without --emergency; nothing was applied."""


def inputs(centre: OperationsCentre, municipality: Municipality) -> str:
    """The digest of what shapes a municipality's hosts and routers."""
    data = {"municipality": municipality.model_dump(mode="json"),
            "centre": centre.model_dump(mode="json", include=CENTRE_FIELDS),
            "services": sorted((s.id, s.billing) for s in centre.services)}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Held:
    slug: str
    level: str
    window: MaintenanceWindow
    opens: datetime

    def __str__(self) -> str:
        return (f"{self.slug} changed since its last apply and its window ({self.level}: "
                f"{windows.describe(self.window)}) is closed; it opens "
                f"{windows.shown(self.opens)}")


def held(model: Inventory, env: str, slugs: list[str], at: datetime) -> list[Held]:
    """The municipalities among ``slugs`` that may not be changed at ``at``."""
    last = audit.applied(env)
    out = []
    for slug in slugs:
        m = model.municipality(slug)
        if slug not in last or last[slug] == inputs(model.centre, m):
            continue
        level = windows.governing(model.centre, m)
        if level is None or level.maintenance_window is None:
            continue
        window = windows.Window.of(level.maintenance_window)
        if not window.contains(at):
            out.append(Held(slug, level.id, level.maintenance_window, window.next_opening(at)))
    return out


def refuse(found: list[Held]) -> GateError:
    return GateError("; ".join(str(h) for h in found) + ". Run `up` inside the window, or "
                     "with --emergency \"REASON\" (recorded in the audit log)")
