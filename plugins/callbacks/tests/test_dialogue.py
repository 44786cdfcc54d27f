"""The dialogue and the time rules, pure: no SIP, no clock, no store."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from plugins.callbacks.dialogue import (
    CANCELLED,
    CONFIRM,
    DIGITS,
    DONE,
    INVALID,
    LATER,
    NUMBER_IS,
    OFFER,
    WHEN,
    Commit,
    Dialogue,
    GiveUp,
    Play,
)
from plugins.callbacks.timing import (
    later_slot,
    next_call_time,
    normalize_number,
    spoken_digits,
    zone_for,
)

NUMBER = "+34911234567"
WINDOW = (8 * 60, 21 * 60)


def dialogue() -> Dialogue:
    d = Dialogue(NUMBER, lambda keyed: normalize_number(keyed, "ES"), max_repeats=2)
    assert d.offer() == [Play((OFFER,))]
    return d


def readback(number: str) -> tuple[str, ...]:
    return (NUMBER_IS, *(DIGITS[int(c)] for c in spoken_digits(number)), CONFIRM)


def test_confirm_the_number_and_as_soon_as_possible() -> None:
    d = dialogue()
    assert d.on_digit("2") is None  # before the offer's 1, keys are not taken
    assert d.on_digit("1") == [Play(readback(NUMBER))]
    assert readback(NUMBER)[1:3] == (DIGITS[0], DIGITS[0])  # "+" is read as 00
    assert d.asking and d.state == "confirm"
    assert d.on_digit("1") == [Play((WHEN,))]
    assert d.on_digit("1") == [Commit(NUMBER, "asap")]
    assert d.on_digit("5") == []  # taken while it is stored, nothing said
    assert d.committed() == [Play((DONE,))]
    assert not d.asking


def test_another_number_ending_with_hash_then_a_later_slot() -> None:
    d = dialogue()
    d.on_digit("1")
    for key in "612345678":  # national, in the caller's country (Spain)
        assert d.on_digit(key) == []
    assert d.state == "entry"
    assert d.on_digit("#") == [Play(readback("+34612345678"))]
    assert d.number == "+34612345678"
    d.on_digit("1")
    assert d.on_digit("2") == [Play((LATER,))]
    assert d.on_digit("2") == [Commit("+34612345678", "tomorrow")]


def test_a_number_that_cannot_be_one_is_refused_and_the_old_one_read_again() -> None:
    d = dialogue()
    d.on_digit("1")
    for key in "0012":
        d.on_digit(key)
    assert d.on_digit("#") == [Play((INVALID, *readback(NUMBER)))]
    assert d.number == NUMBER and d.state == "confirm"
    d.on_digit("9")
    assert d.on_digit("*") == [Play(readback(NUMBER))]  # * goes back to the read-back


def test_an_invalid_key_repeats_the_question_then_gives_up() -> None:
    d = dialogue()
    d.on_digit("1")
    d.on_digit("1")
    assert d.on_digit("7") == [Play((INVALID, WHEN))]
    assert d.on_digit("#") == [Play((INVALID, WHEN))]
    assert d.on_digit("0") == [Play((CANCELLED,)), GiveUp()]
    assert d.state == "over" and d.on_digit("1") is None


def test_no_input_repeats_the_question_and_stale_timers_do_nothing() -> None:
    d = dialogue()
    d.on_digit("1")
    step = d.step
    assert d.on_no_input(step) == [Play(readback(NUMBER))]
    assert d.on_no_input(step) == []  # the timer of a question asked before
    assert d.on_no_input(d.step) == [Play(readback(NUMBER))]
    assert d.on_no_input(d.step) == [Play((CANCELLED,)), GiveUp()]


def at(zone: str, year: int, month: int, day: int, hour: int, minute: int) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).timestamp()


def test_the_calling_window_in_the_callees_local_time() -> None:
    tokyo = "Asia/Tokyo"
    # 03:00 in Tokyo: waits until 08:00 the same day there.
    assert next_call_time(at(tokyo, 2026, 12, 2, 3, 0), tokyo, WINDOW) == at(
        tokyo, 2026, 12, 2, 8, 0)
    # 21:00 (the window's end is out): 08:00 the next day.
    assert next_call_time(at(tokyo, 2026, 12, 2, 21, 0), tokyo, WINDOW) == at(
        tokyo, 2026, 12, 3, 8, 0)
    inside = at(tokyo, 2026, 12, 2, 20, 59)
    assert next_call_time(inside, tokyo, WINDOW) == inside
    # Across a change of daylight saving time (Madrid, the last Sunday of March).
    madrid = "Europe/Madrid"
    assert next_call_time(at(madrid, 2027, 3, 27, 23, 30), madrid, WINDOW) == at(
        madrid, 2027, 3, 28, 8, 0)


def test_later_slots_and_zones() -> None:
    z = "Europe/Madrid"
    now = at(z, 2026, 12, 2, 14, 20)
    assert later_slot("asap", now, z) == now
    assert later_slot("hour", now, z) == at(z, 2026, 12, 2, 15, 0)
    assert later_slot("hour", at(z, 2026, 12, 2, 14, 40), z) == at(z, 2026, 12, 2, 16, 0)
    assert later_slot("tomorrow", now, z, 9) == at(z, 2026, 12, 3, 9, 0)
    assert zone_for(NUMBER, None, "Europe/Amsterdam") == "Europe/Madrid"
    assert zone_for("+12125550100", None, "Europe/Amsterdam").startswith("America/")
    assert zone_for("+12125550100", "America/New_York", "X") == "America/New_York"
    assert zone_for("garbage", None, "Europe/Amsterdam") == "Europe/Amsterdam"
    assert normalize_number("0034911234567", None) == NUMBER
    assert normalize_number("12", "ES") is None
