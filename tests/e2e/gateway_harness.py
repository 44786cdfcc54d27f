"""Helpers to run the whole gateway (Kamailio, workers, API) in a test, on free ports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import ssl
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import websockets
import yaml

from cti.config import Settings, parse_settings
from cti.controller.gateway import Gateway
from tests.peers.phone import Phone
from tests.peers.ports import free_port, free_port_range

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "cti.yaml"
PROMPT_CACHE = REPO / "var" / "prompts"
HOTLINE = "+31247247247"


def demo_config_data() -> dict[str, Any]:
    """The demo config, its folders made absolute (it is written elsewhere)."""
    data: dict[str, Any] = yaml.safe_load(DEMO_CONFIG.read_text())
    guides = (data.get("plugins") or {}).get("guides")
    if guides is not None:
        guides["directory"] = str(DEMO_CONFIG.parent / guides.get("directory", "guides"))
    return data


def gateway_settings(tmp: Path, workers: int = 2, **overrides: Any) -> Settings:
    """The demo config on free ports, with its runtime and store in tmp."""
    data = demo_config_data()
    rtp_per_worker = 40
    # unix socket paths are capped at 107 bytes: keep the runtime dir short
    data["runtime_dir"] = tempfile.mkdtemp(prefix="cti-run-")
    data["sip"]["port"] = free_port()
    data["http"]["port"] = free_port()
    base = free_port()
    while not all(_free(base + i) for i in range(workers)):
        base = free_port()
    data["workers"].update(count=workers, sip_port_base=base,
                           rtp_port_base=free_port_range(workers * rtp_per_worker),
                           rtp_ports_per_worker=rtp_per_worker)
    data["prompts"] = {"texts": str(REPO / "config" / "prompts.yaml"),
                       "cache_dir": str(PROMPT_CACHE),
                       "override_dir": str(REPO / "config" / "prompts")}
    data["store"] = {"path": str(tmp / "cti.sqlite3")}
    data["routing"]["wrap_up_s"] = 0  # tests that want wrap-up say so
    # A test machine runs busy (phones, browsers, other gateways): refusing calls
    # for overload only in the tests that ask (overload__cpu_percent=...).
    data["overload"] = {"cpu_percent": 0, "loop_lag_ms": 0}
    # No rtpengine unless a test asks (webrtc__enabled=True); its ports are free ones.
    rtp_min = free_port_range(16)
    data["webrtc"].update(enabled=False, ws_port=free_port(), ng_port=free_port(),
                          rtp_port_min=rtp_min, rtp_port_max=rtp_min + 15)
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        if name:
            data.setdefault(section, {})[name] = value
        else:
            data[section] = value
    cfg = tmp / "cti.yaml"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True))
    return parse_settings(data, cfg)


def self_signed_cert(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """(certificate, key) in folder: self-signed for host (its own CA), the key 0600."""
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    crt, key = folder / "cti.crt", folder / "cti.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True)
    key.chmod(0o600)
    return crt, key


def ivr_gateway(tmp: Path, prompts: Path, other: dict[str, Any] | None = None,
                **ivr: Any):  # noqa: ANN201
    """A running gateway with ivr settings overridden and prompts from ``prompts``;
    ``other``: more overrides as for gateway_settings (``sip__hotlines``...)."""
    settings = {f"ivr__{k}": v for k, v in ivr.items()} | (other or {})
    return running_gateway(tmp, prompts={
        "texts": str(REPO / "config" / "prompts.yaml"),
        "cache_dir": str(PROMPT_CACHE), "override_dir": str(prompts)}, **settings)


def _free(port: int) -> bool:
    import socket

    from tests.peers.ports import bindable

    return bindable(port, (socket.SOCK_STREAM, socket.SOCK_DGRAM), "127.0.0.1")


@contextlib.asynccontextmanager
async def running_gateway(tmp: Path, extra_plugins: dict[str, object] | None = None,
                          **kw: Any):  # noqa: ANN201
    """``extra_plugins``: plugin objects registered as if enabled in the config."""
    gw = Gateway(gateway_settings(tmp, **kw))
    for name, plugin in (extra_plugins or {}).items():
        gw.plugins.register(plugin, name)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()
        # The edge's and the media relay's logs stay with the test (tmp) for a look.
        for log in ("edge/kamailio.log", "rtpengine/rtpengine.log"):
            with contextlib.suppress(OSError):
                shutil.copy(gw.runtime_dir / log, tmp / log.replace("/", "-"))
        shutil.rmtree(gw.runtime_dir, ignore_errors=True)


class EventStream:
    """A WebSocket CTI client that keeps every event it received."""

    def __init__(self, url: str, ssl: Any = None) -> None:
        self.url = url
        self.ssl = ssl  # an ssl.SSLContext for a wss:// URL
        self.events: list[dict[str, Any]] = []
        self._cond = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._ws: Any = None

    async def connect(self) -> dict[str, Any]:
        self._ws = await websockets.connect(self.url, ssl=self.ssl)
        hello = json.loads(await self._ws.recv())
        self._task = asyncio.create_task(self._read())
        return hello

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self._ws:
                async with self._cond:
                    self.events.append(json.loads(raw))
                    self._cond.notify_all()

    async def wait_for(self, type_: str, timeout: float = 15,
                       where: Callable[[dict[str, Any]], bool] | None = None,
                       **match: Any) -> dict[str, Any]:
        """The first event of a type (top-level or data fields equal to ``match``,
        and ``where(event)`` true if given), past or coming."""
        def find() -> dict[str, Any] | None:
            for ev in self.events:
                if ev.get("type") == type_ and all(
                    ev.get(k, ev.get("data", {}).get(k)) == v for k, v in match.items()
                ) and (where is None or where(ev)):
                    return ev
            return None

        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(find), timeout)
            found = find()
            assert found is not None
            return found

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


class Advisor:
    """An advisor: a registered softphone, an API login, a WebSocket stream."""

    def __init__(self, gw: Gateway, name: str, sip_password: str | None = None,
                 ca: Path | None = None) -> None:
        """``ca``: the CA of the gateway's certificates; with it the phone registers
        over TLS (sip.tls) and the API is reached over https/wss when http.tls is on."""
        self.gw = gw
        self.name = name
        self.sip_password = sip_password  # None: the right one from the config
        self.registration: dict[str, Any] = {}
        self.phone = Phone(name=name, tls_ca=ca)
        s = gw.settings
        self.ssl = None if ca is None or s.http.tls is None else ssl.create_default_context(
            cafile=str(ca))
        web = "http" if self.ssl is None else "https"
        self.http = httpx.AsyncClient(base_url=f"{web}://{s.http.host}:{s.http.port}",
                                      verify=self.ssl or True)
        self.token = ""
        self.stream: EventStream | None = None

    @property
    def password(self) -> str:
        # The demo config holds the hashes of demo-<name> (cti passwd).
        return f"demo-{self.name}"

    def _registrar(self) -> tuple[str, str]:
        s = self.gw.settings
        if self.phone.tls_ca is not None and s.sip.tls is not None:
            return f"sip:{s.sip.ip}:{s.sip.tls.port}", "tls"
        return f"sip:{s.sip.ip}:{s.sip.port}", "udp"

    async def __aenter__(self) -> Advisor:
        await self.phone.start()
        s = self.gw.settings
        registrar, transport = self._registrar()
        await self.phone.command("register", user=self.name,
                                 password=self.sip_password or self.password,
                                 registrar=registrar, transport=transport)
        self.registration = await self.phone.wait_for("reg.state", timeout=10)
        if self.sip_password is None:
            assert self.registration["code"] == 200, self.registration
        r = await self.http.post("/api/v1/login",
                                 json={"username": self.name, "password": self.password})
        r.raise_for_status()
        self.token = r.json()["token"]
        ws = "ws" if self.ssl is None else "wss"
        self.stream = EventStream(
            f"{ws}://{s.http.host}:{s.http.port}/api/v1/ws?token={self.token}", ssl=self.ssl)
        await self.stream.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.stream is not None:
            await self.stream.close()
        await self.http.aclose()
        await self.phone.stop(failed=exc[0] is not None)

    async def set_state(self, state: str) -> dict[str, Any]:
        r = await self.http.post("/api/v1/agents/me/state", json={"state": state},
                                 headers={"Authorization": f"Bearer {self.token}"})
        r.raise_for_status()
        return r.json()


def hotline_uri(gw: Gateway) -> str:
    s = gw.settings
    return f"sip:{HOTLINE}@{s.sip.ip}:{s.sip.port}"


async def call_hotline(caller: Phone, gw: Gateway, digits: str = "") -> str:
    """Dial the hotline, wait for the answer and audio, press the IVR digits (RFC 2833)."""
    leg = uuid.uuid4().hex
    await caller.command("dial", leg=leg, uri=hotline_uri(gw))
    await caller.wait_for("leg.state", leg=leg, state="confirmed", timeout=10)
    await caller.wait_for("leg.media", leg=leg, active=True, timeout=10)
    for d in digits:
        await caller.command("send_dtmf", leg=leg, digits=d, method="rfc2833")
    return leg


async def hear_each_other(tmp: Path, a: Phone, a_leg: str, b: Phone, b_leg: str,
                          name: str) -> tuple[Path, Path]:
    """a plays tmp/caller.wav, b tmp/team.wav, both looped; each records 2 s of what
    it hears. Returns (what a heard, what b heard), complete on disk."""
    from tests.audio import wait_file_final, wait_recorded

    await a.command("play", leg=a_leg, file=str(tmp / "caller.wav"), loop=True,
                    play_id=f"t-{name}")
    await b.command("play", leg=b_leg, file=str(tmp / "team.wav"), loop=True,
                    play_id=f"t-{name}")
    heard_a, heard_b = tmp / f"{name}-a.wav", tmp / f"{name}-b.wav"
    await a.command("record_start", leg=a_leg, file=str(heard_a))
    await b.command("record_start", leg=b_leg, file=str(heard_b))
    await wait_recorded(heard_a, 2.0)
    await wait_recorded(heard_b, 2.0)
    await a.command("record_stop", leg=a_leg)
    await b.command("record_stop", leg=b_leg)
    await wait_file_final(heard_a)
    await wait_file_final(heard_b)
    return heard_a, heard_b


async def bus_event(gw: Gateway, type_: str, timeout: float = 15, **data: Any) -> dict[str, Any]:
    """The first bus event of a type (with these data fields), past or coming."""
    def match(e: dict[str, Any]) -> bool:
        return e["type"] == type_ and all(e["data"].get(k) == v for k, v in data.items())

    past = [e for e in gw.bus.since(0) if match(e)]
    return past[0] if past else await gw.bus.wait_for(match, timeout)


async def until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Poll a condition on gateway state that no event announces."""
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)
