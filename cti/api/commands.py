"""WebSocket commands: `{"id": 1, "cmd": "hold", "call_id": "...", "on": true}` in,
`{"type": "reply", "id": 1, "ok": true, "result": {...}}` or
`{"type": "reply", "id": 1, "ok": false, "error": "one line"}` out.

The same rules as REST (cti/api/actions.py); which role may send which command
is in cti/api/roles.py (WS_COMMAND_ROLES).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cti.api import actions
from cti.api.auth import Principal
from cti.api.deps import GatewayApi
from cti.api.limits import find_surrogate
from cti.api.roles import WS_COMMAND_ROLES, allows
from cti.api.schemas import (
    HoldRequest,
    RecordingRequest,
    StateRequest,
    TransferRequest,
    WrapUpRequest,
)

log = logging.getLogger("cti.ws")

MAX_COMMAND_BYTES = 16_384
CallId = Field(min_length=1, max_length=64)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArgs(_Args):
    pass


# A command's arguments are the REST body of the same action plus the call id.
class StateArgs(_Args, StateRequest):
    pass


class CallArgs(_Args):
    call_id: str = CallId


class HoldArgs(CallArgs, HoldRequest):
    pass


class RecordingArgs(CallArgs, RecordingRequest):
    pass


class TransferArgs(CallArgs, TransferRequest):
    pass


class WrapUpArgs(CallArgs, WrapUpRequest):
    pass


Handler = Callable[[GatewayApi, Principal, Any], dict[str, Any] | None]

# cmd -> (arguments, what it does); roles in cti/api/roles.py
COMMANDS: dict[str, tuple[type[_Args], Handler]] = {
    "ping": (NoArgs, lambda gw, p, a: {"ts": round(time.time(), 3)}),
    "state": (StateArgs, lambda gw, p, a: actions.set_state(gw, p, a.state, a.reason)),
    "offer.accept": (CallArgs, lambda gw, p, a: actions.accept_offer(gw, p, a.call_id)),
    "offer.reject": (CallArgs, lambda gw, p, a: actions.reject_offer(gw, p, a.call_id)),
    "hangup": (CallArgs, lambda gw, p, a: actions.hangup(gw, p, a.call_id)),
    "hold": (HoldArgs, lambda gw, p, a: actions.hold(gw, p, a.call_id, a.on)),
    "recording": (RecordingArgs, lambda gw, p, a: {
        "state": actions.pause_recording(gw, p, a.call_id, a.paused)}),
    "transfer": (TransferArgs, lambda gw, p, a: actions.transfer(
        gw, p, a.call_id, a.kind, a.target_type, a.target)),
    "consult.complete": (CallArgs, lambda gw, p, a: actions.consult_complete(gw, p, a.call_id)),
    "consult.cancel": (CallArgs, lambda gw, p, a: actions.consult_cancel(gw, p, a.call_id)),
    "wrap_up": (WrapUpArgs, lambda gw, p, a: actions.wrap_up(gw, p, a.call_id, a.code,
                                                             a.note, a.distressing)),
}


def reply(id_: Any, result: dict[str, Any] | None = None, error: str | None = None
          ) -> dict[str, Any]:
    if error is not None:
        return {"type": "reply", "id": id_, "ok": False, "error": error}
    return {"type": "reply", "id": id_, "ok": True, "result": result or {}}


def _validation_line(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(x) for x in err["loc"]) or "command"
    return f"{where}: {err['msg']}"


class Commands:
    def __init__(self, gw: GatewayApi) -> None:
        self.gw = gw

    def handle(self, p: Principal, raw: str) -> dict[str, Any]:
        """One command in, its reply out; never raises."""
        if len(raw) > MAX_COMMAND_BYTES:
            return reply(None, error="command too long")
        try:
            msg = json.loads(raw)
        except ValueError:
            return reply(None, error="not JSON")
        if not isinstance(msg, dict):
            return reply(None, error='expected an object {"id": ..., "cmd": ...}')
        if find_surrogate(msg) is not None:
            return reply(None, error="not valid Unicode (a lone surrogate)")
        id_ = msg.pop("id", None)
        if isinstance(id_, bool) or (not isinstance(id_, (int, str)) and id_ is not None):
            return reply(None, error="id: expected a number or a string")
        if isinstance(id_, str) and len(id_) > 64:
            return reply(None, error="id: at most 64 characters")
        cmd = msg.pop("cmd", None)
        if not isinstance(cmd, str) or cmd not in COMMANDS:
            shown = repr(cmd)[:40] if isinstance(cmd, str) else type(cmd).__name__
            return reply(id_, error=f"unknown cmd {shown} (expected one of "
                                    f"{', '.join(COMMANDS)})")
        rule = WS_COMMAND_ROLES[cmd]
        if not allows(rule, p.role):
            return reply(id_, error=f"{cmd}: {'advisors' if rule == 'advisor' else 'supervisors'}"
                                    " only")
        args_model, handler = COMMANDS[cmd]
        try:
            args = args_model.model_validate(msg)
        except ValidationError as e:
            return reply(id_, error=_validation_line(e))
        try:
            result = handler(self.gw, p, args)
        except actions.ActionError as e:
            return reply(id_, error=e.message)
        except Exception as e:  # a bug must not end the client's socket
            log.exception("command %s failed user=%s call_id=%s", cmd, p.user,
                          getattr(args, "call_id", None))
            return reply(id_, error=f"internal error: {type(e).__name__}")
        log.debug("command %s by=%s call_id=%s", cmd, p.user, getattr(args, "call_id", None))
        return reply(id_, result)
