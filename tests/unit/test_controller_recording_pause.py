"""Pausing a call's recording without SIP: the flow facade, the API's action and the
WebSocket command (the advisor's own call only; refused when not recorded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cti.api.auth import Principal
from cti.api.commands import Commands
from cti.controller.flow import CallFlow
from cti.plugins.api import ActionError
from tests.unit.controller_fakes import Harness


class _Gateway:
    """What the WebSocket commands read of the gateway: its flow (a real CallFlow)."""

    def __init__(self, flow: CallFlow) -> None:
        self.flow = flow


def _cmd(h: Harness, user: str, role: str = "advisor", **msg: Any) -> dict[str, Any]:
    commands = Commands(_Gateway(h.flow))  # type: ignore[arg-type]
    return commands.handle(Principal(user, role, 0.0), json.dumps({"id": 7, **msg}))


async def _recorded(h: Harness, tmp_path: Path) -> str:
    call_id, _ = await h.connected("sofia")
    await h.flow.recorder.start(call_id, tmp_path / "call.wav")
    return call_id


async def test_the_advisor_pauses_and_resumes_the_recording(h: Harness, tmp_path: Path) -> None:
    call_id = await _recorded(h, tmp_path)
    [rec_start] = h.link().sent("record_start")
    assert [c["recording"] for c in h.flow.active_calls()] == ["recording"]
    assert h.flow.pause_recording(call_id, "sofia", True) == "paused"
    assert h.flow.pause_recording(call_id, "sofia", True) == "paused"  # twice: once
    await h.settle()
    assert h.link().sent("record_pause") == [{"rec_id": rec_start["rec_id"]}]
    assert [c["recording"] for c in h.flow.active_calls()] == ["paused"]
    assert h.flow.pause_recording(call_id, "sofia", False) == "recording"
    await h.settle()
    assert h.link().sent("record_resume") == [{"rec_id": rec_start["rec_id"]}]
    states = [(e["data"]["state"], e["data"].get("by")) for e in h.of_type("call.recording")]
    assert states == [("started", None), ("paused", "sofia"), ("resumed", "sofia")]
    assert {e["advisor"] for e in h.of_type("call.recording")} == {"sofia"}


async def test_a_call_not_recorded_cannot_be_paused(h: Harness) -> None:
    call_id, _ = await h.connected("sofia")
    assert [c["recording"] for c in h.flow.active_calls()] == [None]
    with pytest.raises(ActionError, match="not being recorded"):
        h.flow.pause_recording(call_id, "sofia", True)
    with pytest.raises(KeyError):
        h.flow.pause_recording("no-such-call", "sofia", True)
    assert not h.link().sent("record_pause")


async def test_the_recording_command(h: Harness, tmp_path: Path) -> None:
    call_id = await _recorded(h, tmp_path)
    r = _cmd(h, "sofia", cmd="recording", call_id=call_id, paused=True)
    assert r == {"type": "reply", "id": 7, "ok": True, "result": {"state": "paused"}}
    # another advisor: as if the call did not exist; nothing changes
    r = _cmd(h, "michel", cmd="recording", call_id=call_id, paused=False)
    assert (r["ok"], r["error"]) == (False, "no such call")
    assert h.flow.recorder.state(call_id) == "paused"
    # a supervisor may, for the advisor
    r = _cmd(h, "nadia", "supervisor", cmd="recording", call_id=call_id, paused=False)
    assert r["result"] == {"state": "recording"}
    by = [e["data"].get("by") for e in h.of_type("call.recording")]
    assert by == [None, "sofia", "nadia"]
    r = _cmd(h, "sofia", cmd="recording", call_id=call_id)
    assert r["ok"] is False and r["error"].startswith("paused")


async def test_the_recording_command_refused_when_not_recorded(h: Harness) -> None:
    call_id, _ = await h.connected("sofia")
    r = _cmd(h, "sofia", cmd="recording", call_id=call_id, paused=True)
    assert (r["ok"], r["error"]) == (False, "the call is not being recorded")
    r = _cmd(h, "sofia", cmd="recording", call_id="nope", paused=True)
    assert (r["ok"], r["error"]) == (False, "no such call")
