"""IVR prompts: texts per language (YAML) -> cached 8 kHz 16-bit mono WAVs.

Layout::

    cache_dir/<lang>/<key>.wav      synthesized with espeak-ng, converted with sox
    cache_dir/music/hold.wav        ~30 s of music on hold (sox synth)
    cache_dir/manifest.json         "<lang>/<key>" -> hash of what built the file
    override_dir/<lang>/<key>.wav   optional recordings; they win over the cache

CLI: ``python -m cti.prompts build --texts config/prompts.yaml --cache var/prompts
[--override config/prompts]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cti.plugin_prompts import merge_plugin_texts

WAV_FORMAT = (8000, 1, 2)  # rate, channels, bytes per sample
RECIPE_VERSION = "1"  # bump when the conversion pipeline changes: everything rebuilds
MANIFEST = "manifest.json"
MUSIC_LANG, MUSIC_KEY = "music", "hold"
WORKERS = 4
TOOL_TIMEOUT = 60.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9][A-Za-z0-9_-]*)?$")  # lang codes and keys (path parts)
_VOICE = re.compile(r"^[A-Za-z0-9][\w+./-]*$")
_PACKAGES = {"espeak-ng": "espeak-ng", "sox": "sox"}

# Music on hold: I-vi-IV-V in C, twice, 3.75 s per chord, soft swells.
# Every component stays clear of 400-480 Hz and 950-1050 Hz (tests look for 440/1000).
HOLD_CHORDS: tuple[tuple[float, ...], ...] = (
    (130.81, 261.63, 329.63, 392.00, 523.25),  # C
    (110.00, 220.00, 261.63, 329.63, 659.26),  # Am
    (174.61, 220.00, 261.63, 349.23, 698.46),  # F
    (98.00, 196.00, 246.94, 293.66, 587.33),  # G
) * 2
HOLD_CHORD_SECONDS = 3.75


class PromptError(Exception):
    """A malformed prompt file, a missing tool or a failed synthesis."""


@dataclass(frozen=True)
class LanguagePrompts:
    voice: str
    texts: dict[str, str]


# --------------------------------------------------------------------- loading
def load_prompt_catalog(path: Path) -> dict[str, LanguagePrompts]:
    """{lang: LanguagePrompts(voice, {key: text})}; PromptError names file and key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PromptError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise PromptError(f"{path}: invalid YAML: {exc}") from exc
    languages = _mapping(data, path, "(top level)").get("languages")
    languages = _mapping(languages, path, "languages")
    if not languages:
        raise PromptError(f"{path}: languages: no language defined")
    catalog: dict[str, LanguagePrompts] = {}
    for lang, block in languages.items():
        code = _name(lang, path, "languages", "language code")
        catalog[code] = _language(block, path, code)
    return catalog


def load_prompt_texts(path: Path) -> dict[str, dict[str, str]]:
    """{lang: {key: text}} (see load_prompt_catalog for the voices)."""
    return {lang: p.texts for lang, p in load_prompt_catalog(path).items()}


def load_prompt_voices(path: Path) -> dict[str, str]:
    """{lang: espeak-ng voice}."""
    return {lang: p.voice for lang, p in load_prompt_catalog(path).items()}


def _language(block: object, path: Path, lang: str) -> LanguagePrompts:
    where = f"languages.{lang}"
    block = _mapping(block, path, where)
    voice = block.get("voice")
    if not isinstance(voice, str) or not _VOICE.match(voice):
        raise PromptError(f"{path}: {where}.voice: must be an espeak-ng voice name, got {voice!r}")
    texts = _mapping(block.get("texts"), path, f"{where}.texts")
    checked: dict[str, str] = {}
    for key, text in texts.items():
        key = _name(key, path, f"{where}.texts", "prompt key")
        if not isinstance(text, str) or not text.strip():
            raise PromptError(f"{path}: {where}.texts.{key}: must be a non-empty string")
        checked[key] = text.strip()
    if not checked:
        raise PromptError(f"{path}: {where}.texts: no prompt defined")
    return LanguagePrompts(voice, checked)


