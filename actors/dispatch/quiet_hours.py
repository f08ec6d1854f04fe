"""Quiet-hours arithmetic on wall-clock windows in an IANA time zone, DST included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.dispatch.bundle import WEEKDAYS, QuietWindow

_HORIZON_DAYS = 9
"""Occurrences looked at: from yesterday to a week ahead, enough to chain a week of windows."""


@dataclass(frozen=True)
class Occurrence:
    """One window on one day, as instants."""

    window: QuietWindow
    day: date
    start: datetime
    end: datetime


@dataclass(frozen=True)
class QuietStatus:
    """Whether ``now`` is quiet, and if so, which window and until when."""

    quiet: bool
    local: datetime
    """``now`` in the zone."""
    occurrence: Occurrence | None = None
    until: datetime | None = None
    """When quiet hours end (UTC), following windows that touch or overlap."""


def first_instant(day: date, clock: str, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the wall clock in ``zone`` reads ``clock`` on ``day``.

    When the time occurs twice (the hour repeated at fall-back) this is its
    first occurrence; when it does not occur (skipped at spring-forward) it is
    the first instant after the gap, when the clock jumps past it.
    """
    if clock == "24:00":
        day, clock = day + timedelta(days=1), "00:00"
    hour, minute = int(clock[:2]), int(clock[3:])
    wall = datetime(day.year, day.month, day.day, hour, minute)
    candidates = [wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    real = [c for c in candidates if _wall(c, zone) == wall]
    if real:
        return min(real)
    # In a gap: the wall clock is monotonic between the two readings, so bisect for the jump.
    low, high = int(min(candidates).timestamp()), int(max(candidates).timestamp())
    while low < high:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), zone) >= wall:
            high = middle
        else:
            low = middle + 1
    return datetime.fromtimestamp(low, UTC)


def occurrences(windows: tuple[QuietWindow, ...], zone: ZoneInfo, day: date) -> list[Occurrence]:
    """The windows that start on ``day`` (per their ``days``), as instants."""
    found = []
    for window in windows:
        if window.days and WEEKDAYS[day.weekday()] not in window.days:
            continue
        crosses = window.end != "24:00" and window.end <= window.start
        end_day = day + timedelta(days=1) if crosses else day
        found.append(
            Occurrence(
                window=window,
                day=day,
                start=first_instant(day, window.start, zone),
                end=first_instant(end_day, window.end, zone),
            )
        )
    return found


def quiet_status(windows: tuple[QuietWindow, ...], time_zone: str, now: datetime) -> QuietStatus:
    """Whether ``now`` falls in quiet hours: start inclusive, end exclusive, to the second."""
    zone = ZoneInfo(time_zone)
    instant = now.astimezone(UTC)
    local = instant.astimezone(zone)
    today = local.date()
    spans = sorted(
        (
            occ
            for offset in range(-1, _HORIZON_DAYS)
            for occ in occurrences(windows, zone, today + timedelta(days=offset))
            if occ.start < occ.end
        ),
        key=lambda o: (o.start, o.end),
    )
    covering = [o for o in spans if o.start <= instant < o.end]
    if not covering:
        return QuietStatus(quiet=False, local=local)
    first = covering[0]
    until = max(o.end for o in covering)
    for occ in spans:  # sorted by start: one pass extends through chained windows
        if occ.start <= until < occ.end:
            until = occ.end
    return QuietStatus(quiet=True, local=local, occurrence=first, until=until)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)
