"""The CTI WebSocket with real calls: lossless reconnect (acceptance 2), heartbeats,
commands; and the REST figures of a real call: /metrics, queue stats, records,
history, wrap-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from cti.events import visible_to
from tests.e2e.gateway_harness import (
    Advisor,
    EventStream,
    bus_event,
    call_hotline,
    running_gateway,
    until,
)
from tests.event_schema import message_validator
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

SPANISH_CALLER = "+34911234567"


def ws_url(gw: Any, token: str, since: int | None = None) -> str:
    s = gw.settings
    return (f"ws://{s.http.host}:{s.http.port}/api/v1/ws?token={token}"
            + (f"&since={since}" if since is not None else ""))


async def test_a_client_disconnected_during_a_call_gets_every_missed_event_once(
        tmp_path: Path) -> None:
    async with running_gateway(tmp_path, http__ws_heartbeat_s=0.5) as gw, \
            Advisor(gw, "sofia") as sofia, Phone(name=SPANISH_CALLER) as caller:
        assert sofia.stream is not None
        await sofia.set_state("available")
        leg = await call_hotline(caller, gw, "32")
        offered = await sofia.stream.wait_for("call.offered", timeout=20)
        call_id = offered["call_id"]
        # The client has everything up to the screen pop, then loses its connection.
        await sofia.stream.close()
        last_seq = max(e["seq"] for e in sofia.stream.events if "seq" in e)
        assert last_seq >= offered["seq"]

        # Away: the call is answered, talked and ended.
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=10)
        await sofia.phone.command("answer", leg=incoming["leg"], code=200)
        await bus_event(gw, "call.connected")
        await caller.command("hangup", leg=leg)
        await bus_event(gw, "call.ended", reason="caller_hangup")
        await until(lambda: gw.flow.distributor.advisor_state("sofia").value == "available")
        missed = [e["seq"] for e in gw.bus.since(last_seq) if visible_to(e, "sofia", "advisor")]
        missed_types = [e["type"] for e in gw.bus.since(last_seq) if e["seq"] in missed]
        assert {"call.connected", "call.ended", "agent.state"} <= set(missed_types)

        # Back: every missed event, in order, exactly once, then live events.
        again = EventStream(ws_url(gw, sofia.token, since=last_seq))
        hello = await again.connect()
        assert hello["replay_complete"] is True
        assert not list(message_validator("hello").iter_errors(hello))
        await sofia.set_state("away")  # a live event after the replay
        live = await again.wait_for("agent.state", state="away")
        await again.wait_for("heartbeat", timeout=10)
        await again.close()
        events = [e for e in again.events if "seq" in e]
        seqs = [e["seq"] for e in events]
        assert seqs[:len(missed)] == missed, (seqs, missed)
        assert seqs == sorted(set(seqs)), "out of order or twice"
        assert live["seq"] in seqs[len(missed):]
        assert all(e["call_id"] == call_id for e in events if e["type"].startswith("call."))
        for beat in (m for m in again.events if m.get("type") == "heartbeat"):
            assert not list(message_validator("heartbeat").iter_errors(beat))

        # Resuming from a heartbeat's last_seq loses nothing and repeats nothing.
        beat = [m for m in again.events if m.get("type") == "heartbeat"][-1]
        third = EventStream(ws_url(gw, sofia.token, since=beat["last_seq"]))
        await third.connect()
        await sofia.set_state("available")
        await third.wait_for("agent.state", state="available")
        await third.close()
        third_seqs = [e["seq"] for e in third.events if "seq" in e]
        assert third_seqs and min(third_seqs) > max(seqs)


async def send_cmd(ws: Any, id_: int, cmd: str, **args: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"id": id_, "cmd": cmd, **args}))
    while True:
        msg = json.loads(await ws.recv())
        if msg.get("type") == "reply":
            assert msg["id"] == id_
            assert not list(message_validator("reply").iter_errors(msg)), msg
            return msg


def metric(text: str, name: str) -> float:
    """The value of one sample line (`name{labels} value`) of a /metrics page."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


