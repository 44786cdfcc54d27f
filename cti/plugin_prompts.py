"""Plugins' fixed prompts: their prompts.yaml merged into the gateway's catalog.

A plugin's file has the same shape as config/prompts.yaml without voices
(``languages: {<lang>: {texts: {<key>: <text>}}}``); its keys become
``<plugin>.<key>``. Every language of the gateway gets every key: a language the
plugin has no text for is spoken from its English text (or its first language's)
by that language's voice, so no caller meets a missing prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml


def plugin_texts(name: str, path: Path) -> dict[str, dict[str, str]]:
    """{lang: {"<name>.<key>": text}} of one plugin's prompts file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot read the prompts of plugin {name}: {e}") from None
    languages = data.get("languages") if isinstance(data, dict) else None
    if not isinstance(languages, dict):
        raise ValueError(f"{path}: languages: expected a mapping of languages")
    out: dict[str, dict[str, str]] = {}
    for lang, block in languages.items():
        texts = block.get("texts") if isinstance(block, dict) else None
        if not isinstance(texts, dict):
            raise ValueError(f"{path}: languages.{lang}.texts: expected a mapping")
        for key, text in texts.items():
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{path}: languages.{lang}.texts.{key}: a non-empty text")
            out.setdefault(str(lang), {})[f"{name}.{key}"] = text.strip()
    return out


def merge_plugin_texts(texts_by_lang: Mapping[str, Mapping[str, str]],
                       plugins: Mapping[str, Path]) -> dict[str, dict[str, str]]:
    """{lang: {key: text}} with every plugin's keys in every language given
    (ValueError names a broken plugin file)."""
    merged = {lang: dict(t) for lang, t in texts_by_lang.items()}
    for name, path in plugins.items():
        texts = plugin_texts(name, path)
        if not texts:
            continue
        fallback = texts.get("en") or next(iter(texts.values()))
        for lang in merged:
            for key, text in fallback.items():
                merged[lang][key] = texts.get(lang, {}).get(key, text)
    return merged


def plugin_prompt_keys(plugins: Mapping[str, Path]) -> set[str]:
    """Every key the plugins' files define (checked at start in every language)."""
    keys: set[str] = set()
    for name, path in plugins.items():
        for texts in plugin_texts(name, path).values():
            keys |= set(texts)
    return keys
