from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cti.ivr.hours import is_open, parse_spans

AMS = "Europe/Amsterdam"


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(AMS)).timestamp()


def test_open_inside_spans_closed_outside_and_on_missing_days() -> None:
    days = {"mon": "08:00-12:00, 13:00-20:00", "sat": "10:00-24:00"}
    assert is_open(days, AMS, at("2026-11-30T08:00"))  # a Monday
    assert not is_open(days, AMS, at("2026-11-30T12:30"))
    assert not is_open(days, AMS, at("2026-11-30T20:00"))  # the end is exclusive
    assert is_open(days, AMS, at("2026-11-28T23:59"))  # Saturday until midnight
    assert not is_open(days, AMS, at("2026-11-29T11:00"))  # Sunday: not listed


def test_the_centres_time_zone_counts_not_the_callers() -> None:
    days = {"mon": "09:00-10:00"}
    utc_8am = datetime(2026, 11, 30, 8, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    assert is_open(days, AMS, utc_8am)  # 09:00 in Amsterdam
    assert not is_open(days, "Asia/Tokyo", utc_8am)


@pytest.mark.parametrize("bad", ["8-12", "12:00-08:00", "25:00-26:00", "08:00"])
def test_bad_spans_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_spans(bad)
