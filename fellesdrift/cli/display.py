"""Progress in the terminal: the one implementation of :class:`fellesdrift.progress.Progress`.

:func:`view` gives, as a context manager to pass as any phase's ``progress``, a live table on
a terminal (:class:`LiveView`) and one line per failure elsewhere, such as CI logs
(:class:`PlainView`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from fellesdrift.progress import CHANGED, FAILED, RUNNING, START


@dataclass
class _Row:
    done: int = 0
    changed: int = 0
    failed: int = 0
    state: str = ""
    detail: str = ""


class LiveView:
    """A table, redrawn in place, of the items of the phase running now: for each, how many of
    its tasks (or the item itself) are done, changed and failed, its last state and what it is
    doing (a converge's task, a router's step, a stack's result)."""

    def __init__(self, console: Console, title: str | None = None) -> None:
        self.console = console
        self.title = title
        self.phase = ""
        self.rows: dict[str, _Row] = {}
        self.lock = threading.Lock()
        self.live = Live(self._render(), console=console, refresh_per_second=4,
                         transient=True)

    def _render(self) -> RenderableType:
        table = Table(title=self.title or self.phase, show_edge=False, pad_edge=False)
        for col in ("item", "done", "changed", "failed", "state", "now"):
            table.add_column(col, no_wrap=True, overflow="ellipsis",
                             max_width=60 if col == "now" else None)
        for item, r in sorted(self.rows.items()):
            table.add_row(escape(item), str(r.done), str(r.changed),
                          f"[red]{r.failed}" if r.failed else "0",
                          f"[red]{r.state}" if r.state in FAILED else r.state, escape(r.detail))
        return table

    def __call__(self, phase: str, item: str, state: str, detail: str, /) -> None:
        with self.lock:
            if phase != self.phase:  # a new phase: its own items
                self.phase, self.rows = phase, {}
            row = self.rows.setdefault(item, _Row())
            if state not in (START, RUNNING):
                row.done += 1
                row.changed += state in CHANGED
                row.failed += state in FAILED
            row.state, row.detail = state, detail or row.detail
            self.live.update(self._render())

    def __enter__(self) -> LiveView:
        self.live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.live.stop()


class PlainView:
    """Where no terminal redraws: one line per failure as it happens (``  item: detail:
    state``), nothing else."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, phase: str, item: str, state: str, detail: str, /) -> None:
        if state in FAILED:
            self.console.print(f"  {item}: {detail}: {state}", markup=False, soft_wrap=True)

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        pass


def view(console: Console, title: str | None = None) -> LiveView | PlainView:
    """The progress display for this console: live on a terminal, plain elsewhere.
    ``title``: the table's (default: the phase running)."""
    return LiveView(console, title) if console.is_terminal else PlainView(console)