def _mapping(value: object, path: Path, where: str) -> dict[object, object]:
    if not isinstance(value, dict):
        got = "nothing" if value is None else type(value).__name__
        raise PromptError(f"{path}: {where}: expected a mapping, got {got}")
    return value


def _name(value: object, path: Path, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise PromptError(
            f"{path}: {where}: {what} {value!r} is not a string "
            "(quote it: YAML reads no/yes/on/off as booleans)"
        )
    if not _NAME.match(value):
        raise PromptError(f"{path}: {where}.{value}: {what} may only use letters, digits, _ and -")
    if where == "languages" and value == MUSIC_LANG:
        raise PromptError(f"{path}: languages.{value}: reserved for the music on hold")
    return value


# ------------------------------------------------------------------- resolving
def resolve_prompt(lang: str, key: str, cache_dir: Path, override_dir: Path | None) -> Path:
    """override_dir/<lang>/<key>.wav if that file exists, else cache_dir/<lang>/<key>.wav.

    The cached path is returned whether or not it exists: check with missing_prompts().
    """
    for part in (lang, key):
        if not _NAME.match(part):
            raise PromptError(f"invalid prompt reference {lang!r}/{key!r}")
    if override_dir is not None:
        override = Path(override_dir) / lang / f"{key}.wav"
        if override.is_file():
            return override
    return Path(cache_dir) / lang / f"{key}.wav"


def missing_prompts(
    refs: Iterable[tuple[str, str]], cache_dir: Path, override_dir: Path | None = None
) -> list[tuple[str, str]]:
    """The (lang, key) pairs with neither an override nor a cached WAV, in order, once each."""
    missing: list[tuple[str, str]] = []
    for lang, key in refs:
        if (lang, key) in missing:
            continue
        try:
            found = resolve_prompt(lang, key, cache_dir, override_dir).is_file()
        except PromptError:
            found = False
        if not found:
            missing.append((lang, key))
    return missing


# -------------------------------------------------------------------- building
@dataclass
class BuildReport:
    """What build_prompts did; (lang, key) pairs, the music is ("music", "hold")."""

    languages: list[str] = field(default_factory=list)
    built: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)
    overridden: list[tuple[str, str]] = field(default_factory=list)
    bad_overrides: list[tuple[Path, str]] = field(default_factory=list)

    def counts(self, lang: str) -> dict[str, int]:
        def n(pairs: list[tuple[str, str]]) -> int:
            return sum(1 for lg, _ in pairs if lg == lang)

        built, unchanged = n(self.built), n(self.unchanged)
        return {"prompts": built + unchanged, "built": built, "unchanged": unchanged,
                "overridden": n(self.overridden)}  # fmt: skip

    def summary_lines(self) -> list[str]:
        lines = []
        for lang in [*self.languages, MUSIC_LANG]:
            c = self.counts(lang)
            lines.append(f"{lang}: {c['prompts']} prompts, {c['built']} built, "
                         f"{c['unchanged']} unchanged, {c['overridden']} overridden")  # fmt: skip
        lines += [f"warning: override {p}: {why}" for p, why in self.bad_overrides]
        return lines


@dataclass(frozen=True)
class _Job:
    lang: str
    key: str
    digest: str
    out: Path
    render: Callable[[Path], None]  # writes the final WAV to the given temporary path
    tools: tuple[str, ...]


def build_prompts(
    texts_file: Path, cache_dir: Path, override_dir: Path | None = None,
    plugins: dict[str, Path] | None = None,
) -> BuildReport:
    """Synthesize every prompt (and the music on hold) whose text or voice changed;
    ``plugins``: the prompts.yaml of each enabled plugin (cti/plugin_prompts.py)."""
    catalog = load_prompt_catalog(texts_file)
    if plugins:
        try:
            merged = merge_plugin_texts({k: v.texts for k, v in catalog.items()}, plugins)
        except ValueError as e:
            raise PromptError(str(e)) from None
        catalog = {lang: LanguagePrompts(catalog[lang].voice, t) for lang, t in merged.items()}
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(cache_dir)
    jobs = [*_speech_jobs(catalog, cache_dir), _music_job(cache_dir)]
    report = BuildReport(languages=list(catalog))
    todo = []
    for job in jobs:
        ident = f"{job.lang}/{job.key}"
        if manifest.get(ident) == job.digest and job.out.is_file():
            report.unchanged.append((job.lang, job.key))
        else:
            todo.append(job)
    _require_tools({tool for job in todo for tool in job.tools})
    errors = _run_jobs(todo, manifest, report)
    _save_manifest(cache_dir, manifest)
    if errors:
        raise PromptError("; ".join(errors))
    _check_overrides(jobs, override_dir, report)
    return report


