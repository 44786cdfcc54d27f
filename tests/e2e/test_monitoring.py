"""Live monitoring with real calls (issue 13, acceptance 4): a supervisor listens
(hears both sides, heard by nobody), whispers (only the advisor hears), barges (both
hear); tone checks on every phone, each use in the audit. Also the refusals (an
advisor: 403, a full media worker, a phone not registered) and the monitor's ends
(a busy phone, the supervisor hanging up, the call ending): the call goes on."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cti.controller.gateway import Gateway
from cti.controller.monitor import NO_FREE_LINE
from tests.audio import tone_level, wait_file_final, wait_recorded, write_tone
from tests.e2e.gateway_harness import (
    Advisor,
    bus_event,
    call_hotline,
    running_gateway,
    until,
)
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

CALLER, ADVISOR, SUPERVISOR = 440.0, 1000.0, 620.0  # no one a harmonic of another
HEARD = 1500.0  # 16-bit RMS of a tone heard (played at ~6950)
UNHEARD = 300.0  # and of one not heard (codec noise, stale jitter buffer)


@dataclass
class Floor:
    gw: Gateway
    sofia: Advisor
    nadia: Advisor
    caller: Phone
    caller_leg: str
    sofia_leg: str
    call_id: str

    def auth(self, who: Advisor) -> dict[str, str]:
        return {"Authorization": f"Bearer {who.token}"}

    async def monitor(self, method: str, who: Advisor | None = None,
                      mode: str | None = None) -> httpx.Response:
        who = who or self.nadia
        return await who.http.request(
            method, f"/api/v1/calls/{self.call_id}/monitor", headers=self.auth(who),
            json=None if mode is None else {"mode": mode})


@contextlib.asynccontextmanager
async def talking(tmp: Path, workers: int = 1) -> AsyncIterator[Floor]:
    """sofia talks to a Spanish caller, both playing their tone; nadia (supervisor) has
    a registered phone."""
    for name, freq in (("caller", CALLER), ("advisor", ADVISOR), ("supervisor", SUPERVISOR)):
        write_tone(tmp / f"{name}.wav", freq, 60)
    async with running_gateway(tmp, workers=workers) as gw, Advisor(gw, "sofia") as sofia, \
            Advisor(gw, "nadia") as nadia, Phone(name="+34911234567") as caller:
        await sofia.set_state("available")
        leg = await call_hotline(caller, gw, "32")
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=20)
        await sofia.phone.command("answer", leg=incoming["leg"], code=200)
        connected = await sofia.stream.wait_for("call.connected")
        await sofia.phone.wait_for("leg.media", leg=incoming["leg"], active=True)
        for phone, leg_id, wav in ((caller, leg, "caller"), (sofia.phone, incoming["leg"],
                                                              "advisor")):
            await phone.command("play", leg=leg_id, file=str(tmp / f"{wav}.wav"), loop=True,
                                play_id="tone")
        yield Floor(gw, sofia, nadia, caller, leg, incoming["leg"], connected["call_id"])


async def answer_monitor(nadia: Advisor, call_id: str, mode: str, tmp: Path) -> str:
    """nadia's phone rings for the monitor: answer it, play her tone."""
    incoming = await nadia.phone.wait_for("leg.incoming", timeout=15)
    assert incoming["headers"]["x-cti-call-id"] == call_id
    assert incoming["headers"]["x-cti-monitor"] == mode
    await nadia.phone.command("answer", leg=incoming["leg"], code=200)
    await nadia.phone.wait_for("leg.media", leg=incoming["leg"], active=True)
    await nadia.phone.command("play", leg=incoming["leg"], file=str(tmp / "supervisor.wav"),
                              loop=True, play_id="tone")
    return str(incoming["leg"])


async def heard(tmp: Path, name: str, *phones: tuple[Phone, str]) -> list[Path]:
    """What each (phone, leg) hears, 1.5 s of it, recorded at the same time."""
    files = [tmp / f"{name}-{i}.wav" for i in range(len(phones))]
    for (phone, leg), f in zip(phones, files, strict=True):
        await phone.command("record_start", leg=leg, file=str(f))
    for f in files:
        await wait_recorded(f, 1.5)
    for (phone, leg), f in zip(phones, files, strict=True):
        await phone.command("record_stop", leg=leg)
        await wait_file_final(f)
    return files


