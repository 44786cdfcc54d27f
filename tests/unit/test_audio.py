from pathlib import Path

import numpy as np

from tests.audio import dominant_frequency, tone_present, tone_seconds, write_tone


def test_tone_is_found(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "a.wav", 440, 2.0)
    assert tone_present(path, 440)
    assert tone_seconds(path, 440) >= 1.9


def test_tone_found_at_other_rate(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "a16.wav", 1000, 1.0, rate=16000)
    assert tone_present(path, 1000, min_seconds=0.9)


def test_other_tone_is_not_found(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "b.wav", 1000, 2.0)
    assert not tone_present(path, 440)


def test_silence_is_not_a_tone(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "s.wav", 440, 2.0, amplitude=0.0)
    assert not tone_present(path, 440)


def test_short_tone_is_not_enough(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "short.wav", 440, 0.3)
    assert not tone_present(path, 440, min_seconds=0.5)


def test_dominant_frequency() -> None:
    rate = 8000
    t = np.arange(800) / rate
    assert abs(dominant_frequency(np.sin(2 * np.pi * 697 * t), rate) - 697) < 15
