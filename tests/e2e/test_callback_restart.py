"""A call back survives `cti serve` being killed (issue 10, acceptance 1).

A caller waiting with no advisor free presses 1, confirms their number and hangs
up; `cti serve` is killed with SIGKILL and started again on the same config and
store; when the matching advisor becomes available, their phone rings first, then
the caller's PSTN phone rings through the test carrier (which challenges the
gateway with digest auth), the caller hears the plugin's greeting and is bridged,
tones are heard both ways, and the record links the call back to the original call.

The caller is one pjsua2 phone registered at the carrier as its PSTN number: it
dials the hotline at the edge itself (its From user is the number) and later
receives the call back through the carrier.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest

from cti.config import Settings
from tests.audio import tone_present, tone_seconds, write_tone
from tests.e2e.gateway_harness import (
    HOTLINE,
    REPO,
    Advisor,
    EventStream,
    demo_config_data,
    gateway_settings,
    hear_each_other,
)
from tests.e2e.test_serve_process import _descendants, _serve, _until_gone
from tests.e2e.test_trunk import TRUNK_PASSWORD, TRUNK_USER, register_pstn, trunk
from tests.peers.carrier import Carrier
from tests.peers.phone import Phone

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

NUMBER = "+442071234567"  # GB: English guessed first; registered at the carrier


def _quick_callbacks() -> dict[str, Any]:
    return {"offer_after_s": 1, "no_input_s": 15, "hangup_after_s": 0.5,
            "retry_after_s": 0.2, "max_attempts": 2,
            "window_start": "00:00", "window_end": "24:00"}


class Supervisor:
    """nadia: a REST client and a WebSocket stream that sees every event."""

    def __init__(self, settings: Settings) -> None:
        s = settings
        self.http = httpx.AsyncClient(base_url=f"http://{s.http.host}:{s.http.port}",
                                      timeout=10)
        self.ws_base = f"ws://{s.http.host}:{s.http.port}/api/v1/ws"
        self.token = ""
        self.stream: EventStream | None = None

    async def __aenter__(self) -> Supervisor:
        r = await self.http.post("/api/v1/login",
                                 json={"username": "nadia", "password": "demo-nadia"})
        r.raise_for_status()
        self.token = r.json()["token"]
        self.stream = EventStream(f"{self.ws_base}?token={self.token}")
        await self.stream.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.stream is not None:
            await self.stream.close()
        await self.http.aclose()

    async def requests(self) -> list[dict[str, Any]]:
        r = await self.http.get("/api/v1/plugins/callbacks/requests",
                                headers={"Authorization": f"Bearer {self.token}"})
        r.raise_for_status()
        return list(r.json())

    async def prompted(self, call_id: str, first: str | None = None,
                       node: str | None = None, timeout: float = 20) -> dict[str, Any]:
        """The first play to the call that starts with ``first`` (or of the IVR ``node``)."""
        assert self.stream is not None
        return await self.stream.wait_for(
            "ivr.prompt", timeout, call_id=call_id,
            where=lambda e: (first is None or e["data"]["prompts"][:1] == [first])
            and (node is None or e["data"].get("node") == node))


def _record(db: Path, call_id: str) -> dict[str, Any] | None:
    """The call's record once it has ended (the store file, as another reader sees it)."""
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        row = con.execute("SELECT * FROM calls WHERE call_id = ? AND ended_at IS NOT NULL",
                          (call_id,)).fetchone()
    finally:
        con.close()
    return None if row is None else dict(row)


async def _until_record(db: Path, call_id: str, timeout: float = 10) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        while (rec := _record(db, call_id)) is None:
            await asyncio.sleep(0.05)
        return rec

    return await asyncio.wait_for(poll(), timeout)


