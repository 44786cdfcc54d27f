"""When a call back is tried: the callee's zone, the later slots offered in the
dialogue, and the calling window (cti.core.calling, shared with campaigns). Pure
functions of explicit times."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import phonenumbers

from cti.core.calling import next_call_time, zone_for
from cti.core.numbers import international

When = Literal["asap", "hour", "tomorrow"]


def later_slot(when: When, now: float, zone: str, tomorrow_hour: int = 9) -> float:
    """The time of a slot chosen in the dialogue, before the calling window applies.

    - ``asap``: now;
    - ``hour`` ("in about an hour"): the first whole local hour at least 30 minutes
      from now (so 30 to 90 minutes away);
    - ``tomorrow`` ("tomorrow morning at nine"): tomorrow at ``tomorrow_hour``:00 local.
    """
    if when == "asap":
        return now
    tz = ZoneInfo(zone)
    if when == "hour":
        soon = datetime.fromtimestamp(now + 1800, tz)
        top = soon.replace(minute=0, second=0, microsecond=0)
        return top.timestamp() if top == soon else (top + timedelta(hours=1)).timestamp()
    day = datetime.fromtimestamp(now, tz).date() + timedelta(days=1)
    return datetime.combine(day, time(tomorrow_hour), tzinfo=tz).timestamp()


def normalize_number(keyed: str, country: str | None) -> str | None:
    """A number keyed in by the caller (``00`` international or national with the
    caller's country) as E.164, or None if it cannot be a phone number."""
    digits = keyed.strip()
    if not digits.isdigit() or not 6 <= len(digits) <= 18:
        return None
    text = international(digits)
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else (country or None))
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def spoken_digits(number: str) -> list[str]:
    """The digits read back to the caller: as they would key it ("+" is "00")."""
    text = "00" + number[1:] if number.startswith("+") else number
    return [c for c in text if c.isdigit()]


__all__ = ["When", "later_slot", "next_call_time", "normalize_number",
           "spoken_digits", "zone_for"]


def start_of_today(now: float) -> float:
    """The gateway host's local midnight before ``now`` (what "today" counts from)."""
    return datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0,
                                               microsecond=0).timestamp()
