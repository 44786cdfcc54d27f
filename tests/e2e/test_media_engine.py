"""The PJSIP media engine end to end, with real SIP between cti.media.phone processes.

No Kamailio: phones dial each other by IP:port URIs on loopback.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.audio import (
    tone_present,
    tone_seconds,
    wait_file_final,
    wait_recorded,
    write_tone,
)
from tests.peers.phone import Phone
from tests.peers.rawsip import SipUA

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def connect(caller: Phone, callee: Phone, leg: str, headers: dict[str, str] | None = None,
                  code: int = 200) -> dict[str, Any]:
    """caller dials callee, callee answers; returns callee's leg.incoming event."""
    await caller.command("dial", leg=leg, uri=callee.uri(), headers=headers or {})
    inc = await callee.wait_for("leg.incoming")
    await callee.command("answer", leg=inc["leg"], code=code)
    if code == 200:
        await caller.wait_for("leg.state", leg=leg, state="confirmed")
        await callee.wait_for("leg.state", leg=inc["leg"], state="confirmed")
    await caller.wait_for("leg.media", leg=leg, active=True)
    await callee.wait_for("leg.media", leg=inc["leg"], active=True)
    return inc


async def test_dial_headers_answer_and_dtmf() -> None:
    async with Phone(name="alice") as a, Phone(name="bob") as b:
        await a.command("dial", leg="a1", uri=b.uri(), headers={"X-CTI-Call-ID": "cti-42-xyz"})
        await a.wait_for("leg.state", leg="a1", state="calling")
        inc = await b.wait_for("leg.incoming")
        assert inc["headers"]["x-cti-call-id"] == "cti-42-xyz"
        assert "alice" in inc["from"] and inc["sip_call_id"]
        leg = inc["leg"]
        assert len(leg) == 32

        await b.command("answer", leg=leg, code=180)
        ringing = await a.wait_for("leg.state", leg="a1", state="early")
        assert ringing["code"] == 180
        await b.command("answer", leg=leg, code=200)
        await a.wait_for("leg.state", leg="a1", state="confirmed")
        await b.wait_for("leg.state", leg=leg, state="confirmed")
        await a.wait_for("leg.media", leg="a1", active=True)

        await a.command("send_dtmf", leg="a1", digits="3")
        assert (await b.wait_for("leg.dtmf", leg=leg))["digit"] == "3"
        await a.command("send_dtmf", leg="a1", digits="2", method="rfc2833")
        # RTP and SIP INFO are different paths: order across methods is the sender's job
        await b.wait_for("leg.dtmf", leg=leg, digit="2")
        await a.command("send_dtmf", leg="a1", digits="#", method="info")
        await b.wait_for("leg.dtmf", leg=leg, digit="#")
        digits = [(e["digit"], e["method"]) for e in b.received("leg.dtmf", leg=leg)]
        assert digits == [("3", "rfc2833"), ("2", "rfc2833"), ("#", "info")]

        bad = await a.command("send_dtmf", leg="nope", digits="1", check=False)
        assert bad["ok"] is False and bad["error"] == "unknown leg"
        unknown = await a.command("frobnicate", check=False)
        assert unknown["ok"] is False

        await a.command("hangup", leg="a1")
        await a.wait_for("leg.state", leg="a1", state="disconnected")
        await b.wait_for("leg.state", leg=leg, state="disconnected")
        gone = await b.command("answer", leg=leg, check=False)
        assert gone["error"] == "unknown leg"


