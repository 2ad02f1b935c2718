"""Maintenance windows on the Oslo clock: inside or not, and when the next one opens, across
both changes of summer time, midnight and the week's end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fellesdrift.change import windows
from fellesdrift.change.windows import OSLO, Window
from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import MaintenanceWindow
from fellesdrift.paths import INVENTORIES


def window(days: list[str], start: str, end: str) -> Window:
    return Window.of(MaintenanceWindow.model_validate({"days": days, "start": start, "end": end}))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def oslo(text: str, fold: int = 0) -> datetime:
    """A reading of the Oslo clock as an instant (UTC: Python never finds an Oslo time in a
    repeated hour equal to one of another zone)."""
    return datetime.fromisoformat(text).replace(tzinfo=OSLO, fold=fold).astimezone(UTC)


def brute_next(w: Window, at: datetime, within: timedelta = timedelta(days=8)
               ) -> datetime | None:
    """The first whole minute (or ``at``) inside the window, minute by minute; None if there is
    none ``within``."""
    t = at
    while not w.contains(t):
        t = (t + timedelta(minutes=1)).replace(second=0, microsecond=0)
        if t - at > within:
            return None
    return t


# 2027: summer time starts Sunday 28 March at 01:00 UTC (02:00 → 03:00) and ends Sunday
# 31 October at 01:00 UTC (03:00 → 02:00).
SPRING = utc("2027-03-28T01:00:00")
AUTUMN = utc("2027-10-31T01:00:00")


def test_the_clock_changes_where_2027_says() -> None:
    found = list(windows.transitions(utc("2027-01-01T00:00:00"), utc("2028-01-01T00:00:00")))
    assert found == [SPRING, AUTUMN]


def test_spring_forward_a_window_over_the_skipped_hour_opens_when_the_clock_jumps() -> None:
    w = window(["sunday"], "02:00", "06:00")
    assert not w.contains(SPRING - timedelta(seconds=1))  # 01:59:59 CET
    assert w.contains(SPRING)  # 03:00 CEST
    assert w.next_opening(utc("2027-03-27T12:00:00")) == SPRING
    # Three hours long that night: it closes at 06:00 CEST, 04:00 UTC.
    assert w.contains(utc("2027-03-28T03:59:00"))
    assert not w.contains(utc("2027-03-28T04:00:00"))
    # The week after, on summer time: 02:00 CEST is 00:00 UTC.
    assert w.next_opening(utc("2027-03-28T05:00:00")) == utc("2027-04-04T00:00:00")


def test_spring_forward_a_window_inside_the_skipped_hour_does_not_open_that_day() -> None:
    w = window(["sunday"], "02:00", "03:00")
    assert w.next_opening(utc("2027-03-27T12:00:00")) == oslo("2027-04-04T02:00:00")
    assert not any(w.contains(SPRING + timedelta(minutes=m)) for m in range(-120, 180))


def test_spring_forward_a_start_in_the_gap_opens_at_the_jump() -> None:
    w = window(["sunday"], "02:30", "04:00")
    assert w.next_opening(utc("2027-03-28T00:00:00")) == SPRING  # 03:00 CEST
    assert brute_next(w, utc("2027-03-28T00:00:00")) == SPRING


def test_fall_back_a_window_over_the_repeated_hour_lasts_an_hour_longer() -> None:
    w = window(["sunday"], "02:00", "06:00")
    opens = w.next_opening(utc("2027-10-30T12:00:00"))
    assert opens == oslo("2027-10-31T02:00:00", fold=0) == utc("2027-10-31T00:00:00")
    inside = sum(w.contains(opens + timedelta(minutes=m)) for m in range(0, 8 * 60))
    assert inside == 5 * 60  # 02:00 CEST to 06:00 CET


def test_fall_back_a_window_in_the_repeated_hour_opens_twice() -> None:
    w = window(["sunday"], "02:00", "02:30")
    first = w.next_opening(utc("2027-10-30T12:00:00"))
    assert first == utc("2027-10-31T00:00:00")  # 02:00 CEST
    after_first = first + timedelta(minutes=30)
    assert not w.contains(after_first)
    assert w.next_opening(after_first) == AUTUMN  # 02:00 CET, the second reading
    assert w.next_opening(AUTUMN + timedelta(minutes=30)) == utc("2027-11-07T01:00:00")


def test_a_window_crossing_midnight_goes_on_the_next_day() -> None:
    w = window(["tuesday"], "22:00", "02:00")
    assert w.contains(oslo("2027-06-08T22:00:00"))  # a Tuesday
    assert w.contains(oslo("2027-06-09T01:59:59"))  # Wednesday morning
    assert not w.contains(oslo("2027-06-09T02:00:00"))
    assert not w.contains(oslo("2027-06-09T22:30:00"))  # Wednesday evening is not a window day
    assert not w.contains(oslo("2027-06-08T01:00:00"))  # Tuesday morning: Monday had none
    assert w.next_opening(oslo("2027-06-09T02:00:00")) == oslo("2027-06-15T22:00:00")


def test_the_weeks_end_sunday_night_into_monday() -> None:
    w = window(["sunday"], "23:00", "03:00")
    assert w.contains(oslo("2027-06-14T02:59:00"))  # Monday
    assert not w.contains(oslo("2027-06-14T03:00:00"))
    assert w.next_opening(oslo("2027-06-14T03:00:00")) == oslo("2027-06-20T23:00:00")
    # Saturday night until midnight, then Sunday begins a window of its own.
    every_night = window(["saturday", "sunday"], "20:00", "24:00")
    assert every_night.contains(oslo("2027-06-19T23:59:59"))
    assert not every_night.contains(oslo("2027-06-20T00:00:00"))


@pytest.mark.parametrize("start, end", [("00:00", "24:00"), ("12:00", "12:00")])
def test_a_window_around_the_clock_is_always_open(start: str, end: str) -> None:
    w = window(list(windows.DAYS), start, end)
    for t in (SPRING, AUTUMN, utc("2027-06-13T22:00:00"), utc("2027-12-31T23:59:59")):
        assert w.contains(t)
        assert w.next_opening(t) == t


def test_end_equal_to_start_is_24_hours() -> None:
    w = window(["wednesday"], "12:00", "12:00")
    assert not w.contains(oslo("2027-06-09T11:59:00"))
    assert w.contains(oslo("2027-06-09T12:00:00"))
    assert w.contains(oslo("2027-06-10T11:59:59"))  # Thursday, before noon
    assert not w.contains(oslo("2027-06-10T12:00:00"))


@pytest.mark.parametrize("spec", [(["sunday"], "02:00", "06:00"), (["sunday"], "02:30", "03:30"),
                                  (["saturday", "sunday"], "23:00", "02:30"),
                                  (["monday", "friday"], "01:15", "01:45")])
@pytest.mark.parametrize("around", [SPRING, AUTUMN])
def test_next_opening_is_the_first_minute_inside(spec: tuple[list[str], str, str],
                                                 around: datetime) -> None:
    """Against a minute-by-minute walk, from every half hour of the day around a change."""
    w = window(*spec)
    ahead = timedelta(hours=30)
    for half_hours in range(-24, 24):
        at = around + timedelta(minutes=30 * half_hours)
        walked = brute_next(w, at, ahead)
        opens = w.next_opening(at)
        if walked is None:
            assert opens - at > ahead, at
        else:
            assert opens == walked, at


def test_a_municipality_is_bound_by_its_most_demanding_level() -> None:
    model = inventory.load([INVENTORIES])
    centre = model.centre
    for m in model.municipalities:
        level = windows.governing(centre, m)
        tiers = {s.tier for s in m.services}
        assert level is not None and level.id in tiers
        if "pluss" in tiers:
            assert level.id == "pluss"
        elif "standard" in tiers:
            assert level.id == "standard"


def test_described_and_shown_on_the_oslo_clock() -> None:
    mw = MaintenanceWindow.model_validate({"days": ["sunday"], "start": "02:00", "end": "06:00"})
    assert windows.describe(mw) == "sunday 02:00-06:00 (Europe/Oslo)"
    assert windows.shown(SPRING) == "Sunday 2027-03-28 03:00 CEST"
    assert windows.shown(AUTUMN) == "Sunday 2027-10-31 02:00 CET"
