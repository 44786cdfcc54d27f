"""The wait without SIP: position announcements and the max wait (real, short timers)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cti.hookspecs import hookimpl
from tests.unit.controller_fakes import Harness


async def test_position_announcement_then_music(tmp_path: Path) -> None:
    h = Harness(tmp_path, ivr={"announce_first_s": 0.02, "announce_every_s": 0})
    try:
        call_id = await h.queued()
        await asyncio.sleep(0.05)
        await h.settle()
        [ev] = [e for e in h.of_type("ivr.prompt") if e["data"]["kind"] == "announcement"]
        assert ev["call_id"] == call_id
        assert (ev["data"]["play_id"], ev["data"]["position"]) == ("announce-1", 1)
        assert h.link().sent("play")[-1]["play_id"] == "announce-1"
        h.send("w1", event="play.done", leg="c1", play_id="announce-1")
        await h.settle()
        assert h.link().sent("play")[-1]["play_id"] == "music"
    finally:
        h.close()


async def test_max_wait_moves_the_call_to_another_queue(tmp_path: Path) -> None:
    h = Harness(tmp_path, routing={"max_wait_s": 0.02, "max_wait_action": "queue:passport"})
    try:
        call_id = await h.queued()
        await asyncio.sleep(0.05)
        [ev] = h.of_type("call.max_wait")
        assert ev["data"] == {"action": "queue:passport", "topic": "passport"}
        call = h.call(call_id)
        assert call.topic == "passport" and call.ivr_path[-1] == "max_wait->passport"
        assert h.flow.distributor.waiting_calls() == [call_id]
    finally:
        h.close()


class TakesCareOfIt:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    @hookimpl
    def cti_call_max_wait(self, call: Any) -> bool:
        self.calls.append(call)
        return True


async def test_max_wait_hook_asks_the_plugins(tmp_path: Path) -> None:
    h = Harness(tmp_path, routing={"max_wait_s": 0.02, "max_wait_action": "hook"})
    plugin = TakesCareOfIt()
    h.plugins.register(plugin, "callbacks")
    try:
        call_id = await h.queued()
        await asyncio.sleep(0.05)
        assert [c.call_id for c in plugin.calls] == [call_id]
        assert plugin.calls[0].state == "queued"
        assert h.of_type("call.max_wait")[0]["data"] == {"action": "hook", "handled": True}
    finally:
        h.close()


async def test_ended_call_leaves_no_timer_behind(tmp_path: Path) -> None:
    h = Harness(tmp_path, routing={"max_wait_s": 0.02},
                ivr={"announce_first_s": 0.02, "announce_every_s": 0})
    try:
        await h.queued()
        h.leg_state("w1", "c1", "disconnected", code=200)
        await asyncio.sleep(0.05)
        assert not h.of_type("call.max_wait")
        assert not [e for e in h.of_type("ivr.prompt") if e["data"]["kind"] == "announcement"]
    finally:
        h.close()