async def test_a_call_back_survives_a_killed_serve(tmp_path: Path, short_prompts: Path) -> None:
    write_tone(tmp_path / "caller.wav", 1000, 30)  # the advisor plays this
    write_tone(tmp_path / "team.wav", 440, 30)  # the PSTN phone plays this
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            Phone(name=NUMBER) as pstn:
        await register_pstn(carrier, pstn, NUMBER)
        plugins = demo_config_data()["plugins"] | {"callbacks": _quick_callbacks()}
        assert "crisis_line" in plugins
        settings = gateway_settings(
            tmp_path, plugins=plugins, trunks=[trunk(carrier)],
            prompts={"texts": str(REPO / "config" / "prompts.yaml"),
                     "cache_dir": str(REPO / "var" / "prompts"),
                     "override_dir": str(short_prompts)})
        db = settings.path(settings.store.path)
        edge = f"{settings.sip.ip}:{settings.sip.port}"

        # ---- the first run: the caller asks to be called back, nobody is free.
        async with _serve(tmp_path, settings) as served, Supervisor(settings) as nadia:
            assert nadia.stream is not None
            leg = uuid.uuid4().hex
            await pstn.command("dial", leg=leg, uri=f"sip:{HOTLINE}@{edge}")
            await pstn.wait_for("leg.state", leg=leg, state="confirmed", timeout=10)
            await pstn.wait_for("leg.media", leg=leg, active=True, timeout=10)
            incoming = await nadia.stream.wait_for(
                "call.incoming", where=lambda e: e["data"]["caller"]["number"] == NUMBER)
            call_id = incoming["call_id"]
            await nadia.prompted(call_id, node="lang")
            await pstn.command("send_dtmf", leg=leg, digits="2", method="rfc2833")  # English
            await nadia.prompted(call_id, node="topic")
            await pstn.command("send_dtmf", leg=leg, digits="2", method="rfc2833")  # visa
            queued = await nadia.stream.wait_for("call.queued", call_id=call_id)
            assert queued["data"]["topic"] == "visa"

            await nadia.prompted(call_id, "en/callbacks.offer")
            await pstn.command("send_dtmf", leg=leg, digits="1", method="rfc2833")
            readback = (await nadia.prompted(call_id, "en/callbacks.number_is"))["data"]
            digits = "".join(p.rsplit("_", 1)[-1] for p in readback["prompts"][1:-1])
            assert digits == "00" + NUMBER[1:]
            await pstn.command("send_dtmf", leg=leg, digits="1", method="rfc2833")
            await nadia.prompted(call_id, "en/callbacks.when")
            await pstn.command("send_dtmf", leg=leg, digits="1", method="rfc2833")  # asap
            await nadia.prompted(call_id, "en/callbacks.done")
            requested = await nadia.stream.wait_for("callback.requested", call_id=call_id)
            assert requested["data"]["when"] == "asap"
            ended = await nadia.stream.wait_for("call.ended", call_id=call_id)
            assert ended["data"]["reason"] == "callback_requested"
            await pstn.wait_for("leg.state", leg=leg, state="disconnected", timeout=10)
            [req] = await nadia.requests()
            assert (req["number"], req["origin_call_id"], req["status"]) == (
                NUMBER, call_id, "queued")
            # Nobody took it: no advisor logged in during this run.
            assert req["advisor"] is None and req["attempts"] == 0
            before = req
            original = await _until_record(db, call_id)
            assert original["end_reason"] == "callback_requested"

            # SIGKILL: no handler runs; every child goes with it (parent-death signal).
            children = _descendants(served.proc.pid)
            assert children
            served.proc.kill()
            assert await served.proc.wait() == -signal.SIGKILL
            await _until_gone(children, timeout=10)

        # ---- the second run, same config and store: the request is still pending.
        async with _serve(tmp_path, settings) as served, Supervisor(settings) as nadia:
            assert nadia.stream is not None
            [req] = await nadia.requests()
            assert (req["callback_id"], req["number"], req["origin_call_id"]) == (
                requested["data"]["callback_id"], NUMBER, call_id)
            assert req["status"] == "queued" and req["attempts"] == 0
            # Queued again in the caller's place in time, as a call of this run.
            assert req["enqueued_at"] == before["enqueued_at"] == original["queued_at"]
            cb_call = req["call_id"]
            assert cb_call and cb_call not in (call_id, before["call_id"])
            assert not carrier.invites

            # Sofia (Spanish and English, visa) becomes available only now.
            async with Advisor(cast(Any, SimpleNamespace(settings=settings)), "sofia") as sofia:
                await sofia.set_state("available")
                ring = await sofia.phone.wait_for("leg.incoming", timeout=20)
                assert ring["headers"]["x-cti-call-id"] == cb_call
                adv_leg = ring["leg"]
                assert not carrier.invites  # the advisor first
                await sofia.phone.command("answer", leg=adv_leg, code=200)
                await sofia.phone.wait_for("leg.state", leg=adv_leg, state="confirmed")

                # Then the caller's number, through the carrier: 407, then the same
                # INVITE with the trunk's credentials, from the edge.
                back = await pstn.wait_for("leg.incoming", timeout=20)
                challenged = await carrier.wait_for_invite(to=NUMBER, authenticated=False,
                                                           final=True)
                retry = await carrier.wait_for_invite(to=NUMBER, authenticated=True)
                assert challenged["status"] == 407
                assert challenged["call_id"] == retry["call_id"]
                assert retry["auth_user"] == TRUNK_USER and retry["kind"] == "trunk"
                assert retry["source"] == edge
                await pstn.command("answer", leg=back["leg"], code=200)
                await pstn.wait_for("leg.media", leg=back["leg"], active=True)
                await nadia.stream.wait_for("call.reached", call_id=cb_call)
                # The caller hears the plugin's greeting in their language, then is
                # bridged to the advisor when it has played.
                greeting = await nadia.prompted(cb_call, "en/callbacks.greeting")
                assert greeting["data"]["kind"] == "greeting"
                bridged = await nadia.stream.wait_for("call.bridged", call_id=cb_call)
                assert bridged["data"] == {"number": NUMBER, "greeted": True}

                heard_by_sofia, heard_by_pstn = await hear_each_other(
                    tmp_path, sofia.phone, adv_leg, pstn, back["leg"], "cb")
                assert tone_present(heard_by_sofia, 440, min_seconds=1.2), \
                    tone_seconds(heard_by_sofia, 440)
                assert tone_present(heard_by_pstn, 1000, min_seconds=1.2), \
                    tone_seconds(heard_by_pstn, 1000)

                await pstn.command("hangup", leg=back["leg"])
                await sofia.phone.wait_for("leg.state", leg=adv_leg, state="disconnected")
                await nadia.stream.wait_for("call.ended", call_id=cb_call)

            # The record: the call back is its own call, linked to the original one.
            record = await _until_record(db, cb_call)
            assert (record["kind"], record["origin_call_id"], record["advisor"],
                    record["caller_number"]) == ("callback", call_id, "sofia", NUMBER)
            original = await _until_record(db, call_id)
            assert original["end_reason"] == "callback_requested"
            assert original["kind"] == "inbound" and original["origin_call_id"] is None
            [req] = await nadia.requests()
            assert req["status"] not in ("queued", "scheduled"), req
            del served
