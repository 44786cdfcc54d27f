"""When a customer may be called: the callee's time zone and a calling window in
their local time. Shared by every plugin that calls out (call backs, campaigns).

Pure functions of explicit unix times, so the rules are tested with any clock.
A window is ``(start, end)`` in minutes of the local day, ``[start, end)``; a
window whose start is after its end runs overnight (22:00-06:00).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cti.core.numbers import zones_of

#: "08:30", or "24:00" for the end of the day.
CLOCK_PATTERN = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"

Window = tuple[int, int]


def minutes(hhmm: str) -> int:
    """"08:30" -> 510 (ValueError if it is not a time of day)."""
    if not re.fullmatch(CLOCK_PATTERN, hhmm):
        raise ValueError(f"{hhmm!r} is not a time of day (HH:MM)")
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def window_of(start: str, end: str) -> Window:
    """The window from two times of day (ValueError if they are equal)."""
    window = minutes(start), minutes(end)
    if window[0] == window[1] or window[0] == 24 * 60:
        raise ValueError(f"the calling window {start}-{end} is empty")
    return window


def zone_for(number: str, known: str | None, default: str) -> str:
    """The callee's IANA zone: the one the gateway knows for the number, else the first
    zone of its country or area (several: the US, Russia ...), else ``default``."""
    if known:
        return known
    zones = zones_of(number)
    return zones[0] if zones else default


def in_window(at: float, zone: str, window: Window) -> bool:
    """Whether ``at`` falls in the window in ``zone``'s local time."""
    return _of_day(datetime.fromtimestamp(at, ZoneInfo(zone))) in _Span(window)


def next_call_time(due: float, zone: str, window: Window) -> float:
    """``due`` if it falls in the calling window in ``zone``, else the next opening of
    the window in that zone."""
    tz = ZoneInfo(zone)
    local = datetime.fromtimestamp(due, tz)
    of_day = _of_day(local)
    start, end = window
    if of_day in _Span(window):
        return due
    # Outside: the window opens today at start unless start has passed (a daytime
    # window after its end); an overnight window is only closed before its start.
    day = local.date() if of_day < start else local.date() + timedelta(days=1)
    if start > end:
        day = local.date()
    opening = datetime.combine(day, time(start // 60, start % 60), tzinfo=tz)
    return opening.timestamp()


def _of_day(local: datetime) -> float:
    return local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60


class _Span:
    def __init__(self, window: Window) -> None:
        self.start, self.end = window

    def __contains__(self, of_day: float) -> bool:
        if self.start < self.end:
            return self.start <= of_day < self.end
        return of_day >= self.start or of_day < self.end


__all__ = ["CLOCK_PATTERN", "Window", "in_window", "is_zone", "minutes", "next_call_time",
           "window_of", "zone_for"]


def is_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows."""
    if not re.fullmatch(r"[A-Za-z0-9_+\-/]+", name):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
