"""Issue 14: the edge takes SIP over WebSocket, rtpengine is supervised by the
gateway, and the browser phone's credentials end with the API token."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cti.config import Settings
from tests.e2e.gateway_harness import demo_config_data, running_gateway, until
from tests.e2e.test_serve_process import _descendants, _serve, _until_gone
from tests.peers.ports import free_port
from tests.peers.rawsip import SipUA
from tests.peers.wssip import WsSip

pytestmark = pytest.mark.e2e


def browser_advisors(*names: str) -> list[dict[str, Any]]:
    """The demo advisors, with `names` answering in the browser."""
    advisors = demo_config_data()["advisors"]
    for a in advisors:
        if a["name"] in names:
            a["phone"] = "browser"
    return advisors


def _ws(s: Settings) -> tuple[str, str]:
    """The edge's WebSocket URL and the page origin it accepts."""
    return f"ws://{s.sip.ip}:{s.webrtc.ws_port}", f"http://{s.http.host}:{s.http.port}"


async def _api(s: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://{s.http.host}:{s.http.port}/api/v1")


async def _login(http: httpx.AsyncClient, name: str) -> dict[str, str]:
    r = await http.post("/login", json={"username": name, "password": f"demo-{name}"})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def _phone(http: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    r = await http.post("/agents/me/phone", headers=auth)
    r.raise_for_status()
    return r.json()


async def _register(s: Settings, creds: dict[str, Any], aor: str | None = None) -> int:
    url, origin = _ws(s)
    async with WsSip(url, origin) as ws:
        reply = await ws.register(aor or creds["uri"][4:].split("@")[0], s.sip.realm,
                                  creds["auth_user"], creds["password"])
    return reply.status


async def _health(s: Settings) -> dict[str, Any]:
    async with await _api(s) as http:
        return (await http.get("/health")).json()


async def test_killed_rtpengine_is_restarted_and_health_shows_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="cti.gateway")
    async with running_gateway(tmp_path, webrtc__enabled=True) as gw:
        assert gw.rtpengine is not None
        health = await _health(gw.settings)
        assert health["status"] == "ok", health
        assert health["rtpengine"] == {"up": True, "restarts": 0, "pid": gw.rtpengine.pid}
        old = gw.rtpengine.pid
        assert old is not None and await gw.rtpengine.sessions() == 0

        os.kill(old, signal.SIGKILL)
        await until(lambda: gw.rtpengine is not None and gw.rtpengine.restarts == 1
                    and gw.rtpengine.alive, timeout=10)
        health = await _health(gw.settings)
        assert health["rtpengine"]["up"] and health["rtpengine"]["restarts"] == 1
        assert health["rtpengine"]["pid"] not in (None, old)
        assert health["status"] == "ok", health
        assert any("media relay (rtpengine) exited" in r.getMessage() for r in caplog.records)
        assert await gw.rtpengine.sessions() == 0  # the new one answers its ng port
        last = gw.rtpengine.pid
    assert last is not None
    await _until_gone({last}, timeout=2)


async def test_health_is_degraded_while_rtpengine_cannot_start(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, webrtc__enabled=True) as gw:
        rtp = gw.rtpengine
        assert rtp is not None and rtp.pid is not None
        # Killed, and its control port taken by someone else before the supervisor
        # gets to run: every restart fails until the port is free again.
        os.kill(rtp.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{rtp.pid}/stat").exists() and "Z" not in _state(rtp.pid):
            assert time.monotonic() < deadline
            time.sleep(0.01)  # blocks the loop on purpose: no restart meanwhile
        squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            bound_at = time.monotonic()
            while True:
                try:
                    squatter.bind(("127.0.0.1", gw.settings.webrtc.ng_port))
                    break
                except OSError:
                    assert time.monotonic() - bound_at < 2
                    time.sleep(0.01)
            await until(lambda: not rtp.alive, timeout=5)
            health = await _health(gw.settings)
            assert health["status"] == "degraded"
            assert "rtpengine" in health["reason"], health
            assert health["rtpengine"]["up"] is False
        finally:
            squatter.close()
        await until(lambda: rtp.alive and rtp.restarts == 1, timeout=15)
        assert (await _health(gw.settings))["status"] == "ok"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


async def test_cti_serve_stops_rtpengine_with_everything_else(tmp_path: Path) -> None:
    from tests.e2e.gateway_harness import gateway_settings

    settings = gateway_settings(tmp_path, webrtc__enabled=True)
    async with _serve(tmp_path, settings) as served:
        health = await _health(settings)
        assert health["rtpengine"]["up"], health
        rtp_pid = health["rtpengine"]["pid"]
        assert rtp_pid in _descendants(served.proc.pid)
        assert "Browser SIP  ws://" in "".join(served.stdout)
        everything = _descendants(served.proc.pid)
        served.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(served.proc.wait(), 20)
        await _until_gone(everything, timeout=5)


async def test_websocket_only_from_the_gateways_pages(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, webrtc__enabled=True,
                               advisors=browser_advisors("sofia")) as gw:
        s = gw.settings
        url, origin = _ws(s)
        with pytest.raises(Exception, match="403"):
            async with WsSip(url, "http://evil.example"):
                pass
        async with WsSip(url, origin) as ws:
            # sofia's desk password over WebSocket: the desk phone path is unchanged.
            reply = await ws.register("sofia", s.sip.realm, "sofia", "demo-sofia")
            assert reply.status == 200, reply


async def test_wss_with_a_self_signed_certificate_takes_the_browser_credentials(
        tmp_path: Path) -> None:
    wss_port = free_port()
    async with running_gateway(tmp_path, webrtc__enabled=True, webrtc__wss_port=wss_port,
                               advisors=browser_advisors("sofia")) as gw, \
            await _api(gw.settings) as http:
        s = gw.settings
        # No webrtc.tls, no http.tls: the gateway made one; the test trusts it.
        ctx = ssl.create_default_context(cafile=str(gw.runtime_dir / "wss" / "cert.pem"))
        url, origin = f"wss://{s.sip.ip}:{wss_port}", _ws(s)[1]
        auth = await _login(http, "sofia")
        # An http page gets ws, whatever it claims (no trusted proxy configured).
        creds = await _phone(http, {**auth, "X-Forwarded-Proto": "https"})
        assert creds["ws_url"] == _ws(s)[0]
        async with WsSip(url, origin, ssl=ctx) as ws:
            reply = await ws.register("sofia", s.sip.realm, creds["auth_user"],
                                      creds["password"])
            assert reply.status == 200, reply
        assert gw.rpc is not None and await gw.rpc.registered("sofia")
        with pytest.raises(Exception, match="403"):
            async with WsSip(url, "http://evil.example", ssl=ctx):
                pass
        with pytest.raises(ssl.SSLCertVerificationError):  # an untrusted certificate
            async with WsSip(url, origin, ssl=ssl.create_default_context()):
                pass
        # Logout ends them over wss too, and drops the wss registration.
        (await http.post("/logout", headers=auth)).raise_for_status()
        await until_async(lambda: gw.rpc.registered("sofia"), False)  # type: ignore[union-attr]

        async def over_wss() -> int:
            async with WsSip(url, origin, ssl=ctx) as ws:
                return (await ws.register("sofia", s.sip.realm, creds["auth_user"],
                                          creds["password"])).status

        await until_async(over_wss, 401)


async def test_a_trusted_proxys_https_gets_the_wss_url(tmp_path: Path) -> None:
    wss_port = free_port()
    async with running_gateway(tmp_path, webrtc__enabled=True, webrtc__wss_port=wss_port,
                               http__trusted_proxies=["127.0.0.1"],
                               advisors=browser_advisors("sofia")) as gw, \
            await _api(gw.settings) as http:
        s = gw.settings
        auth = await _login(http, "sofia")
        creds = await _phone(http, {**auth, "X-Forwarded-Proto": "https"})
        assert creds["ws_url"] == f"wss://{s.sip.ip}:{wss_port}"
        assert (await _phone(http, auth))["ws_url"] == _ws(s)[0]
        health = await _health(s)
        assert health["status"] == "ok", health


async def test_browser_credentials_stop_working_after_logout(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, webrtc__enabled=True,
                               advisors=browser_advisors("sofia")) as gw, \
            await _api(gw.settings) as http:
        s = gw.settings
        auth = await _login(http, "sofia")
        creds = await _phone(http, auth)
        assert creds["mode"] == "browser" and creds["ws_url"] == _ws(s)[0]
        assert creds["uri"] == f"sip:sofia@{s.sip.realm}" and creds["auth_user"] != "sofia"
        assert await _register(s, creds) == 200
        assert gw.rpc is not None and await gw.rpc.registered("sofia")
        # Only sofia's own address, and only over WebSocket.
        assert await _register(s, creds, aor="michel") == 403
        with SipUA((s.sip.ip, s.sip.port)) as udp:
            reply = await asyncio.to_thread(udp.register, creds["auth_user"], creds["password"],
                                            s.sip.realm)
            assert reply.status == 401
        # An advisor with a desk phone gets no browser credentials.
        assert await _phone(http, await _login(http, "michel")) == {"mode": "desk"}

        (await http.post("/logout", headers=auth)).raise_for_status()
        await until_async(lambda: _register(s, creds), 401)
        # The page's registration went with them: calls no longer ring a dead page.
        assert not await gw.rpc.registered("sofia")


async def test_browser_credentials_expire_with_the_token(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, webrtc__enabled=True, http__token_ttl_s=3,
                               advisors=browser_advisors("sofia")) as gw, \
            await _api(gw.settings) as http:
        s = gw.settings
        creds = await _phone(http, await _login(http, "sofia"))
        assert await _register(s, creds) == 200
        assert creds["expires_at"] <= time.time() + 3.5
        await until_async(lambda: _register(s, creds), 401, timeout=8)
        assert gw.rpc is not None
        await until_async(lambda: gw.rpc.registered("sofia"), False, timeout=3)  # type: ignore[union-attr]


async def until_async(probe: Any, expected: Any, timeout: float = 5) -> None:
    """Poll an async probe until it returns `expected`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = await probe()
        if last == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"still {last!r}, expected {expected!r} after {timeout} s")


async def test_a_restarted_edge_takes_the_live_browser_credentials_again(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, webrtc__enabled=True,
                               advisors=browser_advisors("sofia")) as gw, \
            await _api(gw.settings) as http:
        s = gw.settings
        creds = await _phone(http, await _login(http, "sofia"))
        assert await _register(s, creds) == 200
        old = gw.edge.pid
        assert old is not None
        os.killpg(old, signal.SIGKILL)
        await until(lambda: gw.edge.restarts == 1 and gw.edge.alive, timeout=10)
        # The new Kamailio started with empty htables; the gateway filled them again.
        await until_async(lambda: _register(s, creds), 200, timeout=5)
