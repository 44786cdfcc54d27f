"""Input limits (cti/api/limits.py): text checks, surrogates in decoded JSON, the
config's vocabularies, and the body-size middleware on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from cti.api.limits import BodyLimit, Vocabulary, find_surrogate, text_problem
from cti.config import parse_settings

REPO = Path(__file__).resolve().parents[2]


def test_text_problems_name_surrogates_and_control_characters() -> None:
    assert text_problem("sofia") is None
    assert text_problem("Inès Ünal") is None
    assert text_problem("a\ud800") == "contains a lone surrogate"
    assert text_problem("a\x07") == "contains the control character U+0007"
    assert text_problem("line\nline") is not None
    assert text_problem("line\nline\tx", frozenset("\n\t")) is None


def test_a_surrogate_is_found_in_values_keys_and_lists() -> None:
    assert find_surrogate({"a": ["x", {"b": 1}]}) is None
    assert find_surrogate(json.loads('{"a": ["x", "\\ud800"]}')) == ("a", 1)
    assert find_surrogate(json.loads('{"a": {"\\udc00": 1}}')) == ("a", "<key>")
    assert find_surrogate(json.loads('"\\ud83d\\ude00"')) is None  # a pair is fine


def test_the_vocabulary_is_the_configs() -> None:
    data = yaml.safe_load((REPO / "config" / "cti.yaml").read_text())
    v = Vocabulary.of(parse_settings(data, REPO / "config" / "cti.yaml"))
    assert {"nl", "en", "es", "tr"} <= v.languages
    assert {"passport", "emergency"} <= v.topics
    assert "crisis" in v.trainings
    assert "crisis" in v.flags
    assert "" not in v.languages | v.topics | v.trainings | v.flags


async def _run(limit: int, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
               ) -> tuple[list[dict[str, Any]], int]:
    """The middleware around an app that reads the whole body: what was sent back,
    and how many body bytes the app got."""
    got = 0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal got
        more = True
        while more:
            msg = await receive()
            got += len(msg.get("body", b""))
            more = msg.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
               for i, c in enumerate(chunks)]

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    sent: list[dict[str, Any]] = []

    async def send(msg: dict[str, Any]) -> None:
        sent.append(msg)

    await BodyLimit(app, limit)({"type": "http", "headers": headers}, receive, send)
    return sent, got


async def test_a_declared_large_body_is_refused_before_it_is_read() -> None:
    sent, got = await _run(100, [(b"content-length", b"100000000")], [b"x" * 10])
    assert sent[0]["status"] == 413 and got == 0


async def test_a_streamed_body_is_refused_once_it_passes_the_limit() -> None:
    sent, got = await _run(100, [], [b"x" * 60, b"x" * 60, b"x" * 60])
    assert sent[0]["status"] == 413


async def test_a_body_within_the_limit_passes() -> None:
    sent, got = await _run(100, [(b"content-length", b"100")], [b"x" * 50, b"x" * 50])
    assert sent[0]["status"] == 200 and got == 100


async def test_a_bad_content_length_is_a_400() -> None:
    sent, _ = await _run(100, [(b"content-length", b"lots")], [b""])
    assert sent[0]["status"] == 400
