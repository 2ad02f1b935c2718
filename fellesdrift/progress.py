"""One progress interface: what a long phase says while it works on its items.

Every phase reports in one shape, ``progress(phase, item, state, detail)``:

- ``phase``: ``provision``, ``image``, ``converge``, ``network`` or ``verify``;
- ``item``: what it works on: a stack, a host, a router, the golden image;
- ``state``: :data:`START` (work on the item, or one of its tasks, begins), :data:`RUNNING` (a
  step on the way) or how it ended (:attr:`fellesdrift.results.Result.state`: ``ok``,
  ``changed``, ``failed``, and a phase's own words: a converge task's ``skipped`` and
  ``unreachable``, a router's ``unchanged`` and ``would-change``);
- ``detail``: the task or step, or one line of the result.

The terminal's implementation is in ``fellesdrift/cli/display.py``; :func:`silent` says nothing
(the default of every phase), :func:`lines` passes the details on as lines of text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

START = "start"
RUNNING = "running"
#: The states that end an item (or a task) badly, and those that changed something.
FAILED = frozenset({"failed", "unreachable"})
CHANGED = frozenset({"changed", "would-change"})


class Progress(Protocol):
    """Told as a phase works: ``progress(phase, item, state, detail)``. Called from the phase's
    worker threads, so an implementation takes care of its own locking."""

    def __call__(self, phase: str, item: str, state: str, detail: str, /) -> None: ...


def silent(phase: str, item: str, state: str, detail: str, /) -> None:
    """Progress that says nothing."""


def lines(say: Callable[[str], object]) -> Progress:
    """Progress as lines of text: ``say(detail)`` for every report that has a detail (the
    golden image's build steps, for a caller that prints lines)."""
    def told(phase: str, item: str, state: str, detail: str, /) -> None:
        if detail:
            say(detail)
    return told
