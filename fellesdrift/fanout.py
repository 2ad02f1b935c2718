"""One thread fan-out: a phase's function over its items, a bounded number at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fellesdrift.progress import START, Progress, silent
from fellesdrift.results import Result

T = TypeVar("T")
R = TypeVar("R", bound=Result)


def fan_out(fn: Callable[[T], R], items: Sequence[T], *, phase: str, name: Callable[[T], str],
            failed: Callable[[T, Exception], R] | None = None, workers: int = 4,
            catch: tuple[type[Exception], ...] = (Exception,),
            progress: Progress = silent) -> list[R]:
    """``fn`` on every item, at most ``workers`` at once; the results in the items' order.

    An exception of a ``catch`` type raised for one item becomes that item's result,
    ``failed(item, exception)``: one item never stops the others. Any other exception (every
    one, without ``failed``), and Ctrl-C, ends the fan-out once the items under way are done.
    ``progress`` hears ``(phase, name(item), "start", "")`` before each item and its result's
    state and detail after it.
    """
    def one(item: T) -> R:
        label = name(item)
        progress(phase, label, START, "")
        try:
            result = fn(item)
        except catch as e:
            if failed is None:
                raise
            result = failed(item, e)
        progress(phase, label, result.state, result.detail)
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, items))
