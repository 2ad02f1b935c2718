"""Live progress of long phases in the terminal (rich): per host, per task."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table


@dataclass
class _Row:
    done: int = 0
    changed: int = 0
    failed: int = 0
    task: str = ""


class ConvergeView:
    """A table of hosts with tasks done, changed, failed and the task running now.

    Use as a context manager and pass :meth:`update` as converge's ``progress``. On a terminal
    it redraws in place; elsewhere (CI logs) it prints one line per failed task only.
    """

    def __init__(self, console: Console, title: str = "converge") -> None:
        self.console = console
        self.title = title
        self.rows: dict[str, _Row] = {}
        self.live = Live(self._render(), console=console, refresh_per_second=4,
                         transient=True, auto_refresh=console.is_terminal)

    def _render(self) -> RenderableType:
        table = Table(title=self.title, show_edge=False, pad_edge=False)
        for col in ("host", "done", "changed", "failed", "task"):
            table.add_column(col, no_wrap=True, overflow="ellipsis",
                             max_width=60 if col == "task" else None)
        for host, r in sorted(self.rows.items()):
            table.add_row(host, str(r.done), str(r.changed),
                          f"[red]{r.failed}" if r.failed else "0", r.task)
        return table

    def update(self, host: str, task: str, state: str) -> None:
        row = self.rows.setdefault(host, _Row())
        if state == "start":
            row.task = task
        else:
            row.done += 1
            row.changed += state == "changed"
            if state in ("failed", "unreachable"):
                row.failed += 1
                if not self.console.is_terminal:
                    self.console.print(f"  {host}: {task}: {state}", markup=False)
        if self.console.is_terminal:
            self.live.update(self._render())

    def __enter__(self) -> ConvergeView:
        if self.console.is_terminal:
            self.live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.console.is_terminal:
            self.live.stop()
