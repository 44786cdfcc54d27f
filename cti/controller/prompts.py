"""Prompt files for the media workers: resolve per language, join sequences once."""

from __future__ import annotations

import hashlib
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path

from cti.prompts import missing_prompts, resolve_prompt

MUSIC = ("music", "hold")


class PromptLibrary:
    """Turns (language, key) sequences into one WAV path a worker can play.

    Workers play one file per command; joining a sequence (e.g. the four
    language offers) into one cached file keeps barge-in a single stop.
    """

    def __init__(self, cache_dir: Path, override_dir: Path | None) -> None:
        self.cache_dir = cache_dir
        self.override_dir = override_dir
        self._joined: dict[tuple[tuple[str, str], ...], Path] = {}

    def missing(self, refs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return missing_prompts(list(refs) + [MUSIC], self.cache_dir, self.override_dir)

    def path(self, language: str, key: str) -> Path:
        return resolve_prompt(language, key, self.cache_dir, self.override_dir)

    def music(self) -> Path:
        return self.path(*MUSIC)

    def sequence(self, refs: Sequence[tuple[str, str]]) -> Path:
        key = tuple(refs)
        if len(key) == 1:
            return self.path(*key[0])
        if key not in self._joined:
            self._joined[key] = self._join([self.path(*r) for r in key])
        return self._joined[key]

    def _join(self, paths: list[Path]) -> Path:
        digest = hashlib.sha1()
        for p in paths:
            digest.update(str(p).encode())
            digest.update(str(p.stat().st_mtime_ns).encode())
        out = self.cache_dir / "_joined" / f"{digest.hexdigest()[:16]}.wav"
        if out.exists():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        with wave.open(str(tmp), "wb") as dst:
            for i, p in enumerate(paths):
                with wave.open(str(p), "rb") as src:
                    if i == 0:
                        dst.setparams(src.getparams())
                    elif src.getframerate() != dst.getframerate():
                        raise ValueError(f"{p}: sample rate differs from {paths[0]}")
                    dst.writeframes(src.readframes(src.getnframes()))
        tmp.replace(out)
        return out