#: Spoken numbers for position and waiting-time announcements: number_1 .. number_N.
MAX_SPOKEN_NUMBER = 20


def number_key(n: int) -> str:
    """The prompt key of a spoken number (number_1 ... number_20)."""
    return f"number_{n}"


def with_numbers(texts: dict[str, str]) -> dict[str, str]:
    """The language's texts plus number_1..number_20, spoken as digits by its voice
    (espeak-ng reads "3" as "tres" with a Spanish voice); a text in the file wins."""
    numbers = {number_key(n): str(n) for n in range(1, MAX_SPOKEN_NUMBER + 1)}
    return {**numbers, **texts}


def _speech_jobs(catalog: dict[str, LanguagePrompts], cache_dir: Path) -> list[_Job]:
    jobs = []
    for lang, prompts in catalog.items():
        for key, text in with_numbers(prompts.texts).items():
            digest = _digest({"voice": prompts.voice, "text": text})
            render = _speech_renderer(prompts.voice, text)
            out = cache_dir / lang / f"{key}.wav"
            jobs.append(_Job(lang, key, digest, out, render, ("espeak-ng", "sox")))
    return jobs


def _music_job(cache_dir: Path) -> _Job:
    digest = _digest({"chords": HOLD_CHORDS, "seconds": HOLD_CHORD_SECONDS})
    out = cache_dir / MUSIC_LANG / f"{MUSIC_KEY}.wav"
    return _Job(MUSIC_LANG, MUSIC_KEY, digest, out, _render_music, ("sox",))


def _digest(what: dict[str, object]) -> str:
    blob = json.dumps({"recipe": RECIPE_VERSION, **what}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _run_jobs(jobs: list[_Job], manifest: dict[str, str], report: BuildReport) -> list[str]:
    """Build in a thread pool; record successes in manifest and report, return errors."""
    errors: list[str] = []
    if not jobs:
        return errors
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(jobs))) as pool:
        futures = [(job, pool.submit(_build_one, job)) for job in jobs]
        for job, future in futures:
            try:
                future.result()
            except PromptError as exc:
                errors.append(f"{job.lang}/{job.key}: {exc}")
                continue
            manifest[f"{job.lang}/{job.key}"] = job.digest
            report.built.append((job.lang, job.key))
    return errors


def _build_one(job: _Job) -> None:
    job.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=job.out.parent, prefix=f".{job.key}-") as tmp:
        result = Path(tmp) / "out.wav"
        job.render(result)
        problem = wav_format_problem(result)
        if problem:
            raise PromptError(f"built file is wrong: {problem}")
        os.replace(result, job.out)


