"""Opening hours: is the line open at a given moment, in the centre's time zone (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time, timezone
from typing import Literal
from zoneinfo import ZoneInfo

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def parse_spans(text: str) -> list[tuple[time, time | None]]:
    """ "08:00-12:00, 13:00-20:00" -> spans; "24:00" as an end means midnight."""
    spans = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        m = _SPAN.match(part)
        if not m:
            raise ValueError(f"expected HH:MM-HH:MM, got {part!r}")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        start = time(h1 % 24, m1)
        end = None if (h2, m2) == (24, 0) else time(h2, m2)
        if end is not None and end <= start:
            raise ValueError(f"{part!r}: the end must be after the start")
        spans.append((start, end))
    return spans


def is_open(days: Mapping[Day, str], tz: str, unix_time: float) -> bool:
    """Open at ``unix_time``? A day missing from ``days`` is closed all day."""
    local = datetime.fromtimestamp(unix_time, timezone.utc).astimezone(ZoneInfo(tz))
    spans = parse_spans(days.get(DAYS[local.weekday()], ""))
    now = local.time()
    return any(start <= now and (end is None or now < end) for start, end in spans)
