from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from cti.config import ivr_flows, load_settings
from cti.ivr.announce import ANNOUNCE_KEYS
from cti.prompts import (
    BuildReport,
    PromptError,
    build_prompts,
    load_prompt_catalog,
    load_prompt_texts,
    main_build,
    missing_prompts,
    resolve_prompt,
)

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="needs espeak-ng and sox",
)

REPO_TEXTS = Path(__file__).resolve().parents[2] / "config" / "prompts.yaml"
KEYS = ["welcome", "language_offer", "topic_menu", "invalid", "no_input", "please_hold",
        "all_busy", "closed", "crisis_notice"]


def write_texts(
    path: Path, voice: str = "en", invalid: str = "That is not a valid choice."
) -> Path:
    path.write_text(
        "languages:\n"
        "  en:\n"
        f"    voice: {voice}\n"
        "    texts:\n"
        "      welcome: Welcome.\n"
        f"      invalid: {invalid}\n"
    )
    return path


def wav_info(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuildReport]:
    root = tmp_path_factory.mktemp("prompts")
    texts = write_texts(root / "prompts.yaml")
    return root / "cache", build_prompts(texts, root / "cache")


def test_build_writes_8khz_16bit_mono(built: tuple[Path, BuildReport]) -> None:
    cache, report = built
    numbers = [("en", f"number_{n}") for n in range(1, 21)]  # spoken for announcements
    assert sorted(report.built) == sorted(
        [("en", "invalid"), ("en", "welcome"), ("music", "hold"), *numbers])
    for rel in ("en/welcome.wav", "en/invalid.wav", "music/hold.wav", "en/number_7.wav"):
        rate, channels, width, frames = wav_info(cache / rel)
        assert (rate, channels, width) == (8000, 1, 2)
        assert frames > 2000
    assert report.counts("en") == {"prompts": 22, "built": 22, "unchanged": 0, "overridden": 0}


def test_music_on_hold_is_long_and_avoids_test_tones(built: tuple[Path, BuildReport]) -> None:
    path = built[0] / "music" / "hold.wav"
    rate, _, _, frames = wav_info(path)
    assert 25 <= frames / rate <= 35
    with wave.open(str(path), "rb") as w:
        x = np.frombuffer(w.readframes(frames), "<i2").astype(float)
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    for lo, hi in ((400, 480), (950, 1050)):
        assert power[(freqs >= lo) & (freqs <= hi)].sum() / power.sum() < 1e-4
    assert np.abs(x).max() < 0.9 * 32767  # no clipping


def test_rebuild_only_what_changed(tmp_path: Path) -> None:
    texts, cache = write_texts(tmp_path / "p.yaml"), tmp_path / "cache"
    build_prompts(texts, cache)
    stamp = (cache / "en" / "welcome.wav").stat().st_mtime_ns

    again = build_prompts(texts, cache)
    assert again.built == []
    assert sorted(again.unchanged) == sorted([("en", "invalid"), ("en", "welcome"),
                                              ("music", "hold"),
                                              *[("en", f"number_{n}") for n in range(1, 21)]])
    assert (cache / "en" / "welcome.wav").stat().st_mtime_ns == stamp

    write_texts(texts, invalid="Not a valid choice.")
    assert build_prompts(texts, cache).built == [("en", "invalid")]

    write_texts(texts, voice="en-us", invalid="Not a valid choice.")
    rebuilt = sorted(build_prompts(texts, cache).built)
    assert rebuilt[:2] == [("en", "invalid"), ("en", "number_1")]  # a new voice: all again
    assert ("en", "welcome") in rebuilt and len(rebuilt) == 22

    (cache / "en" / "welcome.wav").unlink()  # deleted by hand: rebuilt
    assert build_prompts(texts, cache).built == [("en", "welcome")]


def test_override_wins(built: tuple[Path, BuildReport], tmp_path: Path) -> None:
    cache = built[0]
    override = tmp_path / "override"
    (override / "en").mkdir(parents=True)
    shutil.copy(cache / "en" / "invalid.wav", override / "en" / "welcome.wav")

    assert resolve_prompt("en", "welcome", cache, override) == override / "en" / "welcome.wav"
    assert resolve_prompt("en", "invalid", cache, override) == cache / "en" / "invalid.wav"
    assert resolve_prompt("en", "welcome", cache, None) == cache / "en" / "welcome.wav"
    assert resolve_prompt("music", "hold", cache, override) == cache / "music" / "hold.wav"


