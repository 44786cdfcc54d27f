"""The carrier trunk (issue 10): call backs out through a real carrier, refusals at
the edge, hotline calls in from the carrier.

Two Kamailio instances: the gateway's edge and the test carrier
(tests/peers/carrier.py), with pjsua2 phones as advisors and PSTN numbers.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.audio import tone_present, tone_seconds, write_tone
from tests.e2e.gateway_harness import (
    HOTLINE,
    Advisor,
    bus_event,
    hear_each_other,
    hotline_uri,
    running_gateway,
    until,
)
from tests.peers.carrier import Carrier
from tests.peers.phone import Phone
from tests.peers.rawsip import SDP, Dialog, SipUA, new_branch, new_tag

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

NUMBER = "+442071234567"  # a PSTN phone registered at the carrier
CALLER_ID = "+31247247247"  # what the callee sees: the hotline number
TRUNK_USER, TRUNK_PASSWORD = "cti", "s3cret"


def trunk(carrier: Carrier, **over: Any) -> dict[str, Any]:
    t = {"name": "carrier", "address": f"{carrier.ip}:{carrier.port}", "transport": "udp",
         "username": TRUNK_USER, "password": TRUNK_PASSWORD, "realm": carrier.realm,
         "caller_id": CALLER_ID, "asserted_identity": CALLER_ID,
         "allowed_prefixes": ["+31", "+44", "+34"], "max_calls": 2}
    return t | over


async def register_pstn(carrier: Carrier, phone: Phone, number: str = NUMBER) -> None:
    await phone.command("register", user=number, password=carrier.phone_password(number),
                        registrar=carrier.registrar_uri, transport="udp", expires=60)
    await phone.wait_for("reg.state", code=200)
    assert await carrier.registered(number)


async def test_call_back_goes_out_through_the_carrier(tmp_path: Path) -> None:
    write_tone(tmp_path / "caller.wav", 440, 30)
    write_tone(tmp_path / "team.wav", 1000, 30)
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            running_gateway(tmp_path, trunks=[trunk(carrier)]) as gw, \
            Phone(name="pstn") as pstn, Advisor(gw, "sofia") as sofia:
        await register_pstn(carrier, pstn)
        call_id = gw.flow.callbacks.callback(NUMBER, language="es", topic="visa")
        await sofia.set_state("available")

        # The advisor's phone rings first; the number is dialled once they answer.
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=20)
        adv_leg = incoming["leg"]
        assert not carrier.invites
        await sofia.phone.command("answer", leg=adv_leg, code=200)
        answered = await sofia.phone.wait_for("leg.state", leg=adv_leg, state="confirmed")

        ring = await pstn.wait_for("leg.incoming", timeout=20)
        # The order is behaviour; the time between is a benchmark (docs/benchmarks.md,
        # printed with -s), never asserted.
        assert ring["ts"] >= answered["ts"]
        print(f"\nadvisor answer -> callee ring: "
              f"{(ring['ts'] - answered['ts']) * 1000:.0f} ms")
        # The carrier challenged the edge (407) and the edge answered with the
        # trunk's credentials: the same INVITE, authenticated, relayed to the phone.
        challenged = await carrier.wait_for_invite(to=NUMBER, authenticated=False, final=True)
        retry = await carrier.wait_for_invite(to=NUMBER, authenticated=True)
        assert challenged["status"] == 407 and challenged["call_id"] == retry["call_id"]
        assert retry["auth_user"] == TRUNK_USER and retry["kind"] == "trunk"
        assert retry["target"] == "phone"
        # Presented as the hotline, from the edge; no X-CTI-* header leaves the edge.
        assert retry["from"] == CALLER_ID
        assert retry["source"] == f"{gw.settings.sip.ip}:{gw.settings.sip.port}"
        assert f"sip:{CALLER_ID}@" in ring["from"]
        assert CALLER_ID in ring["headers"]["p-asserted-identity"]
        assert not [h for h in ring["headers"] if h.startswith("x-cti-")]

        await pstn.command("answer", leg=ring["leg"], code=200)
        await pstn.wait_for("leg.media", leg=ring["leg"], active=True)
        reached = await bus_event(gw, "call.reached")
        assert reached["call_id"] == call_id
        assert reached["data"]["number"] == NUMBER
        bridged = await bus_event(gw, "call.bridged")  # no greeting: at once
        assert (bridged["call_id"], bridged["data"]) == (call_id, {"number": NUMBER,
                                                                   "greeted": False})
        await until(lambda: retry["status"] is not None)
        assert retry["status"] == 200

        heard_by_sofia, heard_by_pstn = await hear_each_other(
            tmp_path, sofia.phone, adv_leg, pstn, ring["leg"], "cb")
        assert tone_present(heard_by_sofia, 1000, min_seconds=1.2), \
            tone_seconds(heard_by_sofia, 1000)
        assert tone_present(heard_by_pstn, 440, min_seconds=1.2), \
            tone_seconds(heard_by_pstn, 440)

        # The callee hangs up: the BYE passes the carrier and the edge.
        await pstn.command("hangup", leg=ring["leg"])
        await sofia.phone.wait_for("leg.state", leg=adv_leg, state="disconnected")
        assert (await bus_event(gw, "call.ended"))["call_id"] == call_id
        assert [b["call_id"] for b in carrier.in_dialog if b["method"] == "BYE"] == \
            [retry["call_id"]]
        await until(lambda: _record(gw, call_id) is not None)
        assert _record(gw, call_id) == ("callback", "sofia", NUMBER)
        assert len(carrier.invites) == 2


def _record(gw: Any, call_id: str) -> tuple[str, str, str] | None:
    row = sqlite3.connect(gw.store.path).execute(
        "SELECT kind, advisor, caller_number FROM calls WHERE call_id = ? AND ended_at "
        "IS NOT NULL", (call_id,)).fetchone()
    return None if row is None else tuple(row)  # type: ignore[return-value]


def _invite(ua: SipUA, ruri: str, extra: list[str]) -> int:
    """A raw INVITE with extra headers; its final status."""
    call_id = uuid.uuid4().hex
    from_hdr = f"<sip:+34911234567@{ua.host}:{ua.port}>;tag={new_tag()}"
    ua.send(ua.request("INVITE", ruri, call_id=call_id, cseq=1, from_hdr=from_hdr,
                       to_hdr=f"<{ruri}>", branch=new_branch(), extra=extra,
                       body=SDP))
    return ua.final_response(call_id, "INVITE", 5).status


async def test_refusals_at_the_edge(tmp_path: Path) -> None:
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            running_gateway(tmp_path, trunks=[trunk(carrier, max_calls=1, realm=None)]) as gw, \
            Phone(name="pstn") as pstn:
        await register_pstn(carrier, pstn)
        edge = (gw.settings.sip.ip, gw.settings.sip.port)

        # Outside the allowed prefixes: 403 at the edge, the carrier never sees it.
        async with Advisor(gw, "sofia") as sofia:
            gw.flow.callbacks.callback("+12125550100", language="es", topic="visa")
            await sofia.set_state("available")
            inc = await sofia.phone.wait_for("leg.incoming", timeout=20)
            await sofia.phone.command("answer", leg=inc["leg"], code=200)
            await sofia.phone.wait_for("leg.state", leg=inc["leg"], state="disconnected",
                                       timeout=20)
        assert carrier.invites == []

        # Outside callers (a raw SIP client) cannot reach the trunk, whatever they
        # write: a number to the edge, X-CTI-* headers, a Route to the carrier.
        with SipUA(edge, user="outsider") as ua:
            for extra in ([], ["X-CTI-Call-ID: forged", "X-CTI-Edge: forged"],
                          [f"Route: <sip:{carrier.ip}:{carrier.port};lr>"]):
                for ruri in (f"sip:{NUMBER}@{edge[0]}:{edge[1]}", carrier.uri(NUMBER)):
                    status = await asyncio.to_thread(_invite, ua, ruri, extra)
                    assert status in (403, 404), (ruri, extra, status)
        await asyncio.sleep(0.3)
        assert carrier.invites == []

        # The concurrent limit: with max_calls 1, a second call back gets 503 at the
        # edge while the first one rings.
        async with Advisor(gw, "sofia") as sofia, Advisor(gw, "dalia") as dalia:
            first = gw.flow.callbacks.callback(NUMBER, language="es", topic="visa")
            await sofia.set_state("available")
            inc = await sofia.phone.wait_for("leg.incoming", timeout=20)
            await sofia.phone.command("answer", leg=inc["leg"], code=200)
            ring = await pstn.wait_for("leg.incoming", timeout=20)
            await pstn.command("answer", leg=ring["leg"], code=180)
            await carrier.wait_for_invite(to=NUMBER, authenticated=True)

            second = gw.flow.callbacks.callback("+31612345678", language="en",
                                                topic="visa")
            await dalia.set_state("available")
            inc2 = await dalia.phone.wait_for("leg.incoming", timeout=20)
            t0 = time.monotonic()
            await dalia.phone.command("answer", leg=inc2["leg"], code=200)
            await dalia.phone.wait_for("leg.state", leg=inc2["leg"], state="disconnected",
                                       timeout=20)
            assert time.monotonic() - t0 < 10
            assert carrier.invites_to("+31612345678") == []
            assert "503" in _edge_log(gw) and "trunk carrier full" in _edge_log(gw)
            del first, second
            await pstn.command("hangup", leg=ring["leg"], code=486)
        # Only the legitimate call reached the carrier (its 407 and the retry).
        assert {i["dialled"] for i in carrier.invites} == {NUMBER}
        # No realm configured: the edge answered the realm the carrier asked for.
        assert [i["auth"] for i in carrier.invites] == ["none", "ok"]


def _edge_log(gw: Any) -> str:
    return Path(gw.edge.files.log_file).read_text(errors="replace")


async def test_hotline_calls_in_through_the_carrier(tmp_path: Path) -> None:
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            running_gateway(tmp_path, trunks=[trunk(carrier)],
                            sip__accept_from=[]) as gw, \
            Phone(name="pstn") as pstn:
        edge = (gw.settings.sip.ip, gw.settings.sip.port)
        await carrier.set_hotline(edge)
        caller = "+34911234567"
        await register_pstn(carrier, pstn, caller)

        # Through the carrier: the IVR answers (the worker's leg) with audio.
        await pstn.command("dial", leg="in", uri=carrier.uri(HOTLINE))
        await pstn.wait_for("leg.state", leg="in", state="confirmed", timeout=15)
        await pstn.wait_for("leg.media", leg="in", active=True, timeout=10)
        inv = await carrier.wait_for_invite(dialled=HOTLINE, authenticated=True, final=True)
        assert inv["target"] == "hotline" and inv["status"] == 200
        incoming = await bus_event(gw, "call.incoming", timeout=10)
        assert incoming["data"]["caller"]["number"] == caller
        await pstn.command("hangup", leg="in")

        # Not from the trunk, and sip.accept_from is empty: refused.
        async with Phone(name="outsider") as outsider:
            await outsider.command("dial", leg="x", uri=hotline_uri(gw))
            st = await outsider.wait_for("leg.state", leg="x", state="disconnected",
                                         timeout=10)
            assert st.get("code") == 403, st


def _in_dialog(ua: SipUA, method: str, dialog: Dialog, ruri: str,
               routes: list[str], extra: list[str] | None = None) -> int:
    dialog.cseq += 1
    raw = ua.request(method, ruri, call_id=dialog.call_id, cseq=dialog.cseq,
                     from_hdr=dialog.from_hdr, to_hdr=dialog.to_hdr,
                     extra=[f"Route: {r}" for r in routes] + (extra or []),
                     body=SDP if method == "INVITE" else "")
    reply = ua.transact(raw)
    if method == "INVITE" and reply.status >= 200:
        ua.send(ua.request("ACK", ruri, call_id=dialog.call_id, cseq=dialog.cseq,
                           from_hdr=dialog.from_hdr, to_hdr=reply.get("To"),
                           extra=[f"Route: {r}" for r in routes]))
    return reply.status


async def test_a_connected_callers_forgeries_never_reach_the_carrier(tmp_path: Path) -> None:
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            running_gateway(tmp_path, trunks=[trunk(carrier)]) as gw, \
            Phone(name="pstn") as pstn:
        await register_pstn(carrier, pstn)
        edge = (gw.settings.sip.ip, gw.settings.sip.port)
        with SipUA(edge, user="+34911234567") as ua:
            dialog = ua.send_invite(f"sip:{HOTLINE}@{edge[0]}:{edge[1]}")
            ok = await asyncio.to_thread(ua.wait_invite, dialog, 10)
            assert ok.status == 200, ok
            await bus_event(gw, "call.incoming")
            target = carrier.uri(NUMBER)
            attempts = [
                # a re-INVITE along the real route set, retargeted at the carrier
                ("INVITE", target, dialog.route_set, []),
                # the real target, with the carrier slipped in as the next hop
                ("INVITE", dialog.remote_target,
                 [*dialog.route_set, f"<sip:{carrier.ip}:{carrier.port};lr>"], []),
                ("INFO", target, dialog.route_set, []),
                ("REFER", dialog.remote_target, dialog.route_set,
                 [f"Refer-To: <sip:{NUMBER}@{edge[0]}:{edge[1]}>"]),
            ]
            for method, ruri, routes, extra in attempts:
                status = await asyncio.to_thread(_in_dialog, ua, method, dialog, ruri,
                                                 routes, extra)
                assert status in (403, 603), (method, ruri, routes, status)
            # A new INVITE to a number with our own headers forged: not a worker.
            status = await asyncio.to_thread(
                _invite, ua, f"sip:{NUMBER}@{edge[0]}:{edge[1]}",
                ["X-CTI-Edge: " + gw.edge_secret[:4] + "forged", "X-CTI-Call-ID: x"])
            assert status == 404
            # The call itself still works: a re-INVITE to the worker passes.
            assert await asyncio.to_thread(_in_dialog, ua, "INVITE", dialog,
                                           dialog.remote_target, dialog.route_set) == 200
            await asyncio.to_thread(ua.bye, dialog)
        await asyncio.sleep(0.3)
        assert carrier.invites == [] and carrier.in_dialog == []


async def test_a_trunk_with_register_registers_with_the_carrier(tmp_path: Path) -> None:
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            running_gateway(tmp_path, trunks=[trunk(carrier, register=True)]) as gw:
        async def registered() -> None:
            while not await carrier.registered(TRUNK_USER):
                await asyncio.sleep(0.1)

        try:
            await asyncio.wait_for(registered(), 15)
        except asyncio.TimeoutError:
            raise AssertionError(_edge_log(gw)[-3000:]) from None
        regs = [(r["auth"], r["status"]) for r in carrier.registers if r["user"] == TRUNK_USER]
        assert regs[:2] == [("none", 401), ("ok", 200)]
        edge = f"{gw.settings.sip.ip}:{gw.settings.sip.port}"
        assert all(r["source"] == edge for r in carrier.registers)
        # The table holds the password: the gateway's user only.
        table = gw.edge.files.db_dir / "uacreg"
        assert table.stat().st_mode & 0o077 == 0


async def test_a_dead_workers_trunk_call_gets_a_bye_over_tcp(tmp_path: Path) -> None:
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            running_gateway(tmp_path, trunks=[trunk(carrier, transport="tcp")]) as gw, \
            Phone(name="pstn") as pstn, Advisor(gw, "sofia") as sofia:
        await register_pstn(carrier, pstn)
        call_id = gw.flow.callbacks.callback(NUMBER, language="es", topic="visa")
        await sofia.set_state("available")
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=20)
        await sofia.phone.command("answer", leg=incoming["leg"], code=200)
        ring = await pstn.wait_for("leg.incoming", timeout=20)
        await pstn.command("answer", leg=ring["leg"], code=200)
        await pstn.wait_for("leg.state", leg=ring["leg"], state="confirmed")
        retry = await carrier.wait_for_invite(to=NUMBER, authenticated=True)
        assert retry["transport"] == "tcp"
        worker = gw.flow.calls.get(call_id).worker
        assert retry["call_id"] in [d["call-id"] for d in await gw.rpc.worker_dialogs(worker)]

        # The worker dies: the edge ends its dialogs, the trunk call too.
        gw.pool.get(worker).process.kill()
        await pstn.wait_for("leg.state", leg=ring["leg"], state="disconnected", timeout=15)
        await sofia.phone.wait_for("leg.state", leg=incoming["leg"], state="disconnected",
                                   timeout=15)
        assert [b["call_id"] for b in carrier.in_dialog if b["method"] == "BYE"] == \
            [retry["call_id"]]
        # The trunk's slot is free again (the edge ends the dialog after the BYE's
        # transaction: on a loaded machine a moment later).
        deadline = time.monotonic() + 10
        size = await gw.rpc.call("dlg.profile_get_size", "trunk", "carrier")
        while int(size) != 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            size = await gw.rpc.call("dlg.profile_get_size", "trunk", "carrier")
        assert int(size) == 0
        await until(lambda: gw.pool.get(worker).up, 15)  # restarted before teardown

