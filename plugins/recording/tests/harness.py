"""Test helpers: recordings put in place without calls — a WAV file under the
plugin's directory and its index row — for the coach routes and page tests."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from plugins.recording.storage import Recording, RecordingRepository
from tests.audio import write_tone


def recording(call_id: str, path: str | None, **fields: Any) -> Recording:
    """An index row of a finished recording (recording_id is given by add)."""
    now = time.time()
    values: dict[str, Any] = {
        "status": "done", "consent": "announced", "started_at": now - 60, "updated_at": now,
        "advisors": ["sofia"], "topic": "passport", "language": "en",
        "caller_number": "+34911234567", "dialled": "+31247247247", "duration_s": 1.5,
        "path": path, "paused": [[0.5, 0.7]], "expires_at": now + 30 * 86400}
    values.update(fields)
    return Recording(recording_id=0, call_id=call_id, **values)


async def add_with_file(repo: RecordingRepository, directory: Path, call_id: str,
                        seconds: float = 1.5, freq_hz: float = 440.0,
                        **fields: Any) -> tuple[Recording, bytes]:
    """A WAV of ``seconds`` under directory/2026/12/02/ and its row; the file's bytes."""
    rel = f"2026/12/02/{call_id}.wav"
    (directory / rel).parent.mkdir(parents=True, exist_ok=True)
    data = write_tone(directory / rel, freq_hz, seconds).read_bytes()
    r = recording(call_id, rel, duration_s=seconds, size=len(data),
                  sha256=hashlib.sha256(data).hexdigest(), **fields)
    await repo.add(r)
    return r, data
