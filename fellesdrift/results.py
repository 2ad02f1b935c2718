"""One result family: what a phase says about each item it worked on.

An item is a stack (provision), a host (converge, verify) or a router (network). Every phase's
per-item result is a :class:`Result`: the item's ``name`` (the key of the status record), whether
it is ``ok``, how many things it ``changed``, its ``error`` when it failed, one line of
``detail`` and its ``state`` (what the progress interface, :mod:`fellesdrift.progress`, ends the
item with). The phase's own fields live on its subclass:

- ``provision.stacks.StackResult``: the changes per operation, the hosts a stack declared;
- ``converge.run.HostConverge``: a host's recaps of a run and of the run right after it;
- ``network.push.DeviceResult``: the router's status, diff, archive, roll-back;
- ``verify.run.HostVerdict``: the checks that passed, failed and skipped on a host.

``report/status.py`` records any of them the same way (:func:`fellesdrift.report.status.
from_results`), and :func:`fellesdrift.fanout.fan_out` runs a phase over its items.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Result:
    """One item's outcome in one phase. A subclass says what ok, changed and error mean for its
    phase (as fields or properties); the defaults here: ok when there is no error, nothing
    changed, the error as the detail."""

    name: str

    @property
    def error(self) -> str:
        """Why the item failed; "" when it did not."""
        return ""

    @property
    def ok(self) -> bool:
        """The item is as intended: nothing failed, nothing is left pending."""
        return not self.error

    @property
    def changed(self) -> int:
        """How many things the phase changed (or would change) on the item."""
        return 0

    @property
    def detail(self) -> str:
        """One line for the status record and the progress display."""
        return self.error

    @property
    def state(self) -> str:
        """How the item ended, in the progress interface's words: failed, changed or ok."""
        if self.error:
            return "failed"
        return "changed" if self.changed else "ok"
