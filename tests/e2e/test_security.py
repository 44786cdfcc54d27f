"""The gateway closed to toll fraud and spoofing, with real Kamailio and workers.

Callers here are raw SIP user agents (tests/peers/rawsip.py), so a test can send
what no honest phone would: a REFER, a forged in-dialog request with a Route
naming the edge, an INVITE straight to a worker, X-CTI-* headers of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.gateway_harness import HOTLINE, bus_event, running_gateway, until
from tests.peers.rawsip import SDP, Dialog, SipMessage, SipUA, new_branch, new_tag

pytestmark = pytest.mark.e2e

WORKER_FAILED = 'SIP;cause=503;text="media worker failed"'


# ---------------------------------------------------------------- helpers


@pytest.fixture
def uas() -> Iterator[Callable[..., SipUA]]:
    made: list[SipUA] = []

    def make(proxy: tuple[str, int], user: str = "caller") -> SipUA:
        ua = SipUA(proxy, user=user)
        made.append(ua)
        return ua

    yield make
    for ua in made:
        ua.close()


def edge_of(gw: Any) -> tuple[str, int]:  # noqa: ANN401
    return gw.settings.sip.ip, gw.settings.sip.port


def invite(ua: SipUA, ruri: str, extra: list[str] | None = None) -> Dialog:
    """send_invite() with extra headers."""
    call_id, branch = uuid.uuid4().hex, new_branch()
    from_hdr = f"<sip:+34911234567@{ua.host}:{ua.port}>;tag={new_tag()}"
    ua.send(ua.request("INVITE", ruri, call_id=call_id, cseq=1, from_hdr=from_hdr,
                       to_hdr=f"<{ruri}>", branch=branch, extra=extra, body=SDP))
    return Dialog(call_id, from_hdr, f"<{ruri}>", ruri, 1, branch)


def in_dialog(ua: SipUA, method: str, dialog: Dialog, extra: list[str] | None = None,
              body: str = "") -> SipMessage:
    """A request inside the dialog, along its route set; its final reply."""
    dialog.cseq += 1
    raw = ua.request(method, dialog.remote_target, call_id=dialog.call_id, cseq=dialog.cseq,
                     from_hdr=dialog.from_hdr, to_hdr=dialog.to_hdr,
                     extra=[f"Route: {r}" for r in dialog.route_set] + (extra or []), body=body)
    return ua.transact(raw)


def answer_with_sdp(ua: SipUA, req: SipMessage, tag: str) -> None:
    """200 OK with an SDP answer (a raw target standing in for a phone)."""
    raw = ua.response_to(req, 200, "OK", to_tag=tag)
    ua.send(raw.replace("Content-Length: 0\r\n\r\n",
                        f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n"
                        + SDP))


def nothing_for(ua: SipUA, seconds: float = 0.5) -> None:
    """No SIP request reaches `ua` (OPTIONS probes aside)."""
    with pytest.raises(TimeoutError):
        msg = ua.recv(seconds, lambda m: not m.is_response)
        raise AssertionError(f"unexpected request reached {ua.port}: {msg.start_line}")


def cti_headers(msg: SipMessage) -> list[str]:
    return [n for n, _ in msg.headers if n.lower().startswith("x-cti-")]


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path, **kw: Any) -> AsyncIterator[tuple[Any, list[dict[str, Any]]]]:
    """A running gateway and the worker events the controller gets (a spy)."""
    async with running_gateway(tmp_path, **kw) as gw:
        seen: list[dict[str, Any]] = []
        original = gw.flow.on_worker_event

        def spy(link: Any, msg: dict[str, Any]) -> None:  # noqa: ANN401
            seen.append(msg)
            original(link, msg)

        gw.flow.on_worker_event = spy
        yield gw, seen


async def connect_caller(gw: Any, caller: SipUA, extra: list[str] | None = None  # noqa: ANN401
                         ) -> tuple[Dialog, SipMessage, str]:
    """A raw caller dials the hotline and is answered: (dialog, 200 OK, call id)."""
    ip, port = edge_of(gw)
    dialog = invite(caller, f"sip:{HOTLINE}@{ip}:{port}", extra)
    ok = await asyncio.to_thread(caller.wait_invite, dialog, 10)
    assert ok.status == 200, ok
    incoming = await bus_event(gw, "call.incoming")
    return dialog, ok, incoming["call_id"]


# ---------------------------------------------------------------- the tests


async def test_a_connected_caller_cannot_transfer_forge_or_tag(
    tmp_path: Path, uas: Callable[..., SipUA]
) -> None:
    async with gateway(tmp_path) as (gw, seen):
        edge = edge_of(gw)
        caller = uas(edge)
        premium = uas(edge, user="premium")  # where a fraudster wants calls to go
        target = f"sip:+449098790000@127.0.0.1:{premium.port}"

        # X-CTI-* of the caller's own never reach the worker; the edge adds its secret.
        dialog, ok, call_id = await connect_caller(gw, caller, [
            "X-CTI-Call-ID: forged-call-id", "x-cti-edge: guessed", "X-CTI-Consult: sofia"])
        incoming = next(m for m in seen if m["event"] == "leg.incoming")
        headers = incoming["headers"]
        assert not [h for h in headers if h.startswith("x-cti-")], headers
        # The caller's 200 OK tells them nothing of ours.
        assert cti_headers(ok) == [], ok
        assert f"{edge[0]}:{edge[1]}" in ok.get("Record-Route")

        # A REFER is declined by the edge; nothing is dialled.
        refer = await asyncio.to_thread(in_dialog, caller, "REFER", dialog,
                                        [f"Refer-To: <{target}>"])
        assert refer.status == 603, refer
        # A new dialog with made-up Call-ID and tags, its Route naming the edge,
        # towards an outside number: not a dialog the edge knows.
        forged = Dialog(uuid.uuid4().hex, f"<sip:x@127.0.0.1:{caller.port}>;tag={new_tag()}",
                        f"<{target}>;tag={new_tag()}", target, 1, new_branch(),
                        route_set=[f"<sip:{edge[0]}:{edge[1]};lr>"], remote_target=target)
        for method in ("INVITE", "BYE", "INFO"):
            reply = await asyncio.to_thread(in_dialog, caller, method, forged, None,
                                            SDP if method == "INVITE" else "")
            assert reply.status == 481, reply
        # The real Call-ID with a wrong To-tag (a re-INVITE guessed at) is no better.
        guessed = Dialog(dialog.call_id, dialog.from_hdr, f"<{target}>;tag=guessed",
                         target, dialog.cseq, new_branch(), route_set=forged.route_set,
                         remote_target=target)
        reply = await asyncio.to_thread(in_dialog, caller, "INVITE", guessed, None, SDP)
        assert reply.status == 481, reply
        # Methods a call does not need are refused even inside the real dialog.
        reply = await asyncio.to_thread(in_dialog, caller, "MESSAGE", dialog)
        assert reply.status == 405, reply

        await asyncio.to_thread(nothing_for, premium)
        call = gw.flow.calls.get(call_id)
        assert [leg.role for leg in call.legs] == ["customer"]  # no leg dialled
        assert [m for m in seen if m["event"] == "leg.incoming"] == [incoming]
        # The real dialog still works: an in-dialog OPTIONS reaches the worker (its
        # own answer, whatever it is; the edge's replies say "Server: kamailio"),
        # then the caller's BYE ends the call.
        reply = await asyncio.to_thread(in_dialog, caller, "OPTIONS", dialog)
        assert reply.status not in (404, 405, 481) and "kamailio" not in reply.get("Server")
        assert (await asyncio.to_thread(in_dialog, caller, "BYE", dialog)).status == 200
        ended = await bus_event(gw, "call.ended")
        assert ended["call_id"] == call_id and ended["data"]["reason"] == "caller_abandoned"


async def test_an_invite_straight_to_a_worker_is_refused(
    tmp_path: Path, uas: Callable[..., SipUA]
) -> None:
    async with gateway(tmp_path) as (gw, seen):
        worker = gw.pool.get("w1").spec
        ua = uas((worker.ip, worker.sip_port))
        for extra in ([], ["X-CTI-Edge: not-the-secret"]):
            dialog = invite(ua, f"sip:{HOTLINE}@{worker.ip}:{worker.sip_port}", extra)
            reply = await asyncio.to_thread(ua.wait_invite, dialog)
            assert reply.status == 403, reply
        # Refused before any answer: no ringing, no call in the controller.
        with pytest.raises(TimeoutError):
            ua.recv(0.05, lambda m: m.is_response and 100 < m.status < 200)
        assert [m for m in seen if m["event"] in ("leg.incoming", "leg.state")] == []
        assert [e for e in gw.bus.since(0) if e["type"] == "call.incoming"] == []
        assert gw.flow.calls.all() == []


def _transfer_flow() -> dict[str, Any]:
    return {"start": "to_team", "nodes": {
        "to_team": {"type": "transfer", "to": "crisis_team", "prompts": ["transferring"],
                    "fallback": "queue"},
        "queue": {"type": "queue", "topic": "emergency", "priority": 40}}}


async def test_an_ivr_transfer_passes_the_edge_which_ends_it_when_the_worker_dies(
    tmp_path: Path, uas: Callable[..., SipUA]
) -> None:
    team = SipUA(("127.0.0.1", 9), user="crisis")  # the proxy is never used: it only answers
    try:
        async with gateway(tmp_path, ivr__flows={HOTLINE: _transfer_flow()}, directory=[
                {"key": "crisis_team", "name": "Crisis team",
                 "uri": f"sip:crisis@127.0.0.1:{team.port}"}]) as (gw, _seen):
            edge = edge_of(gw)
            team.proxy = edge  # where its replies go
            caller = uas(edge)
            _dialog, _ok, call_id = await connect_caller(gw, caller)

            # The worker dials the team through the edge: the edge relays and
            # record-routes it.
            inv = await asyncio.to_thread(
                team.recv, 15, lambda m: m.method == "INVITE" and not m.is_response)
            assert inv.get("Via").startswith(f"SIP/2.0/UDP {edge[0]}:{edge[1]};"), inv
            assert f"{edge[0]}:{edge[1]};lr" in inv.get("Record-Route"), inv
            answer_with_sdp(team, inv, "team1")
            await asyncio.to_thread(team.recv, 5, lambda m: m.method == "ACK")
            await bus_event(gw, "call.transferred", kind="blind")
            worker = gw.flow.calls.get(call_id).worker
            assert [d["call-id"] for d in await gw.rpc.worker_dialogs(worker)
                    if d["call-id"] == inv.call_id] == [inv.call_id]

            # The worker dies: the edge sends the team the BYE the worker cannot.
            link = gw.pool.get(worker)
            link.process.kill()
            bye = await asyncio.to_thread(
                team.recv, 10, lambda m: m.method == "BYE" and not m.is_response)
            team.send(team.response_to(bye, 200, "OK"))
            assert bye.call_id == inv.call_id
            assert bye.get("Via").startswith(f"SIP/2.0/UDP {edge[0]}:{edge[1]};")
            assert bye.get("Reason") == WORKER_FAILED
            caller_bye = await asyncio.to_thread(
                caller.recv, 10, lambda m: m.method == "BYE" and not m.is_response)
            caller.send(caller.response_to(caller_bye, 200, "OK"))
            ended = await bus_event(gw, "call.ended")
            assert ended["call_id"] == call_id and ended["data"]["reason"] == "worker_failed"
            await until(lambda: gw.pool.get(worker).up, 15)  # restarted before teardown
    finally:
        team.close()