def speak_to_file(voice: str, text: str, out: Path) -> None:
    """Render ``text`` with espeak-ng into ``out`` (8 kHz 16-bit mono), atomically:
    a prompt spoken at run time (a plugin's announcement), not from the catalog."""
    _require_tools(["espeak-ng", "sox"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}-") as tmp:
        result = Path(tmp) / "out.wav"
        _speech_renderer(voice, text)(result)
        problem = wav_format_problem(result)
        if problem:
            raise PromptError(f"spoken prompt is wrong: {problem}")
        os.replace(result, out)


def _speech_renderer(voice: str, text: str) -> Callable[[Path], None]:
    def render(out: Path) -> None:
        raw = out.with_name("espeak.wav")
        spoken = f" {text}" if text.startswith("-") else text  # not an option
        _run(["espeak-ng", "-v", voice, "-w", str(raw), spoken])
        _run(["sox", str(raw), *_SOX_OUT, str(out)])

    return render


_SOX_OUT = ("-r", "8000", "-b", "16", "-c", "1", "-e", "signed-integer")


def _render_music(out: Path) -> None:
    """Soft chord pad: each chord swells in and out, light reverb, overall fade."""
    segments = []
    for i, chord in enumerate(HOLD_CHORDS):
        seg = out.with_name(f"chord{i}.wav")
        sines = [arg for f in chord for arg in ("sine", f"{f:.2f}")]
        _run(["sox", "-c", str(len(chord)), "-r", "8000", "-n", *_SOX_OUT, str(seg),
              "synth", f"{HOLD_CHORD_SECONDS}", *sines,
              "vol", "0.35", "fade", "h", "0.8", f"{HOLD_CHORD_SECONDS}", "1.2"])  # fmt: skip
        segments.append(str(seg))
    # fade before reverb: sox 14.4 halves a fade's length after a channel-changing effect
    finish = ["fade", "t", "1", "0", "2", "reverb", "40", "remix", "-"]
    _run(["sox", *segments, *_SOX_OUT, str(out), *finish])


def _run(cmd: list[str]) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=TOOL_TIMEOUT, check=False)
    except FileNotFoundError as exc:
        raise PromptError(_install_hint(cmd[0])) from exc
    except subprocess.TimeoutExpired as exc:
        raise PromptError(f"{cmd[0]} took longer than {TOOL_TIMEOUT:.0f}s") from exc
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip() or "(no message)"
        raise PromptError(f"{cmd[0]} failed (exit {proc.returncode}): {err}")


def _require_tools(tools: Iterable[str]) -> None:
    for tool in sorted(tools):
        if shutil.which(tool) is None:
            raise PromptError(_install_hint(tool))


def _install_hint(tool: str) -> str:
    package = _PACKAGES.get(tool, tool)
    return f"{tool} not found on PATH: install the Debian package '{package}' (apt-get install {package})"


def wav_format_problem(path: Path) -> str | None:
    """None if `path` is a non-empty 8 kHz 16-bit mono PCM WAV, else what is wrong."""
    try:
        with wave.open(str(path), "rb") as w:
            fmt, frames = (w.getframerate(), w.getnchannels(), w.getsampwidth()), w.getnframes()
    except (OSError, EOFError, wave.Error) as exc:
        return f"not a PCM WAV ({exc})"
    if fmt != WAV_FORMAT:
        return f"{fmt[0]} Hz, {fmt[1]} channel(s), {8 * fmt[2]}-bit; need 8000 Hz, 1, 16-bit"
    return None if frames else "no audio"


def _check_overrides(jobs: list[_Job], override_dir: Path | None, report: BuildReport) -> None:
    if override_dir is None:
        return
    for job in jobs:
        path = Path(override_dir) / job.lang / f"{job.key}.wav"
        if path.is_file():
            report.overridden.append((job.lang, job.key))
            problem = wav_format_problem(path)
            if problem:
                report.bad_overrides.append((path, problem))


def _load_manifest(cache_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((cache_dir / MANIFEST).read_text())
        entries = data["entries"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # no or unreadable manifest: rebuild everything
    return {str(k): str(v) for k, v in entries.items()} if isinstance(entries, dict) else {}


def _save_manifest(cache_dir: Path, entries: dict[str, str]) -> None:
    tmp = cache_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"version": 1, "entries": entries}, indent=1, sort_keys=True))
    os.replace(tmp, cache_dir / MANIFEST)


# ------------------------------------------------------------------------- CLI
def main_build(argv: Sequence[str] | None = None) -> int:
    """`[build] --texts FILE --cache DIR [--override DIR]`; prints a line per language."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["build"]:
        args = args[1:]
    parser = argparse.ArgumentParser(prog="cti prompts build", description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=Path, default=Path("config/prompts.yaml"))
    parser.add_argument("--cache", type=Path, default=Path("var/prompts"))
    parser.add_argument("--override", type=Path, default=None)
    parser.add_argument("--plugin", action="append", default=[], metavar="NAME=PROMPTS_YAML",
                        help="an enabled plugin's prompts file (repeatable)")
    opts = parser.parse_args(args)
    plugins = dict(p.split("=", 1) for p in opts.plugin)
    try:
        report = build_prompts(opts.texts, opts.cache, opts.override,
                               {k: Path(v) for k, v in plugins.items()})
    except PromptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in report.summary_lines():
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main_build())