def levels(path: Path) -> dict[str, float]:
    return {name: round(tone_level(path, f)) for name, f in
            (("caller", CALLER), ("advisor", ADVISOR), ("supervisor", SUPERVISOR))}


def hears(path: Path, *who: str) -> None:
    """The recording holds exactly the tones of ``who`` (of caller, advisor, supervisor)."""
    lv = levels(path)
    for name, level in lv.items():
        if name in who:
            assert level > HEARD, f"{path.name}: {name} not heard: {lv}"
        else:
            assert level < UNHEARD, f"{path.name}: {name} heard: {lv}"


async def test_listen_then_whisper_then_barge_each_audited(tmp_path: Path) -> None:
    async with talking(tmp_path) as f:
        r = await f.monitor("POST", mode="listen")
        assert r.status_code == 200, r.text
        assert r.json() == {"mode": "listen", "state": "ringing"}
        nadia_leg = await answer_monitor(f.nadia, f.call_id, "listen", tmp_path)
        await f.nadia.stream.wait_for("call.monitor", state="active", mode="listen")
        calls = (await f.nadia.http.get("/api/v1/calls", headers=f.auth(f.nadia))).json()
        assert calls[0]["monitors"] == [{"by": "nadia", "mode": "listen", "state": "active"}]
        parties = ((f.caller, f.caller_leg), (f.sofia.phone, f.sofia_leg),
                   (f.nadia.phone, nadia_leg))

        # listen: nadia hears both; neither hears her.
        caller, sofia, nadia = await heard(tmp_path, "listen", *parties)
        hears(caller, "advisor")
        hears(sofia, "caller")
        hears(nadia, "caller", "advisor")

        # whisper (PATCH): only sofia hears nadia.
        r = await f.monitor("PATCH", mode="whisper")
        assert r.json() == {"mode": "whisper", "state": "active"}, r.text
        caller, sofia, nadia = await heard(tmp_path, "whisper", *parties)
        hears(caller, "advisor")
        hears(sofia, "caller", "supervisor")
        hears(nadia, "caller", "advisor")

        # barge (the same POST again): both hear her.
        r = await f.monitor("POST", mode="barge")
        assert r.json() == {"mode": "barge", "state": "active"}, r.text
        caller, sofia, nadia = await heard(tmp_path, "barge", *parties)
        hears(caller, "advisor", "supervisor")
        hears(sofia, "caller", "supervisor")
        hears(nadia, "caller", "advisor")

        # DELETE: nadia's phone is hung up; the call goes on as before.
        r = await f.monitor("DELETE")
        assert r.json() == {"ok": True}, r.text
        await f.nadia.phone.wait_for("leg.state", leg=nadia_leg, state="disconnected")
        ended = await f.nadia.stream.wait_for("call.monitor", state="ended")
        assert ended["data"]["reason"] == "stopped" and ended["call_id"] == f.call_id
        caller, sofia = await heard(tmp_path, "after", *parties[:2])
        hears(caller, "advisor")
        hears(sofia, "caller")
        assert f.gw.flow.calls.get(f.call_id).state == "connected"

        # Every use is in the audit, oldest first here.
        r = await f.nadia.http.get("/api/v1/audit", params={"action": "monitor."},
                                   headers=f.auth(f.nadia))
        lines = list(reversed(r.json()))
        assert [(x["action"], x["who"], x["details"]["mode"]) for x in lines] == [
            ("monitor.start", "nadia", "listen"), ("monitor.mode", "nadia", "whisper"),
            ("monitor.mode", "nadia", "barge"), ("monitor.end", "nadia", "barge")]
        assert all(x["details"]["call_id"] == f.call_id for x in lines)
        assert lines[0]["details"]["advisor"] == "sofia"
        assert lines[-1]["details"]["reason"] == "stopped"
        assert lines[0]["address"] == "127.0.0.1"
        # A silent listen is not announced to the advisor.
        assert not [e for e in f.sofia.stream.events if e.get("type") == "call.monitor"]