@pytest.mark.parametrize("paced", [False, True], ids=["clock-thread", "paced"])
async def test_audio_both_ways(tmp_path: Path, paced: bool) -> None:
    """paced: bob clocks his bridge from the main thread, as a media worker does."""
    low, high = write_tone(tmp_path / "440.wav", 440, 1.0), write_tone(tmp_path / "1k.wav", 1000, 1.0)
    rec_a, rec_b = tmp_path / "rec_a.wav", tmp_path / "rec_b.wav"
    async with Phone(name="alice") as a, Phone(name="bob", paced=paced) as b:
        inc = await connect(a, b, "a1")
        leg_b = inc["leg"]
        await a.command("play", leg="a1", file=str(low), loop=True, play_id="pa")
        await b.command("play", leg=leg_b, file=str(high), loop=True, play_id="pb")
        await a.command("record_start", leg="a1", file=str(rec_a))
        await b.command("record_start", leg=leg_b, file=str(rec_b))
        await wait_recorded(rec_a, 2.5)
        await wait_recorded(rec_b, 2.5)
        await a.command("record_stop", leg="a1")
        await b.command("record_stop", leg=leg_b)
        await a.command("hangup", leg="a1")
        await b.wait_for("leg.state", leg=leg_b, state="disconnected")
    await wait_file_final(rec_a)
    await wait_file_final(rec_b)
    assert tone_present(rec_a, 1000, min_seconds=1.5), tone_seconds(rec_a, 1000)
    assert tone_present(rec_b, 440, min_seconds=1.5), tone_seconds(rec_b, 440)
    assert not tone_present(rec_a, 440, min_seconds=0.2)
    assert not tone_present(rec_b, 1000, min_seconds=0.2)
    assert not a.received("play.done") and not b.received("play.done")  # loops never end


async def test_bridge_two_legs(tmp_path: Path) -> None:
    low, high = write_tone(tmp_path / "440.wav", 440, 1.0), write_tone(tmp_path / "1k.wav", 1000, 1.0)
    rec_a, rec_c = tmp_path / "rec_a.wav", tmp_path / "rec_c.wav"
    async with Phone(name="alice") as a, Phone(name="bob") as b, Phone(name="carol") as c:
        b1 = (await connect(a, b, "a1", headers={"X-CTI-Call-ID": "bridge-1"}))["leg"]
        await connect(b, c, "b2")
        await b.command("play", leg=b1, file=str(high), loop=True)  # stopped by bridge
        await b.command("bridge", a=b1, b="b2")
        await a.command("play", leg="a1", file=str(low), loop=True)
        c1 = c.received("leg.incoming")[0]["leg"]
        await c.command("play", leg=c1, file=str(high), loop=True)
        await a.command("record_start", leg="a1", file=str(rec_a))
        await c.command("record_start", leg=c1, file=str(rec_c))
        await wait_recorded(rec_a, 2.0)
        await wait_recorded(rec_c, 2.0)
        await a.command("record_stop", leg="a1")
        await c.command("record_stop", leg=c1)

        await a.command("hangup", leg="a1")
        await b.wait_for("leg.state", leg=b1, state="disconnected")
        assert not b.received("leg.state", leg="b2", state="disconnected")
        # the bridge partner is gone: unbridging now names a dead leg
        res = await b.command("unbridge", a=b1, b="b2", check=False)
        assert res["error"] == "unknown leg"
    await wait_file_final(rec_a)
    await wait_file_final(rec_c)
    assert tone_present(rec_c, 440, min_seconds=1.0), tone_seconds(rec_c, 440)
    assert tone_present(rec_a, 1000, min_seconds=1.0), tone_seconds(rec_a, 1000)
    assert not tone_present(rec_c, 1000, min_seconds=0.2)
    assert not tone_present(rec_a, 440, min_seconds=0.2)


async def test_play_once_reports_done_in_early_media(tmp_path: Path) -> None:
    prompt = write_tone(tmp_path / "prompt.wav", 440, 0.4)
    async with Phone(name="alice") as a, Phone(name="bob") as b:
        inc = await connect(a, b, "a1", code=183)
        await a.wait_for("leg.state", leg="a1", state="early")
        await b.command("play", leg=inc["leg"], file=str(prompt), loop=False, play_id="welcome")
        done = await b.wait_for("play.done", timeout=5)
        assert done["leg"] == inc["leg"] and done["play_id"] == "welcome"
        bad = await b.command("play", leg=inc["leg"], file=str(tmp_path / "missing.wav"),
                              check=False)
        assert bad["ok"] is False and bad["error"]
        await b.command("hangup", leg=inc["leg"])
        ended = await a.wait_for("leg.state", leg="a1", state="disconnected")
        assert ended["code"] == 603
        assert len(b.received("play.done")) == 1