def test_build_reports_overrides_and_bad_ones(tmp_path: Path) -> None:
    texts, override = write_texts(tmp_path / "p.yaml"), tmp_path / "override"
    (override / "en").mkdir(parents=True)
    with wave.open(str(override / "en" / "welcome.wav"), "wb") as w:  # wrong rate
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 1600)
    report = build_prompts(texts, tmp_path / "cache", override)
    assert report.overridden == [("en", "welcome")]
    assert [p for p, _ in report.bad_overrides] == [override / "en" / "welcome.wav"]
    assert "16000 Hz" in report.bad_overrides[0][1]


def test_missing_prompts(built: tuple[Path, BuildReport], tmp_path: Path) -> None:
    cache = built[0]
    (tmp_path / "tr").mkdir()
    (tmp_path / "tr" / "welcome.wav").write_bytes(b"")  # an override counts as present
    refs = [("en", "welcome"), ("en", "nope"), ("xx", "welcome"), ("en", "nope"),
            ("tr", "welcome"), ("../en", "welcome")]  # fmt: skip
    assert missing_prompts(refs, cache, tmp_path) == [("en", "nope"), ("xx", "welcome"),
                                                      ("../en", "welcome")]  # fmt: skip
    assert missing_prompts([("en", "welcome"), ("music", "hold")], cache) == []


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("languages:\n  en:\n    voice: en\n    texts:\n      welcome: 123\n",
         "languages.en.texts.welcome"),
        ("languages:\n  en:\n    voice: en\n    texts:\n      welcome: ''\n",
         "languages.en.texts.welcome"),
        ("languages:\n  en:\n    texts:\n      welcome: Hi\n", "languages.en.voice"),
        ("languages:\n  en:\n    voice: en\n", "languages.en.texts"),
        ("languages:\n  no:\n    voice: nb\n    texts: {welcome: Hei}\n", "quote it"),
        ("languages:\n  en:\n    voice: en\n    texts:\n      bad key: Hi\n",
         "languages.en.texts.bad key"),
        ("languages: [en]\n", "languages: expected a mapping"),
        ("languages:\n  en: {voice: en, texts: {welcome: [unclosed}\n", "invalid YAML"),
        ("", "(top level): expected a mapping"),
    ],
)  # fmt: skip
def test_malformed_file_names_file_and_key(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(PromptError) as err:
        load_prompt_texts(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_missing_binary_names_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = write_texts(tmp_path / "p.yaml")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PromptError, match=r"apt-get install espeak-ng"):
        build_prompts(texts, tmp_path / "cache")


def test_failed_synthesis_names_prompt(tmp_path: Path) -> None:
    texts = write_texts(tmp_path / "p.yaml", voice="zz")
    with pytest.raises(PromptError, match=r"en/welcome: espeak-ng failed"):
        build_prompts(texts, tmp_path / "cache")
    assert (tmp_path / "cache" / "music" / "hold.wav").is_file()  # the rest still built
    assert not list((tmp_path / "cache" / "en").glob(".*"))  # no temporary files left


def test_repo_prompt_file() -> None:
    catalog = load_prompt_catalog(REPO_TEXTS)
    assert set(catalog) >= {"nl", "en", "es", "tr"}
    # every key the demo config's flows can play, the same keys in every language
    flows = ivr_flows(load_settings(REPO_TEXTS.parent / "cti.yaml"))
    needed = set(KEYS) | set(ANNOUNCE_KEYS) | {k for f in flows.values() for k in f.prompt_keys()}
    for lang in ("nl", "en", "es", "tr"):
        assert catalog[lang].voice == lang
        assert set(catalog[lang].texts) >= needed
        assert set(catalog[lang].texts) == set(catalog["en"].texts)
    assert catalog["nl"].texts["language_offer"] == "Voor Nederlands, toets 1."
    assert catalog["en"].texts["language_offer"] == "For English, press 2."
    assert catalog["es"].texts["language_offer"] == "Para español, pulse 3."
    assert catalog["tr"].texts["language_offer"] == "Türkçe için 4'e basın."


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = write_texts(tmp_path / "p.yaml")
    argv = ["build", "--texts", str(texts), "--cache", str(tmp_path / "c")]
    assert main_build(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["en: 22 prompts, 22 built, 0 unchanged, 0 overridden",
                   "music: 1 prompts, 1 built, 0 unchanged, 0 overridden"]  # fmt: skip
    assert main_build(argv[1:]) == 0  # "build" is optional
    assert "2 unchanged" in capsys.readouterr().out
    assert main_build(["--texts", str(tmp_path / "nope.yaml"), "--cache", "x"]) == 1
    assert "nope.yaml: cannot read" in capsys.readouterr().err
