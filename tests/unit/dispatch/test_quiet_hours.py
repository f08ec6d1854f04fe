"""Quiet hours: the exact minute they start and end, windows over midnight, DST transitions."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.dispatch.quiet_hours import first_instant, quiet_status
from schemas.dispatch.bundle import QuietWindow
from tests.unit.dispatch.builders import utc

CHICAGO = "America/Chicago"
NEW_YORK = "America/New_York"
SECOND = timedelta(seconds=1)


def windows(*spans: str, days: tuple[str, ...] = ()) -> tuple[QuietWindow, ...]:
    return tuple(
        msgspec.convert(
            {"start": s.split("-")[0], "end": s.split("-")[1], "days": days}, QuietWindow
        )
        for s in spans
    )


NIGHT = windows("21:00-07:00")


@pytest.mark.parametrize(
    ("instant", "quiet"),
    [
        (utc(2025, 6, 3, 1, 59, 59), False),  # 20:59:59 CDT
        (utc(2025, 6, 3, 2, 0, 0), True),  # 21:00:00 CDT: the first quiet second
        (utc(2025, 6, 3, 5, 30, 0), True),  # 00:30 CDT: after midnight, window of yesterday
        (utc(2025, 6, 3, 11, 59, 59), True),  # 06:59:59 CDT: the last quiet second
        (utc(2025, 6, 3, 12, 0, 0), False),  # 07:00:00 CDT: quiet hours are over
    ],
)
def test_start_is_inclusive_end_is_exclusive(instant: datetime, quiet: bool) -> None:
    assert quiet_status(NIGHT, CHICAGO, instant).quiet is quiet


def test_until_is_the_end_instant_in_utc() -> None:
    status = quiet_status(NIGHT, CHICAGO, utc(2025, 6, 3, 2, 0))
    assert status.until == utc(2025, 6, 3, 12, 0)
    assert status.occurrence is not None
    assert status.occurrence.day == date(2025, 6, 2)
    assert status.local.strftime("%H:%M %Z") == "21:00 CDT"


def test_now_in_any_offset_means_the_same_instant() -> None:
    instant = utc(2025, 6, 3, 2, 0)
    tokyo = instant.astimezone(ZoneInfo("Asia/Tokyo"))
    assert quiet_status(NIGHT, CHICAGO, tokyo) == quiet_status(NIGHT, CHICAGO, instant)


def test_days_are_the_days_a_window_starts() -> None:
    friday_nights = windows("21:00-07:00", days=("fri",))
    assert quiet_status(friday_nights, CHICAGO, utc(2025, 6, 7, 8, 0)).quiet  # Sat 03:00
    assert not quiet_status(friday_nights, CHICAGO, utc(2025, 6, 8, 3, 0)).quiet  # Sat 22:00
    assert not quiet_status(friday_nights, CHICAGO, utc(2025, 6, 5, 3, 0)).quiet  # Wed 22:00


def test_touching_windows_chain_into_one_quiet_period() -> None:
    split = windows("21:00-24:00", "00:00-07:00")
    status = quiet_status(split, CHICAGO, utc(2025, 6, 3, 3, 0))  # 22:00 CDT
    assert status.quiet
    assert status.until == utc(2025, 6, 3, 12, 0)
    weekend = windows("00:00-24:00", days=("sat", "sun"))
    saturday = quiet_status(weekend, CHICAGO, utc(2025, 6, 7, 17, 0))
    assert saturday.until == utc(2025, 6, 9, 5, 0)  # Monday 00:00 CDT


def test_a_window_ending_at_24_00_ends_at_midnight() -> None:
    late = windows("22:00-24:00")
    assert quiet_status(late, CHICAGO, utc(2025, 6, 3, 4, 59, 59)).quiet  # 23:59:59
    assert not quiet_status(late, CHICAGO, utc(2025, 6, 3, 5, 0)).quiet  # 00:00


# DST: New York springs forward 2025-03-09 02:00 EST -> 03:00 EDT
#      and falls back 2025-11-02 02:00 EDT -> 01:00 EST.

NY_NIGHT = windows("22:00-06:00")


def test_spring_forward_night_is_an_hour_shorter() -> None:
    start = utc(2025, 3, 9, 3, 0)  # Sat 22:00 EST
    status = quiet_status(NY_NIGHT, NEW_YORK, start)
    assert status.quiet
    assert status.until == utc(2025, 3, 9, 10, 0)  # Sun 06:00 EDT
    assert status.until - start == timedelta(hours=7)
    assert quiet_status(NY_NIGHT, NEW_YORK, utc(2025, 3, 9, 9, 59, 59)).quiet
    assert not quiet_status(NY_NIGHT, NEW_YORK, utc(2025, 3, 9, 10, 0)).quiet


def test_fall_back_night_is_an_hour_longer() -> None:
    start = utc(2025, 11, 2, 2, 0)  # Sat 22:00 EDT
    status = quiet_status(NY_NIGHT, NEW_YORK, start)
    assert status.until == utc(2025, 11, 2, 11, 0)  # Sun 06:00 EST
    assert status.until - start == timedelta(hours=9)
    assert quiet_status(NY_NIGHT, NEW_YORK, utc(2025, 11, 2, 10, 59, 59)).quiet
    assert not quiet_status(NY_NIGHT, NEW_YORK, utc(2025, 11, 2, 11, 0)).quiet


def test_a_window_starting_in_the_skipped_hour_starts_when_the_clock_jumps() -> None:
    early = windows("02:30-05:00")
    assert not quiet_status(early, NEW_YORK, utc(2025, 3, 9, 6, 59, 59)).quiet  # 01:59:59 EST
    status = quiet_status(early, NEW_YORK, utc(2025, 3, 9, 7, 0))  # 03:00:00 EDT
    assert status.quiet
    assert status.until == utc(2025, 3, 9, 9, 0)  # 05:00 EDT


def test_a_window_inside_the_skipped_hour_does_not_happen_that_day() -> None:
    inside = windows("02:10-02:40")
    for minute in range(0, 60, 5):
        assert not quiet_status(inside, NEW_YORK, utc(2025, 3, 9, 7, minute)).quiet
    assert quiet_status(inside, NEW_YORK, utc(2025, 3, 10, 6, 15)).quiet  # the next day 02:15 EDT


def test_a_window_ending_in_the_repeated_hour_ends_at_its_first_occurrence() -> None:
    late = windows("23:00-01:30")
    assert quiet_status(late, NEW_YORK, utc(2025, 11, 2, 5, 29, 59)).quiet  # 01:29:59 EDT
    assert not quiet_status(late, NEW_YORK, utc(2025, 11, 2, 5, 30)).quiet  # 01:30:00 EDT
    assert not quiet_status(late, NEW_YORK, utc(2025, 11, 2, 6, 15)).quiet  # 01:15 EST again


def test_a_window_starting_in_the_repeated_hour_starts_at_its_first_occurrence() -> None:
    repeated = windows("01:30-03:00")
    assert not quiet_status(repeated, NEW_YORK, utc(2025, 11, 2, 5, 29, 59)).quiet
    assert quiet_status(repeated, NEW_YORK, utc(2025, 11, 2, 5, 30)).quiet  # 01:30 EDT
    # 01:00 EST reads earlier than 01:30 on the wall, but the window already began.
    assert quiet_status(repeated, NEW_YORK, utc(2025, 11, 2, 6, 0)).quiet
    assert quiet_status(repeated, NEW_YORK, utc(2025, 11, 2, 6, 0)).until == utc(2025, 11, 2, 8, 0)


def test_first_instant_in_gaps_and_folds() -> None:
    zone = ZoneInfo(NEW_YORK)
    assert first_instant(date(2025, 3, 9), "02:30", zone) == utc(2025, 3, 9, 7, 0)
    assert first_instant(date(2025, 3, 9), "03:00", zone) == utc(2025, 3, 9, 7, 0)
    assert first_instant(date(2025, 11, 2), "01:30", zone) == utc(2025, 11, 2, 5, 30)
    assert first_instant(date(2025, 11, 2), "24:00", zone) == utc(2025, 11, 3, 5, 0)
    lord_howe = ZoneInfo("Australia/Lord_Howe")  # a 30-minute DST shift
    assert first_instant(date(2025, 10, 5), "02:15", lord_howe) == utc(2025, 10, 4, 15, 30)


@settings(max_examples=60, deadline=None)
@given(
    seconds=st.integers(0, 365 * 24 * 3600 - 1),
    zone=st.sampled_from([CHICAGO, NEW_YORK, "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata"]),
)
def test_quiet_periods_end_exactly_at_until(seconds: int, zone: str) -> None:
    instant = utc(2025, 1, 1, 0, 0) + timedelta(seconds=seconds)
    status = quiet_status(NIGHT, zone, instant)
    if status.quiet:
        assert status.until is not None
        assert status.until > instant
        assert quiet_status(NIGHT, zone, status.until - SECOND).quiet
        assert not quiet_status(NIGHT, zone, status.until).quiet
    local = instant.astimezone(ZoneInfo(zone))
    transitions = {
        d
        for d in (local.date() - timedelta(days=1), local.date())
        if (
            datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(zone)).utcoffset()
            != (
                datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(zone)) + timedelta(days=1)
            ).utcoffset()
        )
    }
    if not transitions:  # away from DST changes, quiet hours are a plain wall-clock test
        wall = local.strftime("%H:%M")
        assert status.quiet == (wall >= "21:00" or wall < "07:00")
