"""TLS: the API over HTTPS (and wss) with a configured certificate, and SIP over TLS
at the edge: an advisor's phone registers over TLS and takes a call over it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from tests.audio import tone_present, write_tone
from tests.e2e.gateway_harness import (
    REPO,
    Advisor,
    call_hotline,
    gateway_settings,
    hear_each_other,
    running_gateway,
    self_signed_cert,
)
from tests.e2e.test_webrtc_edge import browser_advisors
from tests.peers.phone import Phone
from tests.peers.ports import free_port
from tests.peers.wssip import WsSip

pytestmark = pytest.mark.e2e


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    """(certificate, key): self-signed for 127.0.0.1, the certificate its own CA."""
    return self_signed_cert(tmp_path)


def _files(cert: tuple[Path, Path]) -> dict[str, str]:
    return {"cert_file": str(cert[0]), "key_file": str(cert[1])}


async def test_the_api_speaks_https_and_wss_only(tmp_path: Path,
                                                 cert: tuple[Path, Path]) -> None:
    ctx = ssl.create_default_context(cafile=str(cert[0]))
    # (no phone here: the state is the one chosen, not the phone's)
    async with running_gateway(tmp_path, http__tls=_files(cert),
                               routing__state_follows_phone=False) as gw:
        h = gw.settings.http
        async with httpx.AsyncClient(base_url=f"https://{h.host}:{h.port}",
                                     verify=ctx) as client:
            health = await client.get("/api/v1/health")
            assert health.status_code == 200, health.text
            login = await client.post("/api/v1/login",
                                      json={"username": "sofia", "password": "demo-sofia"})
            assert login.status_code == 200, login.text
            token = login.json()["token"]
            async with websockets.connect(
                    f"wss://{h.host}:{h.port}/api/v1/ws?token={token}", ssl=ctx) as ws:
                assert (await ws.recv())  # the hello
                state = await client.post("/api/v1/agents/me/state",
                                          json={"state": "available"},
                                          headers={"Authorization": f"Bearer {token}"})
                assert state.status_code == 200, state.text
                while True:  # the state change comes over wss (heartbeats aside)
                    event = json.loads(await ws.recv())
                    if event.get("type") == "agent.state":
                        break
            assert event["data"]["state"] == "available", event
        # Plain HTTP on the same port gets no answer: the port speaks TLS only.
        async with httpx.AsyncClient() as plain:
            with pytest.raises(httpx.TransportError):
                await plain.get(f"http://{h.host}:{h.port}/api/v1/health")
        # And a client that does not trust the certificate is refused by its own check.
        async with httpx.AsyncClient() as untrusting:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.get(f"https://{h.host}:{h.port}/api/v1/health")


async def test_an_advisor_registered_over_tls_takes_a_call_with_audio(
        tmp_path: Path, cert: tuple[Path, Path]) -> None:
    write_tone(tmp_path / "caller.wav", 440.0, 30)
    write_tone(tmp_path / "team.wav", 1000.0, 30)
    tls_port = free_port()
    async with running_gateway(tmp_path, sip__tls={"port": tls_port, **_files(cert)},
                               http__tls=_files(cert)) as gw, \
            Advisor(gw, "sofia", ca=cert[0]) as sofia, Phone(name="+34911234567") as caller:
        # The edge saved where the registration came from: calls go back over it.
        assert gw.edge.files is not None
        with sqlite3.connect(gw.edge.files.location_db) as db:
            (received,), = db.execute(
                "SELECT received FROM location WHERE username = 'sofia'").fetchall()
        assert received.startswith("sip:127.0.0.1:") and received.endswith(
            ";transport=tls"), received
        await sofia.set_state("available")
        leg = await call_hotline(caller, gw, "32")
        # The INVITE comes over the phone's own TLS connection: it has no
        # certificate, so the edge could not open one to it.
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=20)
        adv_leg = incoming["leg"]
        await sofia.phone.command("answer", leg=adv_leg, code=200)
        offered = await sofia.stream.wait_for("call.offered")
        await sofia.stream.wait_for("call.connected", call_id=offered["call_id"])
        await sofia.phone.wait_for("leg.media", leg=adv_leg, active=True)
        heard_by_caller, heard_by_sofia = await hear_each_other(
            tmp_path, caller, leg, sofia.phone, adv_leg, "tls")
        assert tone_present(heard_by_caller, 1000.0, min_seconds=1.5)
        assert tone_present(heard_by_sofia, 440.0, min_seconds=1.5)
        # The BYE goes the same way back.
        await caller.command("hangup", leg=leg)
        await sofia.phone.wait_for("leg.state", leg=adv_leg, state="disconnected")
        await sofia.stream.wait_for("call.ended", call_id=offered["call_id"])


async def test_an_https_page_gets_wss_with_the_apis_certificate(
        tmp_path: Path, cert: tuple[Path, Path]) -> None:
    ctx = ssl.create_default_context(cafile=str(cert[0]))
    wss_port = free_port()
    async with running_gateway(tmp_path, http__tls=_files(cert), webrtc__enabled=True,
                               webrtc__wss_port=wss_port,
                               advisors=browser_advisors("sofia")) as gw:
        s, h = gw.settings, gw.settings.http
        async with httpx.AsyncClient(base_url=f"https://{h.host}:{h.port}/api/v1",
                                     verify=ctx) as client:
            login = await client.post("/login",
                                      json={"username": "sofia", "password": "demo-sofia"})
            auth = {"Authorization": f"Bearer {login.json()['token']}"}
            creds = (await client.post("/agents/me/phone", headers=auth)).json()
        assert creds["ws_url"] == f"wss://{s.sip.ip}:{wss_port}", creds
        page = f"https://{h.host}:{h.port}"
        # The edge shows http.tls's certificate on wss (the one the page was trusted with).
        async with WsSip(creds["ws_url"], page, ssl=ctx) as ws:
            reply = await ws.register("sofia", s.sip.realm, creds["auth_user"],
                                      creds["password"])
            assert reply.status == 200, reply
        assert gw.rpc is not None and await gw.rpc.registered("sofia")
        assert not (gw.runtime_dir / "wss").exists()  # none self-signed
        # The pages are https now: an http origin is not one of them.
        with pytest.raises(Exception, match="403"):
            async with WsSip(creds["ws_url"], f"http://{h.host}:{h.port}", ssl=ctx):
                pass


async def test_wss_shows_its_own_certificate_beside_sip_tls(
        tmp_path: Path, cert: tuple[Path, Path]) -> None:
    wss_cert = self_signed_cert(tmp_path / "wss-pem")
    wss_port, tls_port = free_port(), free_port()
    async with running_gateway(tmp_path, sip__tls={"port": tls_port, **_files(cert)},
                               webrtc__enabled=True, webrtc__wss_port=wss_port,
                               webrtc__tls=_files(wss_cert)) as gw:
        s = gw.settings
        # Each listener its own certificate: a client trusting only one of them
        # gets through on its port and is refused on the other.
        only_sip = ssl.create_default_context(cafile=str(cert[0]))
        only_wss = ssl.create_default_context(cafile=str(wss_cert[0]))
        async with WsSip(f"wss://{s.sip.ip}:{wss_port}", f"http://{s.http.host}:{s.http.port}",
                         ssl=only_wss) as ws:
            reply = await ws.register("sofia", s.sip.realm, "sofia", "demo-sofia")
            assert reply.status == 200, reply
        with pytest.raises(ssl.SSLCertVerificationError):
            async with WsSip(f"wss://{s.sip.ip}:{wss_port}", "http://x", ssl=only_sip):
                pass
        for ctx, ok in ((only_sip, True), (only_wss, False)):
            try:
                _, writer = await asyncio.open_connection(s.sip.ip, tls_port, ssl=ctx)
                writer.close()
                verified = True
            except ssl.SSLCertVerificationError:
                verified = False
            assert verified is ok


def _check_config(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cti.cli", "check-config", "--config", str(cfg)],
                          cwd=REPO, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("section", ["http", "sip", "webrtc"])
def test_check_config_names_a_missing_key_file(tmp_path: Path, cert: tuple[Path, Path],
                                               section: str) -> None:
    missing = tmp_path / "nowhere.key"
    tls: dict[str, object] = {"cert_file": str(cert[0]), "key_file": str(missing)}
    if section == "sip":
        tls["port"] = free_port()
    wss = {"webrtc__enabled": True, "webrtc__wss_port": free_port()} if section == "webrtc" \
        else {}
    gateway_settings(tmp_path, **{f"{section}__tls": tls}, **wss)
    res = _check_config(tmp_path / "cti.yaml")
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert res.stderr.strip() == (f"cti: config error: {tmp_path / 'cti.yaml'}: "
                                  f"{section}.tls.key_file: {missing}: no such file")


def test_check_config_refuses_a_key_of_another_certificate_and_warns_of_a_readable_key(
        tmp_path: Path, cert: tuple[Path, Path]) -> None:
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["openssl", "genrsa", "-out", str(other / "k.pem"), "2048"],
                   check=True, capture_output=True)
    gateway_settings(tmp_path, http__tls={"cert_file": str(cert[0]),
                                          "key_file": str(other / "k.pem")})
    res = _check_config(tmp_path / "cti.yaml")
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "http.tls: " in res.stderr and "not a PEM certificate and its private key" \
        in res.stderr, res.stderr

    cert[1].chmod(0o644)
    gateway_settings(tmp_path, http__tls=_files(cert))
    res = _check_config(tmp_path / "cti.yaml")
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert f"http.tls.key_file: {cert[1]} can be read by other users" in res.stderr
