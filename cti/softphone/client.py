"""SoftphoneClient: the softphone's logic, without any view.

It owns three channels and folds them into one SoftphoneState:
- the SIP phone (``cti phone`` child, see phoneproc.py): registration, ringing,
  answering, SIP hang-up, recording;
- the REST API (login, state, directory, wrap-up codes);
- the CTI WebSocket: events (screen pop, call and advisor state) and the
  call-control commands of docs/events.md; it reconnects with ``since=<last
  seq>`` so nothing is missed or applied twice.

Everything runs on the caller's asyncio loop (textual's, in the app). Views
subscribe to changes; tests wait on the state with ``wait_until``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import websockets

from cti.softphone.model import CallView, SoftphoneState
from cti.softphone.phoneproc import PhoneProcess, PhoneProcessError

log = logging.getLogger("cti.softphone")

COMMAND_TIMEOUT_S = 10.0
RECONNECT_MAX_S = 10.0
WS_UNAUTHORIZED = 4401


class SoftphoneError(RuntimeError):
    """An action that could not be done; the message is shown to the advisor."""


@dataclass
class SoftphoneConfig:
    server: str  # API base URL, e.g. http://127.0.0.1:8080
    sip: str  # the edge, host:port
    user: str
    password: str
    log_dir: Path
    ip: str = "127.0.0.1"  # local address the phone binds SIP and RTP to
    sip_port: int = 0  # 0: a free port
    rtp_port: int = 0
    transport: str = "udp"
    record_dir: Path | None = None  # record what the advisor hears, one WAV per call


class SoftphoneClient:
    def __init__(self, cfg: SoftphoneConfig) -> None:
        self.cfg = cfg
        self.state = SoftphoneState(user=cfg.user)
        self.phone = PhoneProcess(cfg.user, cfg.ip, self._on_phone_event,
                                  cfg.log_dir / f"phone-{cfg.user}.log",
                                  sip_port=cfg.sip_port, rtp_port=cfg.rtp_port)
        self.http = httpx.AsyncClient(base_url=cfg.server.rstrip("/"), timeout=10)
        self.token = ""
        self._listeners: list[Callable[[], None]] = []
        self._changed = asyncio.Condition()
        self._ws: Any = None
        self._ws_task: asyncio.Task[None] | None = None
        self._ws_ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._legs: dict[str, str] = {}  # call id -> ringing/connected phone leg
        self._recorded: set[str] = set()  # call ids being recorded
        self._closed = False
        self.connections: list[int | None] = []  # the `since` of each WebSocket session
        self._tasks: set[asyncio.Task[Any]] = set()  # fire-and-forget, kept referenced

    # ------------------------------------------------------------ changes
    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self) -> None:
        for fn in list(self._listeners):
            try:
                fn()
            except Exception:  # a broken view must not break the client
                log.exception("softphone listener failed")
        self._spawn(self._wake())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, pred: Callable[[SoftphoneState], bool],
                         timeout: float = 15) -> SoftphoneState:
        """Wait until the state satisfies pred (for tests and scripted use)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: pred(self.state)), timeout)
        return self.state

    def _note(self, text: str) -> None:
        log.info("%s", text)
        self.state.note(text)
        self._notify()

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start the phone and register, log in, follow the events."""
        try:
            ready = await self.phone.start()
            self.state.audio = str(ready.get("audio") or "")
            self._note(f"audio: {self.state.audio or 'unknown'}")
            await self._register()
            await self.login()
        except (PhoneProcessError, SoftphoneError, httpx.HTTPError) as e:
            self._note(f"start failed: {e}")
            raise SoftphoneError(str(e)) from e
        await self._load_me()
        await self._load_labels()
        self._ws_task = asyncio.create_task(self._ws_loop())

    async def aclose(self) -> None:
        """Stop everything this client started (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._ws_task is not None:
            self._ws_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ws_task
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        await self.phone.stop()
        await self.http.aclose()

    async def _register(self) -> None:
        self.state.registration = "registering"
        self._notify()
        await self.phone.command("register", user=self.cfg.user, password=self.cfg.password,
                                 registrar=f"sip:{self.cfg.sip}", transport=self.cfg.transport)

    async def login(self) -> None:
        r = await self.http.post("/api/v1/login", json={"username": self.cfg.user,
                                                        "password": self.cfg.password})
        if r.status_code != 200:
            raise SoftphoneError(f"login refused: {r.status_code} {_detail(r)}")
        self.token = r.json()["token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        self.state.logged_in = True
        self._note("logged in")

    async def _load_me(self) -> None:
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            r = await self.http.get("/api/v1/agents/me")
            if r.status_code == 200:
                self.state.advisor_state = r.json().get("state") or "-"
                self._notify()

    async def _load_labels(self) -> None:
        """Words for topics, languages, wrap-up codes, end reasons and states; without
        them (an older gateway, a hiccup) the screens show the codes."""
        with contextlib.suppress(httpx.HTTPError, ValueError):
            r = await self.http.get("/api/v1/labels")
            if r.status_code == 200 and isinstance(r.json(), dict):
                self.state.labels = r.json()
                self._notify()

    # ------------------------------------------------------------ WebSocket
    def _ws_url(self) -> str:
        u = urlsplit(self.cfg.server)
        scheme = "wss" if u.scheme == "https" else "ws"
        query = {"token": self.token}
        if self.state.last_seq:
            query["since"] = str(self.state.last_seq)
        return f"{scheme}://{u.netloc}/api/v1/ws?{urlencode(query)}"

    async def _ws_loop(self) -> None:
        delay = 0.5
        while not self._closed:
            try:
                async with websockets.connect(self._ws_url()) as ws:
                    self._ws = ws
                    await self._ws_session(ws)
                    delay = 0.5
            except websockets.ConnectionClosed as e:
                if e.rcvd is not None and e.rcvd.code == WS_UNAUTHORIZED:
                    await self._relogin()
            except (OSError, websockets.WebSocketException, asyncio.TimeoutError) as e:
                log.warning("ws: %s", e)
            self._ws = None
            if self.state.ws_connected:
                self.state.ws_connected = False
                self._note("events connection lost; reconnecting")
            self._fail_replies("events connection lost")
            # Back off between attempts so a down API is not hammered.
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _relogin(self) -> None:
        self._note("token refused; logging in again")
        with contextlib.suppress(SoftphoneError, httpx.HTTPError):
            await self.login()

    async def _ws_session(self, ws: Any) -> None:
        hello = json.loads(await ws.recv())
        if hello.get("type") != "hello":
            raise websockets.WebSocketException(f"expected hello, got {hello.get('type')}")
        self.connections.append(self.state.last_seq or None)
        if not self.state.last_seq:
            # First connection: everything after the hello comes live.
            self.state.last_seq = int(hello.get("last_seq") or 0)
        elif not hello.get("replay_complete", True):
            self._note("some events were lost while offline")
        self.state.ws_connected = True
        self._note(f"events connected (since {self.state.last_seq})")
        async for raw in ws:
            self._on_ws_message(json.loads(raw))

    async def reconnect_events(self) -> None:
        """Drop the events connection (e.g. after network trouble); the loop
        reconnects with since=<last seq> and gets what it missed."""
        if self._ws is not None:
            await self._ws.close()

    def _on_ws_message(self, msg: dict[str, Any]) -> None:
        typ = msg.get("type")
        if typ == "reply":
            fut = self._replies.get(msg.get("id", -1))
            if fut is not None and not fut.done():
                fut.set_result(msg)
            return
        if "seq" not in msg:
            return  # heartbeat and other non-events
        if not self.state.apply_event(msg):
            return
        self._after_event(msg)
        self._notify()

    def _after_event(self, ev: dict[str, Any]) -> None:
        call = self.state.call
        if ev["type"] == "call.offered" and call is not None:
            call.leg = self._legs.get(call.call_id)  # the INVITE may have come first
            if call.leg:
                call.status = "ringing"
            num = (ev["data"].get("caller") or {}).get("number")
            self.state.note(f"call offered from {num} call_id={call.call_id}")
        elif ev["type"] in ("call.connected", "call.ended", "agent.state"):
            self.state.note(f"{ev['type']} {ev['data']}")

    def _fail_replies(self, why: str) -> None:
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(SoftphoneError(why))

    async def command(self, cmd: str, **args: Any) -> dict[str, Any]:
        """A WebSocket command; its result, or SoftphoneError with the server's reason."""
        ws = self._ws
        if ws is None or not self.state.ws_connected:
            raise SoftphoneError("events connection is down")
        cid = next(self._ws_ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[cid] = fut
        try:
            await ws.send(json.dumps({"id": cid, "cmd": cmd, **args}))
            reply = await asyncio.wait_for(fut, COMMAND_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise SoftphoneError(f"{cmd}: no reply from the server") from None
        except websockets.ConnectionClosed:
            raise SoftphoneError(f"{cmd}: events connection lost") from None
        finally:
            self._replies.pop(cid, None)
        if not reply.get("ok"):
            raise SoftphoneError(f"{cmd}: {reply.get('error')}")
        return reply.get("result") or {}

    # ------------------------------------------------------------ phone events
    def _on_phone_event(self, ev: dict[str, Any]) -> None:
        name = ev.get("event")
        if name == "reg.state":
            ok = bool(ev.get("active")) and ev.get("code") == 200
            self.state.registered = ok
            self.state.registration = "registered" if ok else (
                f"failed {ev.get('code')} {ev.get('reason')}" if ev.get("code", 0) >= 300
                else "unregistered")
            self.state.note(f"SIP registration: {ev.get('code')} {ev.get('reason')}")
        elif name == "leg.incoming":
            self._on_incoming(ev)
        elif name in ("leg.state", "leg.media"):
            self._on_leg(ev)
        elif name == "phone.exited":
            self.state.registered = False
            self.state.registration = "phone process ended"
        elif name == "error":
            self.state.note(f"phone: {ev.get('message')}")
        else:
            return
        self._notify()

    def _on_incoming(self, ev: dict[str, Any]) -> None:
        headers = ev.get("headers") or {}
        call_id = headers.get("x-cti-call-id") or ev["leg"]
        call = self.state.call
        if "x-cti-consult" in headers and call is not None and call.call_id == call_id:
            # The consult the advisor asked for rings their phone a second time:
            # answer it, the caller stays on the first leg (on hold).
            call.consult_leg = ev["leg"]
            self.state.note(f"consult with {headers['x-cti-consult']} call_id={call_id}")
            self._spawn(self._answer_consult(ev["leg"]))
            return
        self._legs[call_id] = ev["leg"]
        call = self.state.call
        if call is not None and call.call_id == call_id:
            call.leg, call.status = ev["leg"], "ringing"
        self.state.note(f"phone rings: {ev.get('from')} call_id={call_id}")

    async def _answer_consult(self, leg: str) -> None:
        try:
            await self.phone.command("answer", leg=leg, code=200)
        except PhoneProcessError as e:
            self._note(f"consult answer failed: {e}")

    def _on_leg(self, ev: dict[str, Any]) -> None:
        leg: str | None = ev.get("leg")
        call = self.state.call
        if call is not None and leg == call.consult_leg:
            if ev.get("state") == "disconnected":
                call.consult_leg = None
            return
        # The call whose phone leg this is.
        mine = call if call is not None and leg is not None and call.leg == leg else None
        if ev["event"] == "leg.media" and mine is not None and leg is not None:
            mine.media = bool(ev.get("active"))
            if mine.media:
                self._spawn(self._maybe_record(mine.call_id, leg))
        elif ev.get("state") == "disconnected":
            for cid in [c for c, lg in self._legs.items() if lg == leg]:
                del self._legs[cid]
            if mine is not None:
                mine.leg, mine.media = None, False
                if mine.status == "ringing":
                    mine.status = "offered"

    async def _maybe_record(self, call_id: str, leg: str) -> None:
        rec_dir = self.cfg.record_dir
        if rec_dir is None or call_id in self._recorded:
            return
        self._recorded.add(call_id)
        rec_dir.mkdir(parents=True, exist_ok=True)
        path = rec_dir / f"{call_id}.wav"
        try:
            await self.phone.command("record_start", leg=leg, file=str(path.resolve()))
            self._note(f"recording to {path}")
        except PhoneProcessError as e:
            self._note(f"recording failed call_id={call_id}: {e}")

    def recording_path(self, call_id: str) -> Path | None:
        if self.cfg.record_dir is None or call_id not in self._recorded:
            return None
        return self.cfg.record_dir / f"{call_id}.wav"

    # ------------------------------------------------------------ actions
    def _call(self) -> CallView:
        if self.state.call is None:
            raise SoftphoneError("no call")
        return self.state.call

    def _call_id(self) -> str:
        return self._call().call_id

    async def answer(self) -> None:
        """Answer the ringing call on the phone (SIP 200 OK)."""
        call = self.state.call
        leg = call.leg if call is not None else next(iter(self._legs.values()), None)
        if leg is None or (call is not None and call.status not in ("ringing", "offered")):
            raise SoftphoneError("no ringing call")
        await self._phone_cmd("answer", leg=leg, code=200)
        self._note(f"answered call_id={call.call_id if call else leg}")

    async def hangup(self) -> None:
        """End the call: a BYE (or a decline while ringing) from the phone; without a
        phone leg (e.g. the phone already lost it) the server hangs up."""
        call = self._call()
        call_id = call.call_id
        if call.leg is not None:
            await self._phone_cmd("hangup", leg=call.leg)
        else:
            await self.command("hangup", call_id=call_id)
        self._note(f"hang-up call_id={call_id}")

    async def hold(self) -> None:
        call = self._call()
        call_id, on = call.call_id, not call.held
        await self.command("hold", call_id=call_id, on=on)
        self._note(f"{'hold' if on else 'unhold'} call_id={call_id}")

    async def toggle_recording(self) -> None:
        """Pause the call's recording (card numbers, passport data), or resume it; the
        server refuses when the call is not being recorded."""
        call = self._call()
        call_id, paused = call.call_id, call.recording != "paused"
        result = await self.command("recording", call_id=call_id, paused=paused)
        call.recording = result.get("state", call.recording)
        self._note(f"recording {call.recording} call_id={call_id}")

    async def transfer(self, kind: str, target_type: str, target: str) -> None:
        call_id = self._call_id()
        await self.command("transfer", call_id=call_id, kind=kind, target_type=target_type,
                           target=target)
        self._note(f"{kind} transfer to {target_type} {target} call_id={call_id}")

    async def consult_complete(self) -> None:
        await self.command("consult.complete", call_id=self._call_id())

    async def consult_cancel(self) -> None:
        await self.command("consult.cancel", call_id=self._call_id())

    async def wrap_up(self, code: str, note: str) -> None:
        call_id = self._call_id()
        await self.command("wrap_up", call_id=call_id, code=code, note=note)
        self._note(f"wrap-up {code} saved call_id={call_id}")

    async def set_state(self, state: str, reason: str | None = None) -> None:
        r = await self._http("POST", "/api/v1/agents/me/state",
                             json={"state": state, "reason": reason or None})
        self.state.advisor_state = r.get("state") or state
        self.state.advisor_reason = reason
        self._note(f"state {state}{f' ({reason})' if reason else ''}")

    async def directory(self) -> list[dict[str, Any]]:
        return list(await self._http("GET", "/api/v1/directory"))

    async def wrap_up_codes(self) -> list[dict[str, Any]]:
        return list(await self._http("GET", "/api/v1/wrap-up-codes"))

    async def _http(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = await self.http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise SoftphoneError(f"{path}: {e}") from None
        if r.status_code == 401:
            await self._relogin()
            r = await self.http.request(method, path, **kw)
        if r.status_code >= 400:
            raise SoftphoneError(f"{path}: {r.status_code} {_detail(r)}")
        return r.json()

    async def _phone_cmd(self, cmd: str, **fields: Any) -> None:
        try:
            await self.phone.command(cmd, **fields)
        except PhoneProcessError as e:
            raise SoftphoneError(str(e)) from None


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail", r.text))
    except ValueError:
        return r.text[:200]
