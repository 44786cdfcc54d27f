"""Monitoring on fake workers: the one-way links of each mode, the worker's room, and
the ends (the call's, a refused link) — the audio itself: tests/e2e/test_monitoring.py."""

from __future__ import annotations

import pytest

from cti.controller.context import CallControlError
from cti.controller.monitor import NO_FREE_LINE
from tests.unit.controller_fakes import Harness


async def _monitored(h: Harness, mode: str = "listen") -> tuple[str, str, str]:
    """sofia talks to a caller (leg c1), nadia monitors and answers: (call id, sofia's
    leg, nadia's leg)."""
    call_id, advisor_leg = await h.connected("sofia")
    assert await h.flow.monitor_call(call_id, "nadia", mode) == {"mode": mode,
                                                                 "state": "ringing"}
    await h.settle()
    dial = h.link().sent("dial")[-1]
    assert dial["uri"].startswith("sip:nadia@")
    assert dial["headers"]["X-CTI-Monitor"] == mode
    assert dial["headers"]["X-CTI-Call-ID"] == call_id
    h.leg_state("w1", dial["leg"], "confirmed")
    await h.settle()
    return call_id, advisor_leg, dial["leg"]


def _links(h: Harness) -> set[tuple[str, str, bool]]:
    """The last state of every (listener, source) link sent to w1."""
    state: dict[tuple[str, str], bool] = {}
    for f in h.link().sent("listen"):
        state[(f["leg"], f["source"])] = f.get("on", True)
    return {(leg, src, on) for (leg, src), on in state.items()}


async def test_each_mode_links_who_hears_the_monitor(h: Harness) -> None:
    call_id, sofia, nadia = await _monitored(h)
    assert _links(h) == {(nadia, "c1", True), (nadia, sofia, True),
                         ("c1", nadia, False), (sofia, nadia, False)}
    assert [(e["data"]["state"], e["advisor"]) for e in h.of_type("call.monitor")] == [
        ("ringing", "nadia"), ("active", "nadia")]

    await h.flow.monitor_mode(call_id, "nadia", "whisper")
    assert (sofia, nadia, True) in _links(h) and ("c1", nadia, False) in _links(h)
    await h.flow.monitor_call(call_id, "nadia", "barge")  # the same POST changes it
    assert {("c1", nadia, True), (sofia, nadia, True)} <= _links(h)
    await h.flow.monitor_mode(call_id, "nadia", "listen")
    assert {("c1", nadia, False), (sofia, nadia, False)} <= _links(h)
    assert [e["data"].get("was") for e in h.of_type("call.monitor")][2:] == [
        "listen", "whisper", "barge"]
    assert [c["monitors"] for c in h.flow.active_calls()] == [
        [{"by": "nadia", "mode": "listen", "state": "active"}]]


async def test_no_free_line_and_other_refusals(h: Harness) -> None:
    call_id, _ = await h.connected("sofia")
    with pytest.raises(CallControlError, match="the call's advisor"):
        await h.flow.monitor_call(call_id, "sofia", "listen")
    with pytest.raises(CallControlError, match="not monitoring"):
        await h.flow.monitor_mode(call_id, "nadia", "barge")
    with pytest.raises(KeyError):
        await h.flow.monitor_call("no-such-call", "nadia", "listen")
    # A second caller on w1 keeps a line for their advisor: 2 + 2 = the 4 lines.
    await h.incoming("w1", "c2", "+34911000001")
    with pytest.raises(CallControlError) as e:
        await h.flow.monitor_call(call_id, "nadia", "listen")
    assert str(e.value) == NO_FREE_LINE
    assert h.link().sent("dial")[-1]["uri"].startswith("sip:sofia@")  # nothing dialled
    assert h.store.audit.lines("monitor.") == []


async def test_the_call_ending_ends_the_monitor_and_audits_it(h: Harness) -> None:
    call_id, _, nadia = await _monitored(h, "barge")
    h.leg_state("w1", "c1", "disconnected")
    await h.settle()
    assert {"leg": nadia} in h.link().sent("hangup")
    ended = h.of_type("call.monitor")[-1]["data"]
    assert (ended["state"], ended["reason"]) == ("ended", "call_ended")
    await h.store.writer.run(lambda c: None)  # the spawned audit line is written
    lines = h.store.audit.lines("monitor.")
    assert [(x.action, x.details["reason"] if x.action == "monitor.end" else x.details["mode"])
            for x in lines] == [("monitor.end", "call_ended"), ("monitor.start", "barge")]


async def test_links_the_worker_refuses_leave_the_call_alone(h: Harness) -> None:
    h.link().fail.add("listen")
    call_id, _, _ = await _monitored(h)
    assert h.call(call_id).state == "connected"
    assert h.link().sent("hangup") == []
    assert [e["data"]["state"] for e in h.of_type("call.monitor")] == ["ringing", "active"]
