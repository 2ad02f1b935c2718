"""A maintenance window on the Europe/Oslo wall clock, as pure functions of an instant.

An instant is inside a window when the Oslo clock at that instant reads a time inside it: on one
of its days from ``start``, until ``end`` the same day (or, when ``end`` is not later than
``start``, until ``end`` the next day). Summer time changes nothing in that reading, so:

- on the last Sunday of March the clock skips 02:00–03:00: a window of 02:00–06:00 opens at
  03:00 (summer time) and is three hours long; one of 02:00–03:00 does not open that day;
- on the last Sunday of October the clock reads 02:00–03:00 twice: a window of 02:00–06:00 is
  five hours long, and one of 02:00–02:30 opens twice (at 02:00 summer time and at 02:00
  winter time).

:func:`next_opening` is the first instant at or after a given one that is inside the window.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fellesdrift.inventory.model import (
    MaintenanceWindow,
    Municipality,
    OperationsCentre,
    ServiceLevel,
    Weekday,
)

OSLO = ZoneInfo("Europe/Oslo")
DAYS: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                             "sunday")
_DAY = 24 * 60
#: How far ahead :func:`next_opening` looks: every window opens within a week and a day.
_HORIZON = timedelta(days=9)


def _minutes(clock: str) -> int:
    hours, _, minutes = clock.partition(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class Window:
    """A window as minutes of the day: open from ``start`` for ``length`` minutes."""

    days: frozenset[int]  # Monday is 0
    start: int
    length: int

    @classmethod
    def of(cls, window: MaintenanceWindow) -> Window:
        start, end = _minutes(window.start), _minutes(window.end)
        return cls(frozenset(DAYS.index(d) for d in window.days), start,
                   end - start if end > start else end - start + _DAY)

    def contains(self, at: datetime) -> bool:
        """Whether the Oslo clock at ``at`` (an aware instant) reads a time inside the window."""
        local = at.astimezone(OSLO)
        minute = local.hour * 60 + local.minute
        end = self.start + self.length
        if local.weekday() in self.days and self.start <= minute < min(end, _DAY):
            return True
        # The part after midnight of a window opened the day before.
        return (local.weekday() - 1) % 7 in self.days and minute < end - _DAY

    def next_opening(self, at: datetime) -> datetime:
        """The first instant at or after ``at`` inside the window (UTC)."""
        at = at.astimezone(UTC)
        if self.contains(at):
            return at
        candidates = sorted(c for c in self._flips(at) if c > at)
        for c in candidates:
            if self.contains(c):
                return c
        raise AssertionError("a window with a day opens within a week")  # pragma: no cover

    def _flips(self, at: datetime) -> Iterator[datetime]:
        """Every instant from ``at`` on where the window may open: the clock reaching ``start``
        on one of its days (both readings of a repeated hour; a skipped one gives instants
        around the gap), and every change of the clock's offset."""
        first = at.astimezone(OSLO).date() - timedelta(days=1)
        clock = time(self.start // 60, self.start % 60)
        for n in range(_HORIZON.days + 1):
            day = first + timedelta(days=n)
            if day.weekday() in self.days:
                for fold in (0, 1):
                    yield datetime.combine(day, clock, OSLO).replace(fold=fold).astimezone(UTC)
        yield from transitions(at, at + _HORIZON)


def transitions(start: datetime, end: datetime) -> Iterator[datetime]:
    """The instants in [start, end) where Oslo's UTC offset changes (to the second)."""
    step = timedelta(hours=1)
    t = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while t < end:
        low, high = t, t + step
        if low.astimezone(OSLO).utcoffset() != high.astimezone(OSLO).utcoffset():
            before = low.astimezone(OSLO).utcoffset()
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(OSLO).utcoffset() == before:
                    low = middle
                else:
                    high = middle
            if start <= high < end:
                yield high
        t += step


def governing(centre: OperationsCentre, municipality: Municipality) -> ServiceLevel | None:
    """The service level whose window binds a municipality's hosts and routers: of the levels it
    subscribes at that name a window, the most demanding (highest availability, then the
    quickest response, then the first in the catalogue). None: no window binds it."""
    tiers = {s.tier for s in municipality.services}
    levels = [lvl for lvl in centre.service_levels
              if lvl.id in tiers and lvl.maintenance_window is not None]
    if not levels:
        return None
    return min(levels, key=lambda lvl: (-lvl.availability_percent, lvl.response_hours,
                                        centre.service_levels.index(lvl)))


def describe(window: MaintenanceWindow) -> str:
    """The window in words, e.g. 'sunday 02:00-06:00 (Europe/Oslo)'."""
    return f"{', '.join(window.days)} {window.start}-{window.end} (Europe/Oslo)"


def shown(at: datetime) -> str:
    """An instant on the Oslo clock, e.g. 'Sunday 2027-03-28 03:00 CEST'."""
    return at.astimezone(OSLO).strftime("%A %Y-%m-%d %H:%M %Z")

