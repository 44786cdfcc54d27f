"""The test carrier (tests/peers/carrier.py) against real pjsua2 phones.

One phone registers as a PSTN number, another plays the gateway with the trunk
account: registrar with digest auth, 407 on every unauthenticated INVITE, routing
to registered numbers (404 otherwise) and to the hotline target.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

from cti.edge.render import find_module_path
from cti.edge.rpc import EdgeRpc, EdgeRpcError
from cti.procutil import die_with_parent
from tests.audio import tone_present, tone_seconds, wait_file_final, wait_recorded, write_tone
from tests.peers.carrier import Carrier
from tests.peers.phone import REPO, Phone
from tests.peers.ports import bindable, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

NUMBER = "+442071234567"
TRUNK_USER, TRUNK_PASSWORD = "cti", "s3cret"


async def register_pstn(carrier: Carrier, phone: Phone, number: str = NUMBER) -> None:
    await phone.command("register", user=number, password=carrier.phone_password(number),
                        registrar=carrier.registrar_uri, transport="udp", expires=60)
    await phone.wait_for("reg.state", code=200)
    assert await carrier.registered(number)


async def register_trunk(carrier: Carrier, gw: Phone, password: str = TRUNK_PASSWORD) -> dict:
    await gw.command("register", user=TRUNK_USER, password=password,
                     registrar=carrier.registrar_uri, transport="udp", expires=60)
    return await gw.wait_for("reg.state")


async def test_trunk_call_is_challenged_then_relayed_with_audio(tmp_path: Path) -> None:
    low, high = write_tone(tmp_path / "440.wav", 440, 1.0), write_tone(tmp_path / "1k.wav", 1000, 1.0)
    rec_gw, rec_pstn = tmp_path / "rec_gw.wav", tmp_path / "rec_pstn.wav"
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            Phone(name="pstn") as pstn, Phone(name="gw") as gw:
        await register_pstn(carrier, pstn)
        reg = await register_trunk(carrier, gw)
        assert reg["code"] == 200 and reg["active"] is True
        # The REGISTER was challenged first (401), then accepted.
        trunk_regs = [(r["auth"], r["status"]) for r in carrier.registers if r["user"] == TRUNK_USER]
        assert trunk_regs[:2] == [("none", 401), ("ok", 200)]
        assert await carrier.registered(TRUNK_USER)

        await gw.command("dial", leg="g1", uri=carrier.uri(NUMBER))
        inc = await pstn.wait_for("leg.incoming")
        assert NUMBER in inc["to"] and TRUNK_USER in inc["from"]
        # Record-routed: in-dialog requests pass the carrier.
        assert f"127.0.0.1:{carrier.port}" in inc["headers"]["record-route"]
        assert "proxy-authorization" not in inc["headers"]  # consumed by the carrier
        await pstn.command("answer", leg=inc["leg"], code=180)
        await gw.wait_for("leg.state", leg="g1", state="early")
        await pstn.command("answer", leg=inc["leg"], code=200)
        await gw.wait_for("leg.state", leg="g1", state="confirmed")
        await gw.wait_for("leg.media", leg="g1", active=True)
        await pstn.wait_for("leg.media", leg=inc["leg"], active=True)

        await gw.command("play", leg="g1", file=str(low), loop=True)
        await pstn.command("play", leg=inc["leg"], file=str(high), loop=True)
        await gw.command("record_start", leg="g1", file=str(rec_gw))
        await pstn.command("record_start", leg=inc["leg"], file=str(rec_pstn))
        await wait_recorded(rec_gw, 2.0)
        await wait_recorded(rec_pstn, 2.0)
        await gw.command("record_stop", leg="g1")
        await pstn.command("record_stop", leg=inc["leg"])

        # The BYE goes through the carrier (Route from the Record-Route).
        await pstn.command("hangup", leg=inc["leg"])
        await gw.wait_for("leg.state", leg="g1", state="disconnected")

        challenged = await carrier.wait_for_invite(to=NUMBER, authenticated=False, final=True)
        retry = await carrier.wait_for_invite(to=NUMBER, authenticated=True, final=True)
        assert challenged["status"] == 407 and challenged["auth"] == "none"
        assert challenged["target"] is None
        assert retry["call_id"] == challenged["call_id"]
        assert int(retry["cseq"]) == int(challenged["cseq"]) + 1
        assert retry["auth_user"] == TRUNK_USER and retry["kind"] == "trunk"
        assert retry["target"] == "phone" and retry["status"] == 200
        assert retry["dialled"] == NUMBER
        # pjsua may send the retry over TCP: with Proxy-Authorization it exceeds the
        # 1300 bytes of RFC 3261 18.1.1 (the carrier listens on UDP and TCP).
        assert retry["source"].startswith("127.0.0.1:") and retry["transport"] in ("udp", "tcp")
        byes = [r for r in carrier.in_dialog if r["method"] == "BYE"]
        assert [b["call_id"] for b in byes] == [retry["call_id"]]
        assert byes[0]["source"] == f"127.0.0.1:{pstn.sip_port}"
        assert len(carrier.invites) == 2
    await wait_file_final(rec_gw)
    await wait_file_final(rec_pstn)
    assert tone_present(rec_gw, 1000, min_seconds=1.2), tone_seconds(rec_gw, 1000)
    assert tone_present(rec_pstn, 440, min_seconds=1.2), tone_seconds(rec_pstn, 440)


async def test_wrong_trunk_password_is_refused() -> None:
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            Phone(name="pstn") as pstn, Phone(name="gw") as gw:
        await register_pstn(carrier, pstn)
        reg = await register_trunk(carrier, gw, password="wrong")
        assert reg["code"] == 401 and reg["active"] is False
        assert not await carrier.registered(TRUNK_USER)
        assert [r["auth"] for r in carrier.registers if r["user"] == TRUNK_USER][:2] == \
            ["none", "failed"]

        # The account keeps the wrong password: pjsua answers the 407 once, gets
        # another 407 and gives up; the PSTN phone never rings.
        await gw.command("dial", leg="g1", uri=carrier.uri(NUMBER))
        ended = await gw.wait_for("leg.state", leg="g1", state="disconnected")
        assert ended["code"] == 407
        first = await carrier.wait_for_invite(to=NUMBER, auth="none", final=True)
        second = await carrier.wait_for_invite(to=NUMBER, auth="failed", final=True)
        assert first["status"] == second["status"] == 407
        assert second["auth_user"] == TRUNK_USER and second["target"] is None
        assert not pstn.received("leg.incoming")


async def test_unregistered_number_gets_404() -> None:
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            Phone(name="gw") as gw:
        assert (await register_trunk(carrier, gw))["code"] == 200
        await gw.command("dial", leg="g1", uri=carrier.uri("+449999000000"))
        ended = await gw.wait_for("leg.state", leg="g1", state="disconnected")
        assert ended["code"] == 404
        inv = await carrier.wait_for_invite(to="+449999000000", authenticated=True, final=True)
        assert inv["status"] == 404 and inv["target"] is None and inv["kind"] == "trunk"


async def test_pstn_call_to_unknown_number_goes_to_the_hotline() -> None:
    hotline_number = "+448001234567"
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            Phone(name="pstn") as pstn, Phone(name="edge") as edge:
        await register_pstn(carrier, pstn)
        # Without a hotline target the carrier has nowhere to send it.
        await pstn.command("dial", leg="p0", uri=carrier.uri(hotline_number))
        assert (await pstn.wait_for("leg.state", leg="p0", state="disconnected"))["code"] == 404

        await carrier.set_hotline((edge.ip, edge.sip_port))
        await pstn.command("dial", leg="p1", uri=carrier.uri(hotline_number))
        inc = await edge.wait_for("leg.incoming")
        assert hotline_number in inc["to"] and NUMBER in inc["from"]
        assert inc["source"].startswith(f"127.0.0.1:{carrier.port}")
        await edge.command("answer", leg=inc["leg"], code=200)
        await pstn.wait_for("leg.state", leg="p1", state="confirmed")
        await pstn.command("hangup", leg="p1")
        await edge.wait_for("leg.state", leg=inc["leg"], state="disconnected")

        inv = await carrier.wait_for_invite(dialled=hotline_number, target="hotline", final=True)
        assert inv["kind"] == "phone" and inv["auth_user"] == NUMBER
        assert inv["target_uri"] == f"sip:{hotline_number}@{edge.ip}:{edge.sip_port}"
        assert inv["status"] == 200
        # 2 x (407 + authenticated retry): the 404 one and the hotline one.
        assert [i["status"] for i in carrier.invites] == [407, 404, 407, 200]
        assert not any(i["kind"] == "trunk" for i in carrier.invites)


async def test_pstn_phone_needs_its_own_password() -> None:
    other = "+442079999999"
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            Phone(name="pstn") as pstn:
        await pstn.command("register", user=NUMBER, password=carrier.phone_password(other),
                           registrar=carrier.registrar_uri, transport="udp", expires=60)
        reg = await pstn.wait_for("reg.state")
        assert reg["code"] == 401 and reg["active"] is False
        assert not await carrier.registered(NUMBER)
        assert [(r["auth"], r["status"]) for r in carrier.registers][:2] == \
            [("none", 401), ("failed", 401)]
    # Another instance has another secret: passwords do not carry over.
    async with Carrier() as second:
        assert second.phone_password(NUMBER) != carrier.phone_password(NUMBER)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_kamailio_is_gone_when_the_test_fails_or_its_parent_dies(tmp_path: Path) -> None:
    # A failing test body: the context manager still stops the whole group.
    with pytest.raises(RuntimeError, match="test body failed"):
        async with Carrier() as carrier:
            pid, port, run_dir = carrier.pid, carrier.port, carrier.run_dir
            assert pid is not None and _group_alive(pid)
            raise RuntimeError("test body failed")
    assert not _group_alive(pid)
    assert bindable(port, (socket.SOCK_DGRAM, socket.SOCK_STREAM), "127.0.0.1")
    assert run_dir.exists()  # kept (with its log) for the post-mortem
    shutil.rmtree(run_dir)

    # The Python process holding the carrier is SIGKILLed: the parent-death signal
    # ends Kamailio (which takes its children along).
    script = ("import asyncio, sys\n"
              "from tests.peers.carrier import Carrier\n"
              "async def main():\n"
              "    c = Carrier(run_dir=sys.argv[1])\n"
              "    await c.start()\n"
              "    print(c.pid, c.port, flush=True)\n"
              "    await asyncio.sleep(60)\n"
              "asyncio.run(main())\n")
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(tmp_path / "run"), cwd=REPO,
        stdout=asyncio.subprocess.PIPE)
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(holder.stdout.readline(), 15)
        pid, port = (int(x) for x in line.split())
        assert _group_alive(pid)
    finally:
        holder.kill()
        await holder.wait()
    deadline = time.monotonic() + 3
    while _group_alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not _group_alive(pid)
    assert bindable(port, (socket.SOCK_DGRAM, socket.SOCK_STREAM), "127.0.0.1")


# What a trunk on the gateway's edge would do: relay to the carrier and answer its
# challenge with the uac module (credential user:realm:password, realm of the carrier).
UAC_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
run_dir="{run_dir}"
mpath="{mpath}"
dns=no
rev_dns=no
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
loadmodule "jsonrpcs.so"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "uac.so"
modparam("jsonrpcs", "transport", 4)
modparam("jsonrpcs", "dgram_socket", "{run_dir}/jsonrpc.sock")
modparam("uac", "credential", "{user}:{realm}:{password}")
request_route {{
	if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
	if (!is_method("ACK")) {{
		if (t_precheck_trans()) {{ t_check_trans(); exit; }}
		t_check_trans();
	}}
	if (has_totag()) {{
		if (loose_route()) {{ t_relay(); exit; }}
		if (is_method("ACK") && t_check_trans()) {{ t_relay(); }}
		exit;
	}}
	record_route();
	$du = "sip:{carrier}";
	t_on_failure("TRUNK_AUTH");
	t_relay();
	exit;
}}
failure_route[TRUNK_AUTH] {{
	if (t_is_canceled()) {{ exit; }}
	if (t_check_status("401|407") && uac_auth()) {{
		xlog("L_INFO", "UAC_AUTH answered $T_reply_code\\n");
		t_relay();
	}}
}}
"""


