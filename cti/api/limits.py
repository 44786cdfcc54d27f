"""Input limits of the API: request body sizes, text without control characters or
lone surrogates, and the config's vocabularies (languages, topics, trainings, flags).

Nothing a client sends may end in a 500 or change state it does not name: a body
too large is refused (413) before it is read, a key outside the vocabulary is a
422 naming the field.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cti.config import Settings, ivr_flows
from cti.ivr.graph import BranchNode
from cti.routing.model import DEFAULT_TOPIC_TRAININGS

#: Control characters a free text (a note) may hold; names and keys hold none.
TEXT_CONTROLS = frozenset("\t\n\r")


def text_problem(s: str, controls: frozenset[str] = frozenset()) -> str | None:
    """Why `s` is not acceptable text (a lone surrogate, a control character), or None."""
    for ch in s:
        cat = unicodedata.category(ch)
        if cat == "Cs":
            return "contains a lone surrogate"
        if cat == "Cc" and ch not in controls:
            return f"contains the control character U+{ord(ch):04X}"
    return None


def find_surrogate(value: Any, loc: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Where in a decoded JSON value a string (or a key) holds a lone surrogate."""
    if isinstance(value, str):
        return loc if any(unicodedata.category(c) == "Cs" for c in value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and any(unicodedata.category(c) == "Cs" for c in k):
                return (*loc, "<key>")
            found = find_surrogate(v, (*loc, str(k)))
            if found is not None:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = find_surrogate(v, (*loc, i))
            if found is not None:
                return found
    return None


@dataclass(frozen=True)
class Vocabulary:
    """The names the config knows; the API accepts no others."""

    languages: frozenset[str]
    topics: frozenset[str]
    trainings: frozenset[str]
    flags: frozenset[str]

    @classmethod
    def of(cls, settings: Settings) -> Vocabulary:
        ivr = settings.ivr
        advisors = settings.advisors
        trainings = {t for ts in DEFAULT_TOPIC_TRAININGS.values() for t in ts}
        flags = set(ivr.flags)
        for flow in ivr_flows(settings).values():
            for node in flow.nodes.values():
                if isinstance(node, BranchNode) and node.by.startswith("flag:"):
                    flags.add(node.by.partition(":")[2])
        # What the config already gives an advisor is accepted back as well.
        return cls(
            languages=frozenset({m.code for m in ivr.languages}
                                | {k for a in advisors for k in a.languages}),
            topics=frozenset({m.code for m in ivr.topics}
                             | {k for a in advisors for k in a.topics}),
            trainings=frozenset(trainings | {k for a in advisors for k in a.trainings}),
            flags=frozenset(flags))


def unknown_keys(field: str, keys: Iterable[str], known: frozenset[str]
                 ) -> list[dict[str, Any]]:
    """422 details (FastAPI's shape) for each key of `field` not in `known`."""
    expected = ", ".join(sorted(known))
    return [{"type": "value_error", "loc": ["body", field, k],
             "msg": f"unknown {field[:-1] if field.endswith('s') else field} "
                    f"(expected one of {expected})", "input": k}
            for k in keys if k not in known]


class BodyTooLarge(HTTPException):
    """Raised from the counted `receive`: FastAPI passes an HTTPException on."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body larger than {max_bytes} bytes")


class BodyLimit:
    """Pure ASGI: a request body above `max_bytes` gets a 413 before it is read (by
    its Content-Length) or as soon as its streamed bytes pass the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    await _plain(send, 400, "bad Content-Length")
                    return
                if too_large:
                    await _plain(send, 413, f"request body larger than {self.max_bytes} bytes")
                    return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return msg

        async def tracked(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await _plain(send, 413, f"request body larger than {self.max_bytes} bytes")


async def _plain(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: a lone surrogate a client sent (and an error
    echoes back) renders as \\udXXX instead of failing to encode (a 500)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")


def add_input_errors(app: FastAPI) -> None:
    """422s that cannot fail to render; text that cannot be encoded and numbers too
    large for the store are a 422, not a 500."""

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return AsciiJSONResponse({"detail": jsonable_encoder(exc.errors())}, 422)

    async def undecodable(request: Request, exc: Exception) -> Response:
        return AsciiJSONResponse({"detail": "text that is not valid Unicode "
                                            "(e.g. a lone surrogate)"}, 422)

    async def out_of_range(request: Request, exc: Exception) -> Response:
        # An id past what the store can hold (SQLite: 64 bits) names nothing.
        return AsciiJSONResponse({"detail": "a number out of range"}, 422)

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(UnicodeError, undecodable)
    app.add_exception_handler(OverflowError, out_of_range)
