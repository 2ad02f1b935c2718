"""One progress interface: every phase reports (phase, item, state, detail), and the CLI's one
display shows any phase from it: a live table on a terminal, one line per failure elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from fellesdrift import progress
from fellesdrift.cli import display
from fellesdrift.converge import run as converge


class Heard:
    def __init__(self) -> None:
        self.said: list[tuple[str, str, str, str]] = []

    def __call__(self, phase: str, item: str, state: str, detail: str, /) -> None:
        self.said.append((phase, item, state, detail))


def test_converge_reports_each_task_of_each_host() -> None:
    heard = Heard()
    events = converge._Events(heard)
    for event in (
            {"event": "runner_on_start", "event_data": {"host": "gis-01", "task": "Install"}},
            {"event": "runner_on_ok", "event_data": {"host": "gis-01", "task": "Install",
                                                     "res": {"changed": True}}},
            {"event": "runner_on_start", "event_data": {"host": "gis-01", "task": "Start"}},
            {"event": "runner_on_failed", "event_data": {"host": "gis-01", "task": "Start",
                                                         "res": {"msg": "no unit"}}}):
        events(event)
    assert heard.said == [("converge", "gis-01", "start", "Install"),
                          ("converge", "gis-01", "changed", "Install"),
                          ("converge", "gis-01", "start", "Start"),
                          ("converge", "gis-01", "failed", "Start")]


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None, force_terminal=terminal), out


def test_the_display_is_live_on_a_terminal_and_plain_elsewhere() -> None:
    assert isinstance(display.view(_console(True)[0]), display.LiveView)
    assert isinstance(display.view(_console(False)[0]), display.PlainView)


def test_the_live_table_counts_each_items_tasks_and_shows_what_it_does_now() -> None:
    console, _ = _console(True)
    with display.view(console) as view:
        assert isinstance(view, display.LiveView)
        view("converge", "gis-01", "start", "Install")
        view("converge", "gis-01", "changed", "Install")
        view("converge", "gis-01", "start", "Start [postgresql]")
        view("converge", "gis-01", "failed", "Start [postgresql]")
        view("converge", "ok-01", "ok", "Install")
        gis = view.rows["gis-01"]
        assert (gis.done, gis.changed, gis.failed, gis.state, gis.detail) == (
            2, 1, 1, "failed", "Start [postgresql]")
        text = io.StringIO()
        Console(file=text, width=200, color_system=None).print(view._render())
        assert "Start [postgresql]" in text.getvalue()  # markup in a task name stays text
        view("network", "core-router", "running", "connecting")
        assert list(view.rows) == ["core-router"]  # a new phase: its own items
        assert view.rows["core-router"].done == 0


def test_off_a_terminal_only_failures_are_printed_one_line_each() -> None:
    console, out = _console(False)
    with display.view(console) as view:
        view("converge", "gis-01", "start", "Install [x]")
        view("converge", "gis-01", "changed", "Install [x]")
        view("converge", "gis-01", "unreachable", "Install [x]")
        view("network", "core-router", "failed", "TimeoutError: no route")
    assert out.getvalue().splitlines() == ["  gis-01: Install [x]: unreachable",
                                           "  core-router: TimeoutError: no route: failed"]


def test_lines_passes_the_details_on_and_silent_says_nothing() -> None:
    said: list[str] = []
    told = progress.lines(said.append)
    told("image", "fellesdrift-golden:1", "running", "building the root filesystem")
    told("image", "fellesdrift-golden:1", "start", "")
    assert said == ["building the root filesystem"]
    assert progress.silent("image", "x", "ok", "ready") is None