class UacProxy:
    """A minimal Kamailio with the uac module in front of the carrier."""

    def __init__(self, run_dir: Path, carrier: Carrier, password: str) -> None:
        self.run_dir, self.port = run_dir, free_port()
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "uac.cfg").write_text(UAC_CFG.format(
            run_dir=run_dir, mpath=find_module_path(), port=self.port, user=carrier.trunk_user,
            realm=carrier.realm, password=password, carrier=f"{carrier.ip}:{carrier.port}"))
        self.log = run_dir / "uac.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> UacProxy:
        with open(self.log, "wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                "kamailio", "-DD", "-E", "-f", str(self.run_dir / "uac.cfg"),
                "-P", str(self.run_dir / "uac.pid"), "-Y", str(self.run_dir),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
                start_new_session=True, preexec_fn=die_with_parent())
        rpc = EdgeRpc(self.run_dir / "jsonrpc.sock")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.returncode is None:
            try:
                await rpc.call("core.version", timeout=0.3)
                return self
            except EdgeRpcError:
                await asyncio.sleep(0.05)
        await self.__aexit__(None, None, None)
        raise RuntimeError(f"uac kamailio did not start:\n{self.log.read_text()[-3000:]}")

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None:
            if self.proc.returncode is None:
                self.proc.terminate()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.proc.wait(), 2)
            if _group_alive(self.proc.pid):
                os.killpg(self.proc.pid, 9)
            await self.proc.wait()


