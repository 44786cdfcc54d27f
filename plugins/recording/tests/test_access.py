"""access.py without a gateway: Range parsing and the expiry of signed audio links."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from plugins.recording.access import (
    LINK_TTL_S,
    ByteRange,
    RecordingAccess,
    Refused,
    Unsatisfiable,
    parse_range,
)
from plugins.recording.tests.harness import recording


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("", None),
    ("bytes=0-", ByteRange(0, 999)), ("bytes=0-0", ByteRange(0, 0)),
    ("bytes=10-19", ByteRange(10, 19)), ("bytes=990-5000", ByteRange(990, 999)),
    ("bytes=-100", ByteRange(900, 999)), ("bytes=-5000", ByteRange(0, 999)),
    ("BYTES = 5-6", ByteRange(5, 6)),
    # Ignored (the whole file): other units, several ranges, nonsense, last < first.
    ("items=0-5", None), ("bytes=0-1,5-6", None), ("bytes=a-b", None), ("bytes=-", None),
    ("bytes=9-3", None), ("bytes=1", None),
])
def test_ranges(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-1001", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(Unsatisfiable) as e:
        parse_range(header, 1000)
    assert e.value.size == 1000
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=-5", 0)  # an empty file has no byte to give


class FakeRepo:
    def get(self, recording_id: int) -> Any:
        return recording(f"call-{recording_id}", "x.wav") if recording_id < 10 else None


def test_an_audio_link_expires_and_names_its_user(tmp_path: Path) -> None:
    clock = [1_000_000.0]
    services = SimpleNamespace(now=lambda: clock[0], log=logging.getLogger("test"))
    access = RecordingAccess(cast(Any, services), cast(Any, FakeRepo()), tmp_path)
    link, expires = access.audio_link(3, "inès.b")
    assert expires == 1_000_000 + LINK_TTL_S
    assert access.check_link(3, link) == "inès.b"
    with pytest.raises(Refused, match="for this recording"):
        access.check_link(4, link)
    clock[0] += LINK_TTL_S + 1
    with pytest.raises(Refused, match="expired"):
        access.check_link(3, link)
    for junk in ("", "a.b", "a.b.c.d", "!!.1.x"):
        with pytest.raises(Refused):
            access.check_link(3, junk)
    other = RecordingAccess(cast(Any, services), cast(Any, FakeRepo()), tmp_path)
    clock[0] -= LINK_TTL_S
    with pytest.raises(Refused):  # another key (the gateway restarted)
        other.check_link(3, link)