async def test_refused_for_an_advisor_a_full_worker_and_a_phone_not_registered(
        tmp_path: Path) -> None:
    async with talking(tmp_path, workers=1) as f, Phone(name="+34911000001") as second:
        # An advisor may not monitor (a colleague's call or any other).
        r = await f.monitor("POST", who=f.sofia, mode="listen")
        assert r.status_code == 403, r.text
        # A second caller on the one worker keeps a line for their advisor: the 4
        # lines are taken (2 + 2), so no monitor leg fits; the bridge is in this
        # process, so it cannot go elsewhere.
        second_leg = await call_hotline(second, f.gw)
        await until(lambda: f.gw.flow._free_calls(f.gw.flow.calls.get(f.call_id).worker) == 0)
        r = await f.monitor("POST", mode="listen")
        assert r.status_code == 409 and r.json()["detail"] == NO_FREE_LINE, r.text
        assert f.nadia.phone.received("leg.incoming") == []
        await second.command("hangup", leg=second_leg)
        await bus_event(f.gw, "call.ended", reason="caller_abandoned")
        # A coach may monitor, but ines has no phone registered: said at once.
        async with httpx.AsyncClient(base_url=str(f.nadia.http.base_url)) as http:
            login = await http.post("/api/v1/login",
                                    json={"username": "ines", "password": "demo-ines"})
            token = login.json()["token"]
            r = await http.post(f"/api/v1/calls/{f.call_id}/monitor", json={"mode": "listen"},
                                headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 409, r.text
        assert r.json()["detail"].startswith("ines's phone is not registered")
        # Nothing was started, and the call is untouched.
        assert f.gw.flow.calls.get(f.call_id).state == "connected"
        assert f.gw.store.audit.lines("monitor.") == []


async def test_a_busy_phone_a_hang_up_or_the_call_end_end_the_monitor_not_the_call(tmp_path: Path) -> None:
    async with talking(tmp_path) as f:
        r = await f.monitor("POST", mode="listen")
        assert r.status_code == 200, r.text
        # The monitor takes the worker's third line: with one left, no new caller
        # (who needs two) is sent there until it ends.
        worker = f.gw.flow.calls.get(f.call_id).worker
        assert f.gw.flow._out_of_rotation == {worker}
        incoming = await f.nadia.phone.wait_for("leg.incoming", timeout=15)
        await f.nadia.phone.command("hangup", leg=incoming["leg"], code=486)
        ended = await f.nadia.stream.wait_for("call.monitor", state="ended")
        assert ended["data"]["reason"] == "failed" and "486" in ended["data"]["error"]
        await until(lambda: not f.gw.flow._out_of_rotation)
        caller, sofia = await heard(tmp_path, "busy", (f.caller, f.caller_leg),
                                    (f.sofia.phone, f.sofia_leg))
        hears(caller, "advisor")
        hears(sofia, "caller")
        await until(lambda: bool(f.gw.store.audit.lines("monitor.end")))
        assert f.gw.store.audit.lines("monitor.end")[0].details["reason"] == "failed"

        # Answered, then the supervisor hangs up her phone: the monitor ends, the call
        # goes on.
        r = await f.monitor("POST", mode="whisper")
        assert r.status_code == 200, r.text
        nadia_leg = await answer_monitor(f.nadia, f.call_id, "whisper", tmp_path)
        await f.nadia.stream.wait_for("call.monitor", state="active", mode="whisper")
        await f.nadia.phone.command("hangup", leg=nadia_leg)
        await f.nadia.stream.wait_for(
            "call.monitor", where=lambda e: e["data"].get("reason") == "hung_up")
        caller, sofia = await heard(tmp_path, "hung-up", (f.caller, f.caller_leg),
                                    (f.sofia.phone, f.sofia_leg))
        hears(caller, "advisor")
        hears(sofia, "caller")

        # Monitoring again, answered; the caller hangs up: the monitor ends with the call.
        r = await f.monitor("POST", mode="barge")
        assert r.status_code == 200, r.text
        nadia_leg = await answer_monitor(f.nadia, f.call_id, "barge", tmp_path)
        await f.nadia.stream.wait_for("call.monitor", state="active", mode="barge")
        await f.caller.command("hangup", leg=f.caller_leg)
        await f.nadia.phone.wait_for("leg.state", leg=nadia_leg, state="disconnected")
        await f.nadia.stream.wait_for(
            "call.monitor", where=lambda e: e["data"].get("reason") == "call_ended")
        await f.sofia.phone.wait_for("leg.state", leg=f.sofia_leg, state="disconnected")
        await until(lambda: len(f.gw.store.audit.lines("monitor.end")) == 3)
        reasons = [x.details["reason"] for x in f.gw.store.audit.lines("monitor.end")]
        assert reasons == ["call_ended", "hung_up", "failed"]  # newest first