@pytest.mark.parametrize("password", [TRUNK_PASSWORD, "wrong"])
async def test_kamailio_uac_module_answers_the_challenge(tmp_path: Path, password: str) -> None:
    """A phone with no credentials dials via a uac Kamailio: uac_auth() answers the 407
    (same CSeq, new branch); the BYE passes both proxies. A wrong password: 407 again,
    and the failure goes back to the caller."""
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            Phone(name="pstn") as pstn, Phone(name="worker") as worker, \
            UacProxy(tmp_path / "uac", carrier, password) as uac:
        await register_pstn(carrier, pstn)
        await worker.command("dial", leg="w1", uri=f"sip:{NUMBER}@127.0.0.1:{uac.port}")
        if password != TRUNK_PASSWORD:
            ended = await worker.wait_for("leg.state", leg="w1", state="disconnected")
            assert ended["code"] == 407
            assert [i["auth"] for i in carrier.invites] == ["none", "failed"]
            assert not pstn.received("leg.incoming")
            return
        inc = await pstn.wait_for("leg.incoming")
        await pstn.command("answer", leg=inc["leg"], code=200)
        await worker.wait_for("leg.state", leg="w1", state="confirmed")
        await worker.command("hangup", leg="w1")
        await pstn.wait_for("leg.state", leg=inc["leg"], state="disconnected")
        first, retry = carrier.invites
        assert (first["auth"], first["status"]) == ("none", 407)
        assert (retry["auth"], retry["kind"], retry["status"]) == ("ok", "trunk", 200)
        assert retry["cseq"] == first["cseq"]  # uac_auth (5.6) keeps the CSeq
        assert [r["method"] for r in carrier.in_dialog] == ["ACK", "BYE"]
        assert "UAC_AUTH answered 407" in uac.log.read_text()