async def test_fifth_call_does_not_crash() -> None:
    async with Phone(name="alice") as a, Phone(name="bob") as b, Phone(name="carol") as c:
        for i in range(4):
            await a.command("dial", leg=f"a{i}", uri=b.uri())
        incoming = [await b.wait_for("leg.incoming") for _ in range(4)]
        fifth = await a.command("dial", leg="a4", uri=b.uri(), check=False)
        assert fifth["ok"] is False and "many" in fifth["error"].lower(), fifth

        await c.command("dial", leg="c1", uri=b.uri())
        rejected = await c.wait_for("leg.state", leg="c1", state="disconnected")
        assert rejected["code"] == 486

        # both engines still work
        await b.command("answer", leg=incoming[0]["leg"])
        await a.wait_for("leg.state", leg="a0", state="confirmed")
        await a.command("hangup", leg="a0")
        await a.wait_for("leg.state", leg="a0", state="disconnected")
        await a.command("dial", leg="a5", uri=c.uri())
        await c.wait_for("leg.incoming")
    assert a.alive is False and b.alive is False


def udp_ports(pid: int) -> set[int]:
    """The UDP ports process ``pid`` has bound (its socket inodes in /proc/net/udp)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    return {int(f[1].rsplit(":", 1)[1], 16) for f in map(str.split, lines) if f[9] in inodes}


async def test_rtp_stays_inside_the_phones_own_range() -> None:
    """pjsua binds RTP+RTCP pairs and wraps late: with portRange = span it took
    span + 2 ports, the next worker's first pair (issue 15: bind errors under churn)."""
    span = 8  # 4 pairs; 2 calls at a time for 8 rounds walk them twice
    async with Phone(name="alice", rtp_range=span) as a, Phone(name="bob") as b:
        assert a._proc is not None
        seen: set[int] = set()
        for i in range(8):
            legs = [f"a{i}x", f"a{i}y"]
            for leg in legs:
                await connect(a, b, leg)
            seen |= udp_ports(a._proc.pid)
            for leg in legs:
                await a.command("hangup", leg=leg)
                await a.wait_for("leg.state", leg=leg, state="disconnected")
    near = {p for p in seen if a.rtp_port - 64 <= p < a.rtp_port + span + 64}
    assert near == set(range(a.rtp_port, a.rtp_port + span)), sorted(near)


