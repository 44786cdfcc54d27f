"""What plugins may do to calls (cti/controller/plugin_actions.py), without SIP:
views, flags, priority and requirements that keep the place, moves, prompts, and
transfers of waiting and connected calls with their fallbacks."""

from __future__ import annotations

import pytest

from cti.core.views import CallView
from cti.hookspecs import hookimpl
from cti.plugins.api import ActionError
from tests.unit.controller_fakes import Harness


async def test_views_are_frozen_copies(h: Harness) -> None:
    call_id = await h.queued()
    actions = h.flow.plugin_calls
    view = actions.call_view(call_id)
    assert view is not None and (view.state, view.language, view.topic) == (
        "queued", "es", "visa")
    actions.set_call_flag(call_id, "vip", True)
    assert "vip" not in view.flags  # a copy taken before
    assert actions.call_view(call_id).flags["vip"] is True  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        view.flags["x"] = 1  # type: ignore[index]
    assert [c.call_id for c in actions.waiting_views().waiting] == [call_id]
    names = {a.name: a for a in actions.advisor_views()}
    assert "nadia" not in names  # a supervisor takes no calls
    assert names["dalia"].trainings == {"crisis"} and names["sofia"].state == "logged_out"
    assert actions.call_view("nope") is None


async def test_priority_and_requirements_keep_the_place_and_count_at_once(h: Harness) -> None:
    first = await h.queued(leg="c1")
    second = await h.queued(leg="c2")
    actions = h.flow.plugin_calls
    assert h.flow.distributor.waiting_calls() == [first, second]
    actions.set_call_priority(second, 50)
    assert h.flow.distributor.waiting_calls() == [second, first]
    # Needs a training nobody available has: sofia (visa, es) may not take it...
    actions.set_call_requirements(second, frozenset({"crisis"}), None)
    h.flow.set_advisor_state("sofia", "available")
    await h.settle()
    assert h.of_type("call.offered")[-1]["call_id"] == first
    # ... unless she is in its reserve pool (a plugin's, e.g. a crisis).
    assert h.call(second).trainings == {"crisis"}
    actions.set_call_requirements(second, None, frozenset({"emre"}))
    assert h.flow.distributor.snapshot()["calls"][0]["reserve"] == ["emre"]


async def test_move_and_play_need_a_waiting_call(h: Harness) -> None:
    call_id = await h.queued()
    actions = h.flow.plugin_calls
    queued_at = h.call(call_id).queued_at
    actions.move_call(call_id, "passport")
    assert h.call(call_id).topic == "passport" and h.call(call_id).queued_at == queued_at
    assert h.call(call_id).ivr_path[-1] == "plugin->passport"
    with pytest.raises(ActionError, match="'nowhere' is not a queue"):
        actions.move_call(call_id, "nowhere")
    actions.play_prompts(call_id, ["please_hold"])
    await h.settle()
    play = h.link().sent("play")[-1]
    assert play["play_id"].startswith("announce-plugin-")
    h.send("w1", event="play.done", leg="c1", play_id=play["play_id"])
    await h.settle()
    assert h.link().sent("play")[-1]["play_id"] == "music"  # music again after it
    with pytest.raises(ActionError, match="no prompt es/not_a_prompt.wav"):
        actions.play_prompts(call_id, ["not_a_prompt"])
    with pytest.raises(KeyError):
        actions.move_call("nope", "visa")


async def test_a_waiting_call_transferred_comes_back_at_the_head_if_nobody_answers(
        h: Harness) -> None:
    first = await h.queued(leg="c1")
    second = await h.queued(leg="c2")
    actions = h.flow.plugin_calls
    actions.transfer_for_plugin(second, "crisis_team", "queue_head", "crisis_line")
    await h.settle()
    assert h.call(second).state == "transferring"
    assert h.flow.distributor.waiting_calls() == [first]
    dial = h.link().sent("dial")[-1]
    assert dial["uri"] == "sip:crisis@127.0.0.1:5090"
    h.leg_state("w1", dial["leg"], "disconnected", code=486)
    await h.settle()
    assert h.of_type("call.transfer_failed")[-1]["call_id"] == second
    assert h.call(second).state == "queued"
    assert h.flow.distributor.waiting_calls() == [second, first]  # at the head


async def test_fallbacks_queue_and_hangup_and_refusals(h: Harness) -> None:
    call_id = await h.queued()
    actions = h.flow.plugin_calls
    actions.transfer_for_plugin(call_id, "crisis_team", "hangup", "test")
    await h.settle()
    dial = h.link().sent("dial")[-1]
    h.leg_state("w1", dial["leg"], "disconnected", code=480)
    await h.settle()
    assert h.record(call_id).end_reason == "transfer_failed"
    other = await h.queued(leg="c2")
    with pytest.raises(ActionError, match="not in the directory"):
        actions.transfer_for_plugin(other, "nobody", "queue", "test")
    with pytest.raises(ActionError, match="fallback"):
        actions.transfer_for_plugin(other, "crisis_team", "later", "test")
    actions.transfer_for_plugin(other, "queue:passport", "queue", "test")
    assert h.call(other).topic == "passport"


async def test_a_connected_call_transferred_by_a_plugin(h: Harness) -> None:
    call_id, _ = await h.connected("sofia")
    h.flow.plugin_calls.transfer_for_plugin(call_id, "crisis_team", "queue_head", "plugin")
    await h.settle()
    call = h.call(call_id)
    assert (call.state, call.transfer_by) == ("transferring", "plugin")
    assert h.flow.distributor.advisor_state("sofia").value in ("wrap_up", "available")


class TakesOne:
    """A plugin that takes the key 1 of a waiting caller (a call-back offer)."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []

    @hookimpl
    def cti_call_digit(self, call: CallView, digit: str) -> bool | None:
        self.got.append((call.call_id, digit))
        return True if digit == "1" else None


async def test_keys_of_a_waiting_caller_go_to_plugins(h: Harness) -> None:
    plugin = TakesOne()
    h.plugins.register(plugin, "takes_one")
    call_id = await h.queued()
    for digit in "12":
        h.send("w1", event="leg.dtmf", leg="c1", digit=digit, method="rfc2833")
    inputs = [e["data"] for e in h.of_type("ivr.input")][-2:]
    assert [(i["digit"], i["accepted"], i["stage"]) for i in inputs] == [
        ("1", True, "queued"), ("2", False, "queued")]
    assert plugin.got == [(call_id, "1"), (call_id, "2")]
    view = h.flow.plugin_calls.call_view(call_id)
    assert view is not None and view.caller_timezone == "Europe/Madrid"
