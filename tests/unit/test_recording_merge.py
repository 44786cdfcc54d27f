"""cti.media.recording: the merge of two mono parts into one stereo WAV (no PJSIP)."""

from __future__ import annotations

import hashlib
import stat
import wave
from pathlib import Path

import numpy as np

from cti.media.recording import Recording, merge


def _mono(path: Path, samples: list[int]) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.array(samples, dtype="<i2").tobytes())


def test_merge_interleaves_pads_and_reports(tmp_path: Path) -> None:
    path = tmp_path / "r.wav"
    rec = Recording("r1", str(path), ["a", "b"], (str(path) + ".left.wav", str(path) + ".right.wav"),
                    silence_path=str(path) + ".silence.wav")
    _mono(Path(rec.parts[0]), [1, 2, 3])
    _mono(Path(rec.parts[1]), [-1, -2])  # one frame short: padded with silence
    Path(rec.silence_path).write_bytes(b"")
    rec.pause(rec.started + 1.0)
    rec.stop(rec.started + 3.5)  # an open pause ends at the stop
    done = merge(rec)
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").tolist()
    assert frames == [1, -1, 2, -2, 3, 0]
    data = path.read_bytes()
    assert done["size"] == len(data) and done["sha256"] == hashlib.sha256(data).hexdigest()
    assert done["paused"] == [[1.0, 3.5]] and done["duration_s"] == round(3 / 8000, 3)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.wav"]  # parts removed
