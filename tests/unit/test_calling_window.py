"""The calling window in the callee's local time (cti.core.calling)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cti.core.calling import in_window, minutes, next_call_time, window_of, zone_for

TOKYO = ZoneInfo("Asia/Tokyo")


def at(zone: ZoneInfo, *args: int) -> float:
    return datetime(*args, tzinfo=zone).timestamp()  # type: ignore[misc]


def test_a_daytime_window_waits_for_the_morning_or_the_next_day() -> None:
    window = window_of("08:00", "21:00")
    inside = at(TOKYO, 2026, 12, 2, 10, 0)
    assert next_call_time(inside, "Asia/Tokyo", window) == inside
    assert next_call_time(at(TOKYO, 2026, 12, 2, 3, 0), "Asia/Tokyo", window) == at(
        TOKYO, 2026, 12, 2, 8, 0)
    assert next_call_time(at(TOKYO, 2026, 12, 2, 21, 0), "Asia/Tokyo", window) == at(
        TOKYO, 2026, 12, 3, 8, 0)


def test_an_overnight_window_runs_past_midnight() -> None:
    window = window_of("22:00", "06:00")
    for hour in (22, 23, 0, 5):
        t = at(TOKYO, 2026, 12, 2, hour, 30)
        assert in_window(t, "Asia/Tokyo", window) and next_call_time(t, "Asia/Tokyo",
                                                                     window) == t
    noon = at(TOKYO, 2026, 12, 2, 12, 0)
    assert not in_window(noon, "Asia/Tokyo", window)
    assert next_call_time(noon, "Asia/Tokyo", window) == at(TOKYO, 2026, 12, 2, 22, 0)


def test_the_whole_day_and_empty_windows() -> None:
    assert window_of("00:00", "24:00") == (0, 1440)
    assert in_window(at(TOKYO, 2026, 12, 2, 23, 59), "Asia/Tokyo", (0, 1440))
    for start, end in (("09:00", "09:00"), ("24:00", "08:00")):
        with pytest.raises(ValueError, match="is empty"):
            window_of(start, end)
    with pytest.raises(ValueError, match="not a time of day"):
        minutes("8h")


def test_the_zone_of_a_number() -> None:
    assert zone_for("+81312345678", None, "Europe/Amsterdam") == "Asia/Tokyo"
    assert zone_for("+442071234567", "Europe/Dublin", "UTC") == "Europe/Dublin"
    assert zone_for("+999", None, "Europe/Amsterdam") == "Europe/Amsterdam"
