"""Test-only: the recording plugin's index and coach routes on a real gateway,
before plugin.py exists (the other half of issue 11 writes it). ``RoutesOnly`` is
registered with ``running_gateway(tmp, extra_plugins={"recording": RoutesOnly(dir)})``
and wires exactly what plugin.py will: the tables (MIGRATIONS), the rules
(RULES) and ``make_router(RecordingAccess(services, repo, directory))``. It records
nothing; tests put WAV files in ``directory`` and rows in the index themselves."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from cti.hookspecs import hookimpl
from cti.plugins.api import PluginManifest, Services
from plugins.recording.access import RecordingAccess
from plugins.recording.http import RULES, make_router
from plugins.recording.storage import MIGRATIONS, Recording, RecordingRepository
from tests.audio import write_tone


class RoutesOnly:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._repo: RecordingRepository | None = None
        self.access: RecordingAccess | None = None

    @property
    def repo(self) -> RecordingRepository:
        assert self._repo is not None, "cti_load was not called"
        return self._repo

    @hookimpl
    def cti_plugin_manifest(self) -> PluginManifest:
        return PluginManifest(description="test-only: the recording index and its routes",
                              migrations=MIGRATIONS, routes=RULES)

    @hookimpl
    def cti_load(self, services: Services) -> None:
        self._repo = RecordingRepository(services.store)
        self.access = RecordingAccess(services, self._repo, self.directory)
        services.http.include_router(make_router(self.access))


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
