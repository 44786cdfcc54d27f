"""Stereo call recordings: plain state and the merge of two mono WAVs into one.

No pjsua2 here: the engine owns the two AudioMediaRecorder objects (one mono
WAV per side, written by PJSIP at the bridge rate); this module holds when the
recording was paused and, once both recorders are deleted and their headers are
final, merges them into an interleaved 16-bit stereo WAV (left = what the
left leg's far end sends, right = the right leg's). The merge runs on a plain
thread (``finish_in_thread``): it touches files only, never a pjsua2 object.

Pause: the engine stops the legs' transmits into both recorders. Measured (see
docs/ipc.md): a pjsua2 recorder with no source connected writes NO frames. So a
looping silent player stays connected to both recorders for the whole
recording: each recorder then writes one frame per bridge tick whether or not
its leg sends anything (paused, media not yet up, on hold), the paused stretch
is silence in both files and the two sides stay aligned on the bridge clock.
The merge only interleaves (and pads the shorter side by the odd frame).
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import logging
import os
import sys
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("cti.media")

LEFT, RIGHT = 0, 1
HEADER_WAIT_S = 3.0  # a mono WAV header is final ~100 ms after its recorder is deleted
WAV_HEADER = 44
EMPTY_WAIT_S = 0.5


@dataclass
class Recording:
    rec_id: str
    path: str  # final stereo WAV
    # The legs that feed it, the caller's (left) first; more join with record_tap (a
    # consulted party, a transfer's target, the next advisor: on the right).
    legs: list[str]
    parts: tuple[str, str]  # the two mono WAVs PJSIP writes
    rate: int = 8000
    started: float = field(default_factory=time.monotonic)
    paused_since: float | None = None  # monotonic, while paused
    pauses: list[tuple[float, float]] = field(default_factory=list)  # seconds from start
    stopped_at: float | None = None
    silence_path: str = ""  # a short silent WAV the silence player loops
    # pjsua2 objects, engine-owned (None once handed to the engine's park): the
    # two recorders and the looping silent player connected to both
    recorders: list[Any] = field(default_factory=lambda: [None, None])
    silence: Any = None

    @property
    def paused(self) -> bool:
        return self.paused_since is not None

    def pause(self, now: float | None = None) -> None:
        if self.paused_since is None:
            self.paused_since = time.monotonic() if now is None else now

    def resume(self, now: float | None = None) -> None:
        if self.paused_since is None:
            return
        now = time.monotonic() if now is None else now
        self.pauses.append((self.paused_since - self.started, now - self.started))
        self.paused_since = None

    def remove_files(self) -> None:
        for name in (*self.parts, self.silence_path):
            if name:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)

    def stop(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.resume(now)  # a pause still open ends at the stop
        self.stopped_at = now


def create_private(path: str) -> None:
    """Create (or truncate) an empty file with mode 0600 before PJSIP opens it:
    the recorder truncates an existing file and keeps its mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode otherwise
    os.close(fd)


def write_silence(path: str, rate: int, seconds: float = 1.0) -> None:
    """A 16-bit mono WAV of zeros (what the silence player loops)."""
    create_private(path)
    with open(path, "r+b") as f, wave.open(f, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(2 * int(rate * seconds)))


def wait_header_final(path: str, timeout: float = HEADER_WAIT_S) -> None:
    """Wait until a WAV's data-size field covers the file (the header is written last)."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        with open(path, "rb") as f:
            head = f.read(WAV_HEADER)
            size = os.fstat(f.fileno()).st_size
        declared = int.from_bytes(head[40:44], "little") if len(head) >= WAV_HEADER else -1
        if declared > 0 and declared + WAV_HEADER <= size:
            return
        # an empty recording keeps a 0 size field: believe it only after a while
        if declared == 0 and size == WAV_HEADER and time.monotonic() - start > EMPTY_WAIT_S:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path}: WAV header never finalised")
        time.sleep(0.05)


def read_mono(path: str, rate: int) -> array.array[int]:
    with wave.open(path, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != rate:
            raise RuntimeError(f"{path}: expected 16-bit mono at {rate} Hz")
        samples = array.array("h", w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def merge(rec: Recording) -> dict[str, Any]:
    """Build the stereo WAV (mode 0600); returns the record.done fields."""
    for part in rec.parts:
        wait_header_final(part)
    left, right = (read_mono(p, rec.rate) for p in rec.parts)
    elapsed = (rec.stopped_at or time.monotonic()) - rec.started
    paused_s = sum(e - s for s, e in rec.pauses)
    log.info("record.merge rec=%s left_s=%.3f right_s=%.3f wall_s=%.3f paused_s=%.3f",
             rec.rec_id, len(left) / rec.rate, len(right) / rec.rate, elapsed, paused_s)
    n = max(len(left), len(right))  # the sides start together; pad the shorter one
    for side in (left, right):
        side.extend(array.array("h", bytes(2 * (n - len(side)))))
    stereo = array.array("h", bytes(4 * n))
    stereo[0::2] = left
    stereo[1::2] = right
    if sys.byteorder == "big":
        stereo.byteswap()
    tmp = rec.path + ".part"
    create_private(tmp)
    with open(tmp, "r+b") as f, wave.open(f, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rec.rate)
        w.writeframes(stereo.tobytes())
    os.replace(tmp, rec.path)
    digest = hashlib.sha256()
    with open(rec.path, "rb") as final:
        for block in iter(lambda: final.read(1 << 20), b""):
            digest.update(block)
    rec.remove_files()
    return {
        "rec_id": rec.rec_id,
        "path": rec.path,
        "duration_s": round(n / rec.rate, 3),
        "size": os.path.getsize(rec.path),
        "sha256": digest.hexdigest(),
        "paused": [[round(s, 3), round(e, 3)] for s, e in rec.pauses],
    }


def finish_in_thread(rec: Recording, done: Callable[[dict[str, Any]], None],
                     failed: Callable[[str], None]) -> None:
    """Merge on a plain thread (files only); report through done/failed (thread-safe emits)."""

    def run() -> None:
        try:
            fields = merge(rec)
        except Exception as exc:
            log.exception("record rec=%s merge failed", rec.rec_id)
            failed(f"{type(exc).__name__}: {exc}")
        else:
            log.info("record.done rec=%s path=%s duration_s=%s size=%s", rec.rec_id,
                     fields["path"], fields["duration_s"], fields["size"])
            done(fields)

    # not a daemon: an engine shutting down still finishes the file before exit
    t = threading.Thread(target=run, name=f"rec-{rec.rec_id}", daemon=False)
    t.start()
