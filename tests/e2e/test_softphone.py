"""`cti softphone` headless: a real gateway, the textual app with its real child
phone, a real caller; the advisor works the call with the app's keys."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from cti.controller.gateway import Gateway
from cti.softphone.app import SoftphoneApp, StateScreen, TransferScreen, WrapUpScreen
from cti.softphone.client import SoftphoneClient, SoftphoneConfig
from tests.audio import tone_present, wait_file_final, wait_recorded, write_tone
from tests.e2e.gateway_harness import bus_event, call_hotline, running_gateway, until
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

SPANISH_CALLER = "+34911234567"
CALLER_TONE = 440.0


def softphone_for(gw: Gateway, user: str, tmp: Path) -> SoftphoneClient:
    s = gw.settings
    return SoftphoneClient(SoftphoneConfig(
        server=f"http://{s.http.host}:{s.http.port}", sip=f"{s.sip.ip}:{s.sip.port}",
        user=user, password=f"demo-{user}",  # the demo config's passwords
        log_dir=tmp / f"softphone-{user}", record_dir=tmp / "heard"))


def text(app: SoftphoneApp, selector: str) -> str:
    return str(app.screen_stack[0].query_one(selector, Static).content)


async def test_softphone_shows_the_pop_answers_hangs_up_and_wraps_up(tmp_path: Path) -> None:
    write_tone(tmp_path / "caller.wav", CALLER_TONE, 30)
    async with running_gateway(tmp_path) as gw:
        client = softphone_for(gw, "sofia", tmp_path)
        app = SoftphoneApp(client)
        try:
            async with app.run_test(size=(120, 40)) as pilot, \
                    Phone(name=SPANISH_CALLER) as caller:
                # The app starts its phone, registers to the edge, logs in, follows events.
                await client.wait_until(lambda s: s.registered and s.ws_connected, 30)
                assert "SIP: registered" in text(app, "#status")
                # Its audio: the sound card when there is one; this machine has none,
                # and the screen says so (the advisor would hear nothing).
                audio = client.state.audio
                assert audio.startswith(("sound device:", "null device")), audio
                assert f"audio: {audio}" in text(app, "#status")

                await pilot.press("s")
                await pilot.click("#available")
                await bus_event(gw, "agent.state", state="available")
                await client.wait_until(lambda s: s.advisor_state == "available")

                leg = await call_hotline(caller, gw, "32")  # Español, visa
                await client.wait_until(
                    lambda s: s.call is not None and s.call.status == "ringing", 30)
                call_id = client.state.call.call_id
                await pilot.pause()
                pop = text(app, "#pop")
                assert SPANISH_CALLER in pop and "(ES)" in pop, pop
                # Words from the gateway's labels (the config), not the codes.
                assert "Language:   Español" in pop, pop
                assert "Topic: Visa and entering the Netherlands" in pop, pop
                assert "Priority" not in pop, pop  # an ordinary caller (priority 0)
                assert "lang:es > topic:visa" in pop, pop
                offered = (await bus_event(gw, "call.offered"))["data"]
                local = datetime.fromisoformat(offered["caller"]["local_time"])
                assert f"Local time: {local:%H:%M} Europe/Madrid" in pop, pop
                assert "Earlier contacts: none" in pop, pop

                await pilot.press("a")
                connected = await bus_event(gw, "call.connected")
                assert connected["call_id"] == call_id
                assert connected["advisor"] == "sofia"
                await client.wait_until(
                    lambda s: s.call.status == "connected" and s.call.media, 15)
                await pilot.pause()
                assert "connected" in text(app, "#call")
                assert re.search(r"talk \d+ s", text(app, "#call")), text(app, "#call")

                # Audio: the caller's tone reaches the softphone's phone (it records it).
                await caller.command("play", leg=leg, file=str(tmp_path / "caller.wav"),
                                     loop=True, play_id="t")
                await client.wait_until(lambda s: client.recording_path(call_id) is not None)
                heard = client.recording_path(call_id)
                assert heard is not None
                await wait_recorded(heard, 2.5, timeout=20)

                await pilot.press("o")  # hold: the caller hears music
                await bus_event(gw, "call.held", on=True)
                await client.wait_until(lambda s: s.call.held)
                await pilot.pause()
                assert "on hold" in text(app, "#call")
                await pilot.press("o")
                await bus_event(gw, "call.held", on=False)
                await client.wait_until(lambda s: not s.call.held)

                await pilot.press("h")
                await caller.wait_for("leg.state", leg=leg, state="disconnected", timeout=15)
                ended = await bus_event(gw, "call.ended")
                assert ended["call_id"] == call_id
                assert ended["data"]["reason"] in ("advisor_hangup", "hangup_by_advisor")
                await client.wait_until(lambda s: s.call.status == "ended")
                await pilot.pause()
                assert re.search(r"ended: Advisor (hung up|ended the call)", text(app, "#call")), \
                    text(app, "#call")
                await wait_file_final(heard)
                assert tone_present(heard, CALLER_TONE, min_seconds=1.5)

                await wrap_up_with_keys(gw, app, pilot, client, call_id)
        finally:
            await client.aclose()
            print("\n".join(client.state.messages))  # shown when the test fails
        assert not client.phone.alive


async def wrap_up_with_keys(gw: Gateway, app: SoftphoneApp, pilot: Pilot, client: SoftphoneClient,
                            call_id: str) -> None:
    """w, pick the second code, type a note, Enter: stored for the call."""
    codes = (await client.http.get("/api/v1/wrap-up-codes")).json()
    assert len(codes) >= 2, codes
    await pilot.press("w")
    await until(lambda: isinstance(app.screen, WrapUpScreen))  # opens once codes are loaded
    await pilot.pause()
    await pilot.press("down", "enter")  # the second code; Enter moves to the note
    await pilot.press(*"called back tomorrow")
    await pilot.press("enter")
    wrap = await bus_event(gw, "call.wrap_up")
    assert wrap["call_id"] == call_id
    assert wrap["data"]["code"] == codes[1]["code"]
    assert wrap["data"]["note"] == "called back tomorrow"
    await client.wait_until(lambda s: s.call.wrap_up is not None)
    assert gw.store.wrap_up(call_id)["code"] == codes[1]["code"]


async def test_softphone_reconnects_with_its_last_seq_and_misses_nothing(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        client = softphone_for(gw, "dalia", tmp_path)
        app = SoftphoneApp(client)
        try:
            async with app.run_test(size=(120, 40)) as pilot:
                await client.wait_until(lambda s: s.registered and s.ws_connected, 30)
                await pilot.press("s")
                await pilot.click("#available")
                seen = await bus_event(gw, "agent.state", state="available")
                await client.wait_until(lambda s: s.last_seq >= seen["seq"])

                await pilot.press("e")  # the events connection drops
                await client.wait_until(lambda s: not s.ws_connected)
                since = client.state.last_seq
                # While it is down: away for a break, through the state dialog (REST).
                await pilot.press("s")
                await until(lambda: isinstance(app.screen, StateScreen))
                await pilot.click("#reason")
                await pilot.press(*"break")
                await pilot.click("#away")
                away = await bus_event(gw, "agent.state", state="away")
                assert away["data"]["reason"] == "break"

                await client.wait_until(lambda s: s.ws_connected and s.last_seq >= away["seq"])
                assert client.connections == [None, since]  # resumed from its last seq
                assert client.state.advisor_state == "away"
                assert client.state.advisor_reason == "break"
                applied = [m for m in client.state.messages if "agent.state" in m and "away" in m]
                assert len(applied) == 1, applied  # applied exactly once
                await pilot.pause()
                assert "state: Away (Break)" in text(app, "#status")
        finally:
            await client.aclose()
            print("\n".join(client.state.messages))  # shown when the test fails
        assert not client.phone.alive


async def test_softphone_consult_transfer_to_the_crisis_team(tmp_path: Path) -> None:
    """t: consult the crisis team from the directory; the softphone takes the consult
    leg itself; c completes: the caller talks to the team, sofia wraps up."""
    async with Phone(name="crisis") as team, \
            running_gateway(tmp_path, routing__wrap_up_s=120, directory=[
                {"key": "crisis_team", "name": "Crisis team", "number": "+31703480000",
                 "uri": team.uri("crisis")}]) as gw:
        client = softphone_for(gw, "sofia", tmp_path)
        app = SoftphoneApp(client)
        try:
            async with app.run_test(size=(120, 40)) as pilot, \
                    Phone(name=SPANISH_CALLER) as caller:
                await client.wait_until(lambda s: s.registered and s.ws_connected, 30)
                await client.set_state("available")
                await call_hotline(caller, gw, "32")
                await client.wait_until(
                    lambda s: s.call is not None and s.call.status == "ringing", 30)
                call_id = client.state.call.call_id
                await pilot.press("a")
                await client.wait_until(lambda s: s.call.status == "connected", 15)

                await pilot.press("t")
                await until(lambda: isinstance(app.screen, TransferScreen))
                await pilot.click("#kind-consult")
                # the first directory entry (inside the border): the crisis team, external
                await pilot.click("#directory", offset=(2, 1))
                target = app.screen.query_one("#target", Input)
                await until(lambda: target.value == "crisis_team")
                await pilot.press("enter")
                ringing = await bus_event(gw, "call.consult", state="ringing")
                assert (ringing["call_id"], ringing["data"]["target"]) == (call_id, "crisis_team")
                assert ringing["data"]["target_type"] == "external"
                assert ringing["data"]["by"] == "sofia"

                # The consult rings sofia's phone a second time: the softphone answers it.
                await client.wait_until(lambda s: s.call.consult_leg is not None)
                team_in = await team.wait_for("leg.incoming", timeout=15)
                await team.command("answer", leg=team_in["leg"], code=200)
                await bus_event(gw, "call.consult", state="talking")
                await client.wait_until(lambda s: "consult talking" in s.call.detail)

                await pilot.press("c")
                done = await bus_event(gw, "call.transferred")
                assert done["call_id"] == call_id
                await bus_event(gw, "agent.state", state="wrap_up")
                await client.wait_until(lambda s: s.advisor_state == "wrap_up"
                                        and s.call.leg is None and s.call.consult_leg is None)
                await pilot.pause()
                assert "state: Wrapping up" in text(app, "#status")
                await wrap_up_with_keys(gw, app, pilot, client, call_id)
                await bus_event(gw, "agent.state", state="available")
        finally:
            await client.aclose()
            print("\n".join(client.state.messages))  # shown when the test fails
        assert not client.phone.alive