async def test_a_real_call_in_metrics_stats_commands_wrap_up_history_and_records(
        tmp_path: Path) -> None:
    async with running_gateway(tmp_path, routing__wrap_up_s=120) as gw, \
            Advisor(gw, "sofia") as sofia, Advisor(gw, "michel") as michel, \
            Phone(name=SPANISH_CALLER) as caller:
        base = f"http://{gw.settings.http.host}:{gw.settings.http.port}"
        http = httpx.AsyncClient(base_url=base)
        r = await http.post("/api/v1/login", json={"username": "nadia",
                                                   "password": "demo-nadia"})
        nadia = {"Authorization": f"Bearer {r.json()['token']}"}
        as_sofia = {"Authorization": f"Bearer {sofia.token}"}
        try:
            # The caller waits: nobody for Spanish visa is available yet.
            leg = await call_hotline(caller, gw, "32")
            queued = await bus_event(gw, "call.queued", language="es", topic="visa")
            call_id = queued["call_id"]
            page = (await http.get("/metrics")).text
            assert metric(page, 'cti_queue_waiting{language="es",topic="visa"}') == 1
            assert metric(page, 'cti_calls{state="queued"}') == 1
            assert metric(page, 'cti_worker_up{worker="w1"}') == 1
            assert metric(page, 'cti_worker_restarts_total{worker="w1"}') == 0
            stats = (await http.get("/api/v1/stats/queues", headers=nadia)).json()
            assert stats["waiting"] == 1
            assert stats["queues"][0]["language"] == "es" and stats["advisors"]["logged_out"] == 4

            # Sofia answers.
            await sofia.set_state("available")
            incoming = await sofia.phone.wait_for("leg.incoming", timeout=20)
            await sofia.phone.command("answer", leg=incoming["leg"], code=200)
            await sofia.stream.wait_for("call.connected", call_id=call_id)
            page = (await http.get("/metrics")).text
            assert metric(page, 'cti_calls{state="connected"}') == 1
            assert metric(page, 'cti_advisors{state="on_call"}') == 1
            assert metric(page, "cti_offers_total") == 1
            assert metric(page, 'cti_offer_outcomes_total{outcome="accepted"}') == 1
            assert metric(page, "cti_no_answers_total") == 0

            # Hold and take back over the WebSocket.
            async with websockets.connect(ws_url(gw, sofia.token)) as ws:
                await ws.recv()
                assert (await send_cmd(ws, 1, "hold", call_id=call_id, on=True))["ok"]
                await sofia.stream.wait_for("call.held", on=True)
                assert (await send_cmd(ws, 2, "hold", call_id=call_id, on=False))["ok"]
                await sofia.stream.wait_for("call.held", on=False)
                bad = await send_cmd(ws, 3, "transfer", call_id=call_id, kind="blind",
                                     target_type="queue", target="nowhere")
                assert bad["ok"] is False and "nowhere" in bad["error"]

            await caller.command("hangup", leg=leg)
            await sofia.stream.wait_for("call.ended", call_id=call_id)
            await sofia.stream.wait_for("agent.state", state="wrap_up")

            # Wrap-up: the code must be one of the config's.
            codes = (await http.get("/api/v1/wrap-up-codes", headers=as_sofia)).json()
            assert {"code": "info_given", "label": "Information given"} in codes
            r = await http.post(f"/api/v1/calls/{call_id}/wrap-up", headers=as_sofia,
                                json={"code": "nonsense", "note": ""})
            assert r.status_code == 422 and "info_given" in r.json()["detail"]
            r = await http.post(f"/api/v1/calls/{call_id}/wrap-up", headers=as_sofia,
                                json={"code": "info_given", "note": "visa form sent"})
            assert r.status_code == 200, r.text
            await sofia.stream.wait_for("call.wrap_up", code="info_given")
            await sofia.stream.wait_for("agent.state", state="available")

            history = (await http.get("/api/v1/agents/me/history", headers=as_sofia)).json()
            assert [(h["call_id"], h["wrap_up_code"], h["wrap_up_note"]) for h in history] == [
                (call_id, "info_given", "visa form sent")]
            assert (await http.get("/api/v1/agents/me/history",
                                   headers=nadia)).status_code == 403

            found = (await http.get("/api/v1/records", headers=nadia,
                                    params={"number": SPANISH_CALLER, "topic": "visa"})).json()
            assert [f["call_id"] for f in found] == [call_id]
            assert found[0]["advisor"] == "sofia" and found[0]["end_reason"] == "caller_hangup"
            assert (await http.get("/api/v1/records", headers=nadia,
                                   params={"topic": "passport"})).json() == []
            assert (await http.get("/api/v1/records", headers=nadia,
                                   params={"since": "2999-01-01"})).json() == []
            assert (await http.get("/api/v1/records", headers=nadia,
                                   params={"since": "yesterday"})).status_code == 422
            mine = {"Authorization": f"Bearer {michel.token}"}
            assert (await http.get("/api/v1/records", headers=mine)).json() == []

            stats = (await http.get("/api/v1/stats/queues", headers=nadia)).json()
            assert stats["waiting"] == 0
            today = stats["today"]
            assert (today["answered"], today["abandoned"]) == (1, 0)
            assert today["service_level"] == 1.0 and today["service_level_s"] == 20

            # Away needs a configured reason.
            r = await http.post("/api/v1/agents/me/state", headers=as_sofia,
                                json={"state": "away", "reason": "nap"})
            assert r.status_code == 422 and "lunch" in r.json()["detail"]
            r = await http.post("/api/v1/agents/me/state", headers=as_sofia,
                                json={"state": "away", "reason": "lunch"})
            assert r.status_code == 200 and r.json()["state"] == "away"
            await sofia.stream.wait_for("agent.state", state="away", reason="lunch")

            directory = (await http.get("/api/v1/directory", headers=as_sofia)).json()
            assert {d["key"] for d in directory} >= {"crisis_team", "embassy_es"}
        finally:
            await http.aclose()


async def test_login_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, http__login_attempts_per_minute=3) as gw:
        base = f"http://{gw.settings.http.host}:{gw.settings.http.port}"
        async with httpx.AsyncClient(base_url=base) as http:
            for _ in range(3):
                r = await http.post("/api/v1/login", json={"username": "emre",
                                                           "password": "guess"})
                assert r.status_code == 401
            r = await http.post("/api/v1/login", json={"username": "emre",
                                                       "password": "demo-emre"})
            assert r.status_code == 429
            assert 1 <= int(r.headers["Retry-After"]) <= 60
