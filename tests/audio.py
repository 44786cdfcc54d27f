"""Audio helpers for tests: write a tone WAV, find a tone in a recording."""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path

import numpy as np

WINDOW_S = 0.1  # analyse 100 ms windows
RMS_FLOOR = 300.0  # 16-bit units (~ -40 dBFS): below that a window is silence
TOLERANCE = 0.03  # dominant peak within +-3 % of the expected frequency
WAV_HEADER = 44
BYTES_PER_S = 8000 * 2  # recorder: 16-bit mono at the 8 kHz bridge rate


def write_tone(path: str | Path, freq_hz: float, seconds: float, rate: int = 8000,
               amplitude: float = 0.3) -> Path:
    """Write a 16-bit mono PCM WAV with a sine tone."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (amplitude * 32767 * np.sin(2 * np.pi * freq_hz * t)).astype("<i2")
    path = Path(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Samples (float, first channel) and rate of a 16-bit WAV."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit WAV supported")
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return data[::channels].astype(np.float64), rate


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    """Frequency (Hz) of the strongest FFT bin, DC excluded."""
    if len(samples) < 2:
        return 0.0
    windowed = (samples - samples.mean()) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(windowed))
    spectrum[0] = 0.0
    return float(np.argmax(spectrum) * rate / len(samples))


def tone_seconds(path: str | Path, freq_hz: float) -> float:
    """How many seconds of the recording carry freq_hz as their dominant, audible tone."""
    samples, rate = read_wav(path)
    size = int(rate * WINDOW_S)
    hits = 0
    for start in range(0, len(samples) - size + 1, size):
        win = samples[start:start + size]
        if np.sqrt(np.mean(win**2)) < RMS_FLOOR:
            continue
        if abs(dominant_frequency(win, rate) - freq_hz) <= TOLERANCE * freq_hz:
            hits += 1
    return hits * WINDOW_S


def tone_present(path: str | Path, freq_hz: float, min_seconds: float = 0.5) -> bool:
    """True if at least min_seconds of 100 ms windows are dominated by freq_hz."""
    return tone_seconds(path, freq_hz) + 1e-9 >= min_seconds


async def wait_recorded(path: Path, seconds: float, timeout: float = 10) -> None:
    """Poll the WAV size until it holds about `seconds` of audio."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size >= WAV_HEADER + seconds * BYTES_PER_S:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} did not reach {seconds}s of audio in {timeout}s")


async def wait_file_final(path: Path, timeout: float = 3) -> None:
    """The WAV header is final ~100 ms after the recorder is freed: wait until readable."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = path.read_bytes()
        size_field = int.from_bytes(data[40:44], "little") if len(data) >= 44 else 0
        if size_field and size_field + WAV_HEADER <= len(data):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path}: WAV header never finalised")


def audio_rms(path: str | Path) -> float:
    """Root mean square of a recording (16-bit units): 0 for silence."""
    samples, _ = read_wav(path)
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


def split_channels(path: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    """Write the left and right channels of a 16-bit stereo WAV as two mono WAVs
    (so tone_seconds/tone_present work per channel); returns (left, right)."""
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 2 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: not a 16-bit stereo WAV")
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    out = []
    for ch, name in ((0, "left"), (1, "right")):
        dest = Path(out_dir) / f"{Path(path).stem}.{name}.wav"
        with wave.open(str(dest), "wb") as m:
            m.setnchannels(1)
            m.setsampwidth(2)
            m.setframerate(rate)
            m.writeframes(np.ascontiguousarray(data[ch::2]).tobytes())
        out.append(dest)
    return out[0], out[1]


def stretch_rms(path: str | Path, start_s: float, end_s: float) -> float:
    """RMS (16-bit units) of the first channel between start_s and end_s."""
    samples, rate = read_wav(path)
    win = samples[int(start_s * rate):int(end_s * rate)]
    return float(np.sqrt(np.mean(win**2))) if win.size else 0.0


def tone_first_at(path: str | Path, freq_hz: float) -> float | None:
    """The start (seconds) of the first window whose dominant, audible tone is
    freq_hz, None if there is none."""
    samples, rate = read_wav(path)
    size = int(rate * WINDOW_S)
    for start in range(0, len(samples) - size + 1, size):
        win = samples[start:start + size]
        if np.sqrt(np.mean(win**2)) < RMS_FLOOR:
            continue
        if abs(dominant_frequency(win, rate) - freq_hz) <= freq_hz * TOLERANCE:
            return start / rate
    return None


def tone_level(path: str | Path, freq_hz: float, skip_s: float = 0.2) -> float:
    """How loud freq_hz is in a recording, in 16-bit RMS units: the median over
    100 ms windows of the RMS of the band around it (+-3 %). Unlike the dominant
    tone, it finds a tone among others (a mix of two voices)."""
    samples, rate = read_wav(path)
    samples = samples[int(skip_s * rate):]
    size = int(rate * WINDOW_S)
    freqs = np.fft.rfftfreq(size, 1 / rate)
    band = np.abs(freqs - freq_hz) <= max(TOLERANCE * freq_hz, 2 * rate / size)
    levels = []
    for start in range(0, len(samples) - size + 1, size):
        win = samples[start:start + size]
        power = np.abs(np.fft.rfft((win - win.mean()) * np.hanning(size))) ** 2
        total = power[1:].sum()
        rms = float(np.sqrt(np.mean(win**2)))
        levels.append(rms * np.sqrt(power[band].sum() / total) if total > 0 else 0.0)
    return float(np.median(levels)) if levels else 0.0