class FakeRegistrar(asyncio.DatagramProtocol):
    """Just enough of a registrar/proxy to challenge: 401 on REGISTER and 407 on
    INVITE until credentials come, then 200 (REGISTER) / 480 (INVITE)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        text = data.decode(errors="replace")
        method = text.split(" ", 1)[0]
        if method not in ("REGISTER", "INVITE"):
            return  # ACK, keep-alives
        self.requests.append(text)
        lower = text.lower()
        if method == "REGISTER":
            if "\nauthorization:" in lower:
                reply = self._reply(text, "200 OK", ["Expires: 60"])
            else:
                reply = self._reply(text, "401 Unauthorized",
                                    ['WWW-Authenticate: Digest realm="cti", nonce="n1", algorithm=MD5'])
        elif "\nproxy-authorization:" in lower:
            reply = self._reply(text, "480 Temporarily Unavailable", [])
        else:
            reply = self._reply(text, "407 Proxy Authentication Required",
                                ['Proxy-Authenticate: Digest realm="cti", nonce="n2", algorithm=MD5'])
        assert self.transport is not None
        self.transport.sendto(reply.encode(), addr)

    @staticmethod
    def _reply(request: str, status: str, extra: list[str]) -> str:
        keep = ("via:", "from:", "to:", "call-id:", "cseq:", "contact:")
        lines = [f"SIP/2.0 {status}"]
        for line in request.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
            if line.lower().startswith(keep):
                if line.lower().startswith("to:") and ";tag=" not in line:
                    line += ";tag=fake1"
                lines.append(line)
        return "\r\n".join(lines + extra + ["Content-Length: 0", "", ""])


async def test_register_and_dial_through_proxy_auth() -> None:
    from tests.peers.ports import free_port

    port = free_port()
    fake = FakeRegistrar()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: fake, local_addr=("127.0.0.1", port))
    try:
        async with Phone(name="sofia") as p:
            await p.command("register", user="sofia", password="secret",
                            registrar=f"sip:127.0.0.1:{port}", transport="udp", expires=60)
            reg = await p.wait_for("reg.state", code=200)
            assert reg["active"] is True
            await p.command("dial", leg="s1", uri=f"sip:advisor@127.0.0.1:{port}",
                            headers={"X-CTI-Call-ID": "auth-1"})
            ended = await p.wait_for("leg.state", leg="s1", state="disconnected")
            assert ended["code"] == 480
        invites = [r for r in fake.requests if r.startswith("INVITE")]
        assert len(invites) == 2
        assert "proxy-authorization: digest username=\"sofia\"" in invites[1].lower()
        assert "x-cti-call-id: auth-1" in invites[1].lower()
        registers = [r for r in fake.requests if r.startswith("REGISTER")]
        assert "expires: 0" in registers[-1].lower() or ";expires=0" in registers[-1].lower()
    finally:
        transport.close()


async def test_a_refer_is_declined_and_nothing_is_dialled() -> None:
    """pjsua follows a REFER by default (it dials the Refer-To URI); the engine says 603.
    No edge here: the engine refuses on its own."""
    async with Phone(name="worker") as worker:
        with SipUA((worker.ip, worker.sip_port), user="caller") as caller, \
                SipUA((worker.ip, worker.sip_port), user="premium") as premium:
            dialog = caller.send_invite(worker.uri())
            inc = await worker.wait_for("leg.incoming")
            await worker.command("answer", leg=inc["leg"], code=200)
            assert (await asyncio.to_thread(caller.wait_invite, dialog)).status == 200
            await worker.wait_for("leg.state", leg=inc["leg"], state="confirmed")

            dialog.cseq += 1
            refer = caller.request(
                "REFER", dialog.remote_target, call_id=dialog.call_id, cseq=dialog.cseq,
                from_hdr=dialog.from_hdr, to_hdr=dialog.to_hdr,
                extra=[f"Refer-To: <sip:+449098790000@127.0.0.1:{premium.port}>"])
            reply = await asyncio.to_thread(caller.transact, refer)
            assert reply.status == 603, reply
            with pytest.raises(TimeoutError):
                await asyncio.to_thread(premium.recv, 0.5, lambda m: m.method == "INVITE")
            assert worker.received("leg.incoming") == [inc]  # and no other leg appeared
            assert worker.received("leg.state", leg=inc["leg"], state="disconnected") == []
            assert (await asyncio.to_thread(caller.bye, dialog)).status == 200


async def test_an_old_legs_cleanup_never_hangs_up_the_call_that_reused_its_slot() -> None:
    """pjsua hands a finished call's slot (its call id) to the next INVITE at once.
    When the BYE ending one call and a new INVITE arrive in one poll, the new call
    has the old one's id before the engine frees the old Call object; pjsua2's Call
    destructor then clears that id's user data (the new call's events are lost) and
    hangs it up: a 603 to a caller who was never answered (issue 15, the load
    generator's `rate` run). All four slots busy, so the freed one is reused."""
    async with Phone(name="worker") as worker:
        with SipUA((worker.ip, worker.sip_port), user="caller") as caller:
            dialogs, legs = [], []
            for _ in range(4):
                dialog = caller.send_invite(worker.uri())
                inc = await worker.wait_for("leg.incoming")
                await worker.command("answer", leg=inc["leg"], code=200)
                assert (await asyncio.to_thread(caller.wait_invite, dialog)).status == 200
                dialogs.append(dialog)
                legs.append(inc["leg"])

            caller.send_bye(dialogs[0])  # one burst: both datagrams wait in one poll
            fifth = caller.send_invite(worker.uri())
            await worker.wait_for("leg.state", leg=legs[0], state="disconnected")
            inc = await worker.wait_for("leg.incoming")
            await worker.command("answer", leg=inc["leg"], code=200)
            reply = await asyncio.to_thread(caller.wait_invite, fifth)
            assert reply.status == 200, reply
            await worker.wait_for("leg.state", leg=inc["leg"], state="confirmed")
            # the new call's events still reach the engine: its end is reported
            assert (await asyncio.to_thread(caller.bye, fifth)).status == 200
            await worker.wait_for("leg.state", leg=inc["leg"], state="disconnected")
            for dialog in dialogs[1:]:
                assert (await asyncio.to_thread(caller.bye, dialog)).status == 200
            # (and the race did happen: the old Call was kept, not destroyed)
            assert "already reused by a newer call" in worker.stderr_path.read_text()
