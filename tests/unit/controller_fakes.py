"""Fakes for driving the call-flow services without SIP: workers that record commands.

The rest is real: the demo config, an EventBus, a Store on a tmp path, a
PluginHost (with a recording plugin) and a PromptLibrary whose prompts are tiny
silent WAVs written into a tmp dir.
"""

from __future__ import annotations

import asyncio
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cti.config import Settings, ivr_flows, load_settings
from cti.controller.calls import Call
from cti.controller.flow import CallFlow
from cti.controller.prompts import MUSIC, PromptLibrary
from cti.controller.workers import WorkerCommandError, WorkerSpec
from cti.events import Event, EventBus
from cti.hookspecs import hookimpl
from cti.ivr.announce import announcement_prompts
from cti.plugins import PluginHost
from cti.store.db import CallRecord, Store

CONFIG = Path(__file__).resolve().parents[2] / "config" / "cti.yaml"


@dataclass
class FakeLink:
    """A worker link: records commands; ``fail`` makes a command raise like a refusal."""

    worker_id: str
    spec: WorkerSpec
    up: bool = True
    restarts: int = 0
    commands: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)

    async def command(self, cmd: str, **fields: Any) -> dict[str, Any]:
        self.commands.append((cmd, fields))
        if cmd in self.fail:
            raise WorkerCommandError(f"worker {self.worker_id}: {cmd}: refused")
        return {"ok": True}

    def sent(self, cmd: str) -> list[dict[str, Any]]:
        return [f for c, f in self.commands if c == cmd]


class FakePool:
    def __init__(self, *worker_ids: str) -> None:
        self.links = {w: FakeLink(w, WorkerSpec(w, "127.0.0.1", 5071 + i, 20000 + 40 * i, 40))
                      for i, w in enumerate(worker_ids)}

    def get(self, worker_id: str) -> FakeLink | None:
        return self.links.get(worker_id)


class HookRecorder:
    """A plugin that records the call hooks it sees (hook name, call view)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    @hookimpl
    def cti_call_incoming(self, call: Any) -> None:
        self.seen.append(("cti_call_incoming", call))

    @hookimpl
    def cti_call_queued(self, call: Any) -> None:
        self.seen.append(("cti_call_queued", call))

    @hookimpl
    def cti_call_connected(self, call: Any) -> None:
        self.seen.append(("cti_call_connected", call))

    @hookimpl
    def cti_call_ended(self, call: Any) -> None:
        self.seen.append(("cti_call_ended", call))

    def hooks(self) -> list[str]:
        return [name for name, _ in self.seen]


def write_prompts(settings: Settings, cache_dir: Path) -> None:
    """A 10 ms silent WAV for every prompt any flow or announcement may play."""
    langs = sorted({m.code for m in settings.ivr.languages})
    refs = {MUSIC} | {(r.language, r.key) for r in announcement_prompts(langs)}
    for flow in ivr_flows(settings).values():
        refs |= {(lang, key) for key in flow.prompt_keys() for lang in langs}
    for lang, key in refs:
        path = cache_dir / lang / f"{key}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\0\0" * 80)


class Harness:
    """A CallFlow on fake workers, with helpers that play the workers' events."""

    def __init__(self, tmp: Path, workers: tuple[str, ...] = ("w1", "w2"),
                 routing: dict[str, Any] | None = None,
                 ivr: dict[str, Any] | None = None) -> None:
        """``routing`` and ``ivr``: settings changed from the demo config's."""
        demo = load_settings(CONFIG)
        self.settings = demo.model_copy(update={
            "routing": demo.routing.model_copy(update=routing or {}),
            "ivr": demo.ivr.model_copy(update=ivr or {}),
        })
        write_prompts(self.settings, tmp / "prompts")
        self.pool = FakePool(*workers)
        self.bus = EventBus()
        self.store = Store(tmp / "cti.sqlite3")
        self.plugins = PluginHost()
        self.hooks = HookRecorder()
        self.plugins.register(self.hooks, "recorder")
        self.prompts = PromptLibrary(tmp / "prompts", None)
        self.events: list[Event] = []
        self.bus.subscribe(self.events.append)
        self.delivered: list[tuple[str, int]] = []
        self.flow = CallFlow(self.settings, self.pool, self.bus, self.store, self.plugins,
                             self.prompts, self._delivered)

    async def _delivered(self, advisor: str, seq: int, timeout: float) -> bool:
        self.delivered.append((advisor, seq))
        return True

    def call(self, call_id: str) -> Call:
        """The active call (asserted to be)."""
        call = self.flow.calls.get(call_id)
        assert call is not None, f"no active call {call_id}"
        return call

    def record(self, call_id: str) -> CallRecord:
        """The ended call's record in the store (asserted to be)."""
        rec = self.store.get_call(call_id)
        assert rec is not None, f"no record of {call_id}"
        return rec

    def link(self, worker: str = "w1") -> FakeLink:
        return self.pool.links[worker]

    def of_type(self, type_: str) -> list[Event]:
        return [e for e in self.events if e["type"] == type_]

    def send(self, worker: str, **msg: Any) -> None:
        self.flow.on_worker_event(self.link(worker), msg)  # type: ignore[arg-type]

    def leg_state(self, worker: str, leg: str, state: str, code: int | None = None) -> None:
        self.send(worker, event="leg.state", leg=leg, state=state, code=code,
                  sip_call_id=f"sip-{leg}")

    @staticmethod
    async def settle() -> None:
        """Let spawned command and dial tasks run."""
        for _ in range(5):
            await asyncio.sleep(0)

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------ call set-ups
    async def incoming(self, worker: str = "w1", leg: str = "c1",
                       caller: str = "+34911234567") -> str:
        """A Spanish caller dials the hotline; returns the call id."""
        self.send(worker, event="leg.incoming", leg=leg, sip_call_id=f"sip-{leg}",
                  **{"from": f"<sip:{caller}@127.0.0.1>", "to": "<sip:+31247247247@127.0.0.1>"})
        await self.settle()
        call = self.flow.calls.by_leg(worker, leg)
        assert call is not None
        return call.call_id

    async def queued(self, worker: str = "w1", leg: str = "c1") -> str:
        """Through the standard IVR (Español, visa) into the queue; returns the call id."""
        call_id = await self.incoming(worker, leg)
        self.send(worker, event="leg.media", leg=leg, active=True)
        for digit in "32":
            self.send(worker, event="leg.dtmf", leg=leg, digit=digit, method="rfc2833")
        await self.settle()
        return call_id

    async def offered(self, advisor: str = "sofia", worker: str = "w1",
                      leg: str = "c1") -> tuple[str, str]:
        """Queued, then ``advisor`` becomes available: their phone is dialled.

        Returns the call id and the advisor leg's id.
        """
        call_id = await self.queued(worker, leg)
        self.flow.set_advisor_state(advisor, "available")
        await self.settle()
        dial = self.link(worker).sent("dial")[-1]
        return call_id, dial["leg"]

    async def connected(self, advisor: str = "sofia", worker: str = "w1",
                        leg: str = "c1") -> tuple[str, str]:
        """Offered, and the advisor answers."""
        call_id, advisor_leg = await self.offered(advisor, worker, leg)
        self.leg_state(worker, advisor_leg, "confirmed")
        await self.settle()
        return call_id, advisor_leg
