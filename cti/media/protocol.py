"""Wire format between the controller (or a test) and a media engine.

Pure module: it must never import pjsua2, the controller imports it.
One JSON object per line, UTF-8, ``\\n`` terminated (see docs/ipc.md).
"""

from __future__ import annotations

import json
import time
from typing import Any

PROTOCOL_VERSION = 1
# Environment variable with the edge's secret for a media worker (cti.media.worker).
EDGE_SECRET_ENV = "CTI_EDGE_SECRET"

# Commands (controller -> engine)
CMD_ANSWER = "answer"
CMD_HANGUP = "hangup"
CMD_DIAL = "dial"
CMD_PLAY = "play"
CMD_STOP_PLAY = "stop_play"
CMD_BRIDGE = "bridge"
CMD_UNBRIDGE = "unbridge"
CMD_LISTEN = "listen"
CMD_RECORD_START = "record_start"
CMD_RECORD_STOP = "record_stop"
CMD_RECORD_PAUSE = "record_pause"
CMD_RECORD_RESUME = "record_resume"
CMD_RECORD_TAP = "record_tap"
CMD_SEND_DTMF = "send_dtmf"
CMD_REGISTER = "register"
CMD_SET_REGISTRATION = "set_registration"
CMD_SHUTDOWN = "shutdown"

COMMANDS = frozenset(
    {
        CMD_ANSWER,
        CMD_HANGUP,
        CMD_DIAL,
        CMD_PLAY,
        CMD_STOP_PLAY,
        CMD_BRIDGE,
        CMD_UNBRIDGE,
        CMD_LISTEN,
        CMD_RECORD_START,
        CMD_RECORD_STOP,
        CMD_RECORD_PAUSE,
        CMD_RECORD_RESUME,
        CMD_RECORD_TAP,
        CMD_SEND_DTMF,
        CMD_REGISTER,
        CMD_SET_REGISTRATION,
        CMD_SHUTDOWN,
    }
)

# Events (engine -> controller)
EV_READY = "ready"
EV_LEG_INCOMING = "leg.incoming"
EV_LEG_STATE = "leg.state"
EV_LEG_MEDIA = "leg.media"
EV_LEG_DTMF = "leg.dtmf"
EV_PLAY_DONE = "play.done"
EV_RECORD_DONE = "record.done"
EV_RECORD_FAILED = "record.failed"
EV_REG_STATE = "reg.state"
EV_CMD_RESULT = "cmd.result"
EV_ERROR = "error"

EVENTS = frozenset(
    {
        EV_READY,
        EV_LEG_INCOMING,
        EV_LEG_STATE,
        EV_LEG_MEDIA,
        EV_LEG_DTMF,
        EV_PLAY_DONE,
        EV_RECORD_DONE,
        EV_RECORD_FAILED,
        EV_REG_STATE,
        EV_CMD_RESULT,
        EV_ERROR,
    }
)

# leg.state values
STATE_CALLING = "calling"
STATE_INCOMING = "incoming"
STATE_EARLY = "early"
STATE_CONNECTING = "connecting"
STATE_CONFIRMED = "confirmed"
STATE_DISCONNECTED = "disconnected"

# DTMF methods
DTMF_RFC2833 = "rfc2833"
DTMF_INFO = "info"

MAX_LINE = 1 << 20  # a sane bound: nothing legitimate comes near 1 MiB


class ProtocolError(ValueError):
    """A line that is not a valid protocol message."""


def encode(msg: dict[str, Any]) -> bytes:
    """One message as a JSON line (compact, UTF-8, ``\\n`` terminated)."""
    if not isinstance(msg, dict):
        raise ProtocolError(f"message must be a dict, got {type(msg).__name__}")
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode(line: bytes | str) -> dict[str, Any]:
    """Parse one line; raise ProtocolError if it is not a JSON object with cmd or event."""
    if isinstance(line, bytes):
        if len(line) > MAX_LINE:
            raise ProtocolError(f"line too long ({len(line)} bytes)")
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"line is not UTF-8: {exc}") from None
    text = line.strip()
    if not text:
        raise ProtocolError("empty line")
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"invalid JSON: {exc.msg} at column {exc.colno}: {text[:80]!r}") from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"message must be a JSON object, got {type(msg).__name__}")
    if not isinstance(msg.get("cmd", msg.get("event")), str):
        raise ProtocolError("message has neither a string 'cmd' nor a string 'event'")
    return msg


def event(name: str, **fields: Any) -> dict[str, Any]:
    """Build an event dict stamped with the current unix time."""
    return {"event": name, "ts": time.time(), **fields}


def result(cmd_id: Any, ok: bool, error: str = "", **fields: Any) -> dict[str, Any]:
    """Build the cmd.result event answering command ``cmd_id``."""
    return event(EV_CMD_RESULT, id=cmd_id, ok=ok, error=error, **fields)
