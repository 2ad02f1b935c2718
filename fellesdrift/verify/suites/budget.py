"""A budget shared by every process of this machine (every pytest-xdist worker of every verify
run here): checks that load the machine hold part of it while they run, so that as many run at
once as the machine serves without skewing what they measure, and the others wait their turn.

The ledger is a JSON file next to a lock file (``fcntl.flock``) in the temporary directory;
claims of processes that died are dropped. Claims are served in the order they were made (a big
claim is not starved by small ones); a claim bigger than the whole budget waits until nothing
else is held.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.2


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _ledger(path: Path) -> Iterator[list[dict[str, Any]]]:
    """The ledger's claims, locked; what the caller leaves in the list is written back."""
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            claims = json.loads(path.read_text()) if path.exists() else []
        except ValueError:
            claims = []
        claims[:] = [c for c in claims if _alive(int(c["pid"]))]
        yield claims
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(claims))
        tmp.replace(path)


def ledger_path(name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"fellesdrift-budget-{name}.json"


@contextlib.contextmanager
def held(name: str, amount: float, budget: float, path: Path | None = None) -> Iterator[float]:
    """Hold ``amount`` of the budget ``name`` (``budget`` in all) while the block runs; waits
    until it fits. Yields the seconds it waited."""
    path = path or ledger_path(name)
    me = {"id": uuid.uuid4().hex, "pid": os.getpid(), "amount": float(amount), "held": False}
    started = time.monotonic()
    with _ledger(path) as claims:
        claims.append(me)
    try:
        while True:
            with _ledger(path) as claims:
                mine = next((c for c in claims if c["id"] == me["id"]), None)
                if mine is None:  # dropped (the ledger was lost): claim again
                    claims.append(mine := dict(me))
                in_use = sum(c["amount"] for c in claims if c["held"])
                first_waiting = next(c for c in claims if not c["held"])
                if first_waiting["id"] == me["id"] and (in_use + me["amount"] <= budget
                                                        or in_use == 0):
                    mine["held"] = True
                    break
            time.sleep(POLL_SECONDS)
        yield time.monotonic() - started
    finally:
        with _ledger(path) as claims:
            claims[:] = [c for c in claims if c["id"] != me["id"]]
