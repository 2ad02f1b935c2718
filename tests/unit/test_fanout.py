"""The one thread fan-out: results in the items' order, at most N at once, an item's
exception its own result, progress before and after each item."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from fellesdrift.fanout import fan_out
from fellesdrift.results import Result


@dataclass
class Item(Result):
    error: str = ""
    changes: int = 0

    @property
    def changed(self) -> int:
        return self.changes


def test_results_keep_the_items_order_and_at_most_n_run_at_once() -> None:
    running, most, lock = 0, 0, threading.Lock()
    release = threading.Barrier(3)  # the first three wait for each other: three ran at once

    def work(n: int) -> Item:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        if n < 3:
            release.wait(timeout=30)
        with lock:
            running -= 1
        return Item(f"item-{n}", changes=n % 2)

    items = list(range(9))
    results = fan_out(work, items, phase="t", name=str, workers=3,
                      failed=lambda n, e: Item(str(n), error=str(e)))
    assert [r.name for r in results] == [f"item-{n}" for n in items]
    assert most == 3


def test_an_exception_is_that_items_result_and_progress_says_each_item() -> None:
    heard: list[tuple[str, str, str, str]] = []
    lock = threading.Lock()

    def progress(phase: str, item: str, state: str, detail: str, /) -> None:
        with lock:
            heard.append((phase, item, state, detail))

    def work(name: str) -> Item:
        if name == "b":
            raise OSError("no route to host")
        return Item(name, changes=name == "c")

    results = fan_out(work, ["a", "b", "c"], phase="network", name=lambda n: f"r-{n}",
                      failed=lambda n, e: Item(n, error=f"{type(e).__name__}: {e}"),
                      workers=2, progress=progress)
    assert [(r.name, r.ok, r.error) for r in results] == [
        ("a", True, ""), ("b", False, "OSError: no route to host"), ("c", True, "")]
    assert sorted(h for h in heard if h[2] != "start") == [
        ("network", "r-a", "ok", ""), ("network", "r-b", "failed", "OSError: no route to host"),
        ("network", "r-c", "changed", "")]
    for item in ("r-a", "r-b", "r-c"):  # each item's start comes before its end
        mine = [h[2] for h in heard if h[1] == item]
        assert len(mine) == 2 and mine[0] == "start"


def test_an_exception_not_caught_ends_the_fan_out() -> None:
    def work(name: str) -> Item:
        raise KeyError(name)

    with pytest.raises(KeyError):
        fan_out(work, ["a", "b"], phase="t", name=str, catch=(OSError,),
                failed=lambda n, e: Item(n, error=str(e)))


def test_without_failed_every_exception_ends_the_fan_out() -> None:
    def work(name: str) -> Item:
        if name == "b":
            raise OSError(name)
        return Item(name)

    with pytest.raises(OSError, match="b"):
        fan_out(work, ["a", "b", "c"], phase="t", name=str)
    assert [r.name for r in fan_out(work, ["a", "c"], phase="t", name=str)] == ["a", "c"]
