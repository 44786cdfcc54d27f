"""Wiring: `cti serve` builds the gateway, starts edge, workers and API, stops them all."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import IO, Any

import uvicorn

from cti.api.app import create_app
from cti.api.auth import Authenticator
from cti.api.ws import Hub
from cti.config import ConfigError, Settings, ivr_flows
from cti.controller.admin import AdvisorAdmin
from cti.controller.durable import restore_states
from cti.controller.flow import CallFlow
from cti.controller.loopwatch import DEGRADED_LAG_MS, LoopWatch
from cti.controller.overload import OverloadGuard
from cti.controller.plugin_runtime import PluginRuntime
from cti.controller.presence import PhonePresence
from cti.controller.prompts import PromptLibrary
from cti.controller.supervise import supervise
from cti.controller.webphone import BrowserPhones
from cti.controller.workers import WorkerLink, WorkerPool, WorkerSpec
from cti.core.paths import unusable_dir
from cti.edge.probe import PROBE_INTERVAL_S, EdgeLiveness, probe_once
from cti.edge.process import KamailioEdge
from cti.edge.render import (
    EdgeSettings,
    EdgeTls,
    TrunkTarget,
    WebRtcEdge,
    WorkerTarget,
    new_edge_secret,
)
from cti.edge.rpc import EdgeRpc, EdgeRpcError
from cti.edge.rtpengine import RtpEngine, RtpEngineSettings
from cti.edge.users import EdgeUsers
from cti.events import EventBus
from cti.ivr.announce import announcement_prompts
from cti.plugin_prompts import plugin_prompt_keys
from cti.plugins import PluginHost
from cti.plugins.services import PluginRouter, Services
from cti.store.db import Store
from cti.tlsfiles import check_tls_files, wss_files

log = logging.getLogger("cti.gateway")

#: Seconds the API's connections get to close when the gateway stops.
HTTP_SHUTDOWN_S = 5

CUSTOMERS_PER_WORKER = 2  # 4 pjsua calls per process, 2 per bridged customer call


def worker_specs(settings: Settings) -> list[WorkerSpec]:
    w = settings.workers
    # Every leg a worker dials passes the edge (record-routed, dialog-tracked): when
    # the worker dies, the edge ends them all.
    edge = f"sip:{settings.sip.ip}:{settings.sip.port}"
    return [
        WorkerSpec(
            worker_id=f"w{i + 1}", ip=w.ip, sip_port=w.sip_port_base + i,
            rtp_port=w.rtp_port_base + i * w.rtp_ports_per_worker,
            rtp_range=w.rtp_ports_per_worker, outbound_proxy=edge,
            rtp_timeout_s=w.rtp_timeout_s, session_expires_s=w.session_expires_s,
        )
        for i in range(w.count)
    ]


def prepare(settings: Settings) -> tuple[PluginHost, PromptLibrary]:
    """Everything that can fail on config, checked before anything starts."""
    source = str(settings.source)
    for key, path in (("store.path", settings.path(settings.store.path).parent),
                      ("runtime_dir", settings.path(settings.runtime_dir)),
                      ("prompts.cache_dir", settings.path(settings.prompts.cache_dir))):
        problem = unusable_dir(path)
        if problem:
            raise ConfigError(f"{source}: {key}: {path}: {problem}")
    for warning in check_tls_files(settings):
        log.warning("%s: %s", source, warning)
    plugins = PluginHost()
    plugins.load(settings.plugins, source, gateway=settings)
    override = settings.path(settings.prompts.override_dir)
    if override.exists() and not override.is_dir():
        raise ConfigError(f"{source}: prompts.override_dir: {override} is not a directory")
    prompts = PromptLibrary(settings.path(settings.prompts.cache_dir), override)
    langs = sorted({m.code for m in settings.ivr.languages})
    # Every prompt any flow may play, in every language (the language can be any).
    users: dict[tuple[str, str], str] = {}
    for number, flow in ivr_flows(settings).items():
        for key, node in flow.prompt_keys().items():
            for lang in langs:
                users.setdefault((lang, key), f"flow {number or 'standard'}, node {node!r}")
    plugin_files = {n: p.manifest.prompts for n, p in plugins.plugins.items()
                    if p.manifest.prompts is not None}
    try:
        plugin_keys = plugin_prompt_keys(plugin_files)
    except ValueError as e:
        raise ConfigError(f"{source}: plugins: {e}") from None
    for key in sorted(plugin_keys):
        for lang in langs:
            users.setdefault((lang, key), f"plugin {key.partition('.')[0]}")
    refs = set(users) | {(r.language, r.key) for r in announcement_prompts(langs)}
    missing = prompts.missing(sorted(refs))
    if missing:
        lang, key = missing[0]
        raise ConfigError(
            f"{source}: prompts: missing prompt file {lang}/{key}.wav in "
            f"{prompts.cache_dir} (expected a WAV for language {lang!r}, key {key!r}; "
            f"run `cti prompts build`)"
            + (f", used by {users[(lang, key)]}" if (lang, key) in users else "") + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
        )
    return plugins, prompts


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.plugins, self.prompts = prepare(settings)
        self.runtime_dir = settings.path(settings.runtime_dir)
        self.bus = EventBus()  # plugins' event types are declared on it at load
        self.store = Store(settings.path(settings.store.path))
        self.hub = Hub(self.bus, self.settings.http.ws_send_queue)
        specs = worker_specs(settings)
        # The edge adds it to every INVITE it relays to a worker (X-CTI-Edge); the
        # workers refuse INVITEs without it. New at every start.
        self.edge_secret = new_edge_secret()
        self.pool = WorkerPool(
            specs, self.runtime_dir / "workers.sock", self.runtime_dir,
            on_event=self._on_worker_event, on_up=self._on_worker_up,
            on_down=self._on_worker_down, restart_delay_s=settings.workers.restart_delay_s,
            edge_secret=self.edge_secret, fork_from_zygote=settings.workers.fork_from_zygote,
        )
        self.flow = CallFlow(settings, self.pool, self.bus, self.store, self.plugins,
                             self.prompts, self.hub.delivered)
        self.flow.edge_rotation = self._edge_rotation
        self.flow.monitors.phone_registered = self._phone_registered
        # Logins ask the live directory (the admin API changes it), not the YAML.
        self.auth = Authenticator(settings, self.store.sessions, self.flow.ctx.advisors)
        self.plugin_runtime = PluginRuntime(settings, self.plugins, self.flow, self.bus,
                                            self.store)
        self.edge = KamailioEdge(self._edge_settings(specs))
        self.admin = AdvisorAdmin(self.flow.ctx, self.flow.offers.apply, self.auth,
                                  EdgeUsers(self.edge))
        # The browser phone's media relay (webrtc.enabled), started before the edge.
        self.rtpengine = self._rtpengine()
        self.browser_phones = BrowserPhones(settings, self.flow.advisors.get)
        self.auth.on_end.append(self.browser_phones.revoke_soon)
        self.auth.on_user_end.append(self.browser_phones.revoke_advisor_soon)
        self.rpc: EdgeRpc | None = None
        # Away (phone_offline) while an advisor's phone has no registered contact.
        self.presence = PhonePresence(self.flow.ctx.distributor, self.flow.offers.apply,
                                      lambda: self.rpc)
        self._http: uvicorn.Server | None = None
        self._http_task: asyncio.Task[Any] | None = None
        self._lock: IO[str] | None = None
        self._rotation_tasks: set[asyncio.Task[None]] = set()
        self._edge_task: asyncio.Task[None] | None = None
        self._edge_watch: asyncio.Task[None] | None = None
        self.edge_liveness = EdgeLiveness()
        self._rtpengine_task: asyncio.Task[None] | None = None
        self._stopping = False
        self.started_at = time.time()
        self.loop_watch = LoopWatch()
        self.overload = OverloadGuard(settings.overload, self._set_overload_flag,
                                      lambda: self.loop_watch.lag_ms)

    def _rtpengine(self) -> RtpEngine | None:
        rtc = self.settings.webrtc
        if not rtc.enabled:
            return None
        return RtpEngine(RtpEngineSettings(
            media_ip=rtc.media_ip or self.settings.sip.ip, ng_port=rtc.ng_port,
            port_min=rtc.rtp_port_min, port_max=rtc.rtp_port_max,
            runtime_dir=self.runtime_dir / "rtpengine"))

    def _edge_settings(self, specs: list[WorkerSpec]) -> EdgeSettings:
        s = self.settings
        rtc = s.webrtc
        wss = wss_files(s)  # (a self-signed one is made here when none is configured)
        # The Origin a page of ours sends: https when the API serves TLS.
        web = "https" if s.http.tls is not None else "http"
        return EdgeSettings(
            webrtc=WebRtcEdge(ws_port=rtc.ws_port, ng_port=rtc.ng_port,
                              origins=[f"{web}://{s.http.host}:{s.http.port}"],
                              wss=None if wss is None else EdgeTls(rtc.wss_port, *wss))
            if rtc.enabled else None,
            ip=s.sip.ip, port=s.sip.port, runtime_dir=self.runtime_dir / "edge",
            realm=s.sip.realm, hotline_numbers=list(s.sip.hotlines),
            workers=[WorkerTarget(w.worker_id, w.ip, w.sip_port, CUSTOMERS_PER_WORKER)
                     for w in specs],
            # The live directory's (the config's seed and the admin API's changes).
            advisor_ha1=self.flow.ctx.advisors.sip_ha1s(),
            edge_secret=self.edge_secret,
            trunks=[TrunkTarget(
                name=t.name, host=t.host, port=t.port, transport=t.transport,
                allowed_prefixes=list(t.allowed_prefixes), username=t.username,
                password=t.secret(), realm=t.realm, caller_id=t.caller_id,
                asserted_identity=t.asserted_identity, max_calls=t.max_calls,
                register=t.register_)
                for t in s.trunks],
            accept_from=None if s.sip.accept_from == "any" else list(s.sip.accept_from),
            max_calls_per_source=s.sip.max_calls_per_source,
            call_attempts_per_source_per_minute=s.sip.call_attempts_per_source_per_minute,
            overload_retry_after_s=s.overload.retry_after_s,
            max_new_calls_per_second=s.overload.max_new_calls_per_second,
            flood_requests_per_s=s.sip.flood_requests_per_second,
            tls=None if s.sip.tls is None else EdgeTls(
                s.sip.tls.port, s.path(s.sip.tls.cert_file), s.path(s.sip.tls.key_file)),
        )

    def _http_config(self) -> uvicorn.Config:
        h, tls = self.settings.http, self.settings.http.tls
        # X-Forwarded-For only from configured proxies (uvicorn's default trusts
        # loopback, which let any local client pick its address for the limits).
        return uvicorn.Config(
            create_app(self), log_level="warning", lifespan="off", access_log=False,
            # The event socket sends the same small JSON to every client: compressing
            # it per client cost more CPU than the fan-out itself (docs/benchmarks.md).
            ws_per_message_deflate=False,
            # A stop must not wait on a client: a WebSocket whose peer never answers
            # the close frame held a test's gateway stop past 90 s. Whatever is still
            # open after this is cancelled.
            timeout_graceful_shutdown=HTTP_SHUTDOWN_S,
            proxy_headers=bool(h.trusted_proxies),
            forwarded_allow_ips=list(h.trusted_proxies) or None,
            # With http.tls the port speaks HTTPS only (and wss for the WebSocket).
            ssl_certfile=None if tls is None else self.settings.path(tls.cert_file),
            ssl_keyfile=None if tls is None else self.settings.path(tls.key_file))

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_runtime_dir(self.runtime_dir)
        http_sock = _bind_tcp(self.settings.http.host, self.settings.http.port)
        try:
            self.loop_watch.start()
            # Calls the last run died during (their row has no end) end now.
            closed = self.store.close_unended(time.time())
            if closed:
                log.warning("%d calls in flight when the gateway last stopped recorded "
                            "as ended (gateway_restart): %s", len(closed), ", ".join(closed))
            # Plugins are loaded and started before the edge takes a call.
            self.plugin_runtime.load()
            await self.plugin_runtime.start()
            # Who ran the hotline when: the audit has every start (and clean stop).
            await self.store.audit.record("gateway.start", None, {
                "pid": os.getpid(), "plugins": list(self.plugins.plugins),
                "calls_ended_by_restart": closed})
            await self.pool.start()
            if self.rtpengine is not None:
                await self.rtpengine.start()
                self._rtpengine_task = asyncio.create_task(supervise(
                    self.rtpengine, "media relay (rtpengine)", lambda: self._stopping,
                    _nothing, "browser phones have no audio until it is back"))
            await self.edge.start()
            self.rpc = self.edge.rpc
            self.browser_phones.rpc = self.rpc
            # The floor as it was: logins, and each advisor's chosen state.
            sessions = self.auth.restore()
            self.flow.offers.apply(restore_states(self.flow.distributor, self.store,
                                                  time.time()))
            for name, kept in self.store.advisor_states.all().items():
                if kept.reason == "recovery" and self.flow.recovery.on_break(name):
                    self.flow.recovery.resume(name, kept.at)
            if sessions:
                log.info("%d login sessions of the last run restored", sessions)
            self._edge_task = asyncio.create_task(supervise(
                self.edge, "SIP edge (kamailio)", lambda: self._stopping,
                self._edge_restored, "calls cannot reach the gateway until it is back"))
            self._edge_watch = asyncio.create_task(self._watch_edge())
            self.overload.start()
            if self.settings.routing.state_follows_phone:
                self.presence.start()
            self._http = uvicorn.Server(self._http_config())
            self._http_task = asyncio.create_task(self._http.serve(sockets=[http_sock]))
            while not self._http.started:
                if self._http_task.done():
                    raise RuntimeError("the HTTP server failed to start")
                await asyncio.sleep(0.01)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        self._stopping = True
        await self.overload.stop()
        await self.presence.stop()
        for task in (self._edge_watch, self._edge_task, self._rtpengine_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._http is not None:
            self._http.should_exit = True
            if self._http_task is not None:
                await asyncio.gather(self._http_task, return_exceptions=True)
        self.flow.hangup_all()
        await self.pool.stop()
        await self.browser_phones.close()
        await self.edge.stop()
        if self.rtpengine is not None:
            await self.rtpengine.stop()
        # Calls end first (plugins see their cti_call_ended), plugins stop last.
        await self.plugin_runtime.stop()
        if self._lock is not None:  # it had started
            try:
                await self.store.audit.record("gateway.stop", None, {"pid": os.getpid()})
            except sqlite3.Error as e:  # the store cannot write: stop all the same
                log.error("gateway.stop not audited: the store cannot write: %s", e)
        self.store.close()
        await self.loop_watch.stop()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @property
    def plugin_routers(self) -> list[PluginRouter]:
        return self.plugin_runtime.routers

    @property
    def plugin_services(self) -> dict[str, Services]:
        return self.plugin_runtime.services

    def listening(self) -> list[str]:
        s = self.settings
        web = "https" if s.http.tls is not None else "http"
        lines = [
            f"SIP edge     udp+tcp {s.sip.ip}:{s.sip.port}  hotline "
            + ", ".join(f"sip:{n}@{s.sip.ip}:{s.sip.port}" for n in s.sip.hotlines),
            f"HTTP API     {web}://{s.http.host}:{s.http.port}/api/v1  (docs: /docs)",
            f"WebSocket    {web.replace('http', 'ws')}://{s.http.host}:{s.http.port}/api/v1/ws",
        ]
        if s.sip.tls is not None:
            lines.insert(1, f"SIP edge     tls {s.sip.ip}:{s.sip.tls.port}")
        if s.webrtc.enabled:
            rtc = s.webrtc
            wss = f" wss://{s.sip.ip}:{rtc.wss_port}" if rtc.wss_port else ""
            lines.append(f"Browser SIP  ws://{s.sip.ip}:{rtc.ws_port}{wss}  media relay "
                         f"rtpengine {rtc.media_ip or s.sip.ip}:{rtc.rtp_port_min}-"
                         f"{rtc.rtp_port_max}")
        for link in self.pool.links.values():
            lines.append(f"media worker {link.worker_id} {link.spec.ip}:{link.spec.sip_port}"
                         f" pid {link.process.pid if link.process else '-'}")
        return lines

    def health(self) -> dict[str, Any]:
        errors = self.plugins.error_counts()
        reasons: list[str] = []
        edge_up = self.edge.alive
        answering = edge_up and self.edge_liveness.answering
        if not edge_up:
            reasons.append("the SIP edge (Kamailio) is down")
        elif not answering:
            reasons.append(f"the SIP edge (Kamailio) does not answer SIP "
                           f"({self.edge_liveness.misses} probes unanswered)")
        rtp = self.rtpengine
        if rtp is not None and not rtp.alive:
            reasons.append("the media relay for browser phones (rtpengine) is down")
        down = [w.worker_id for w in self.pool.links.values() if not w.up]
        if down:
            reasons.append(f"media workers down: {', '.join(down)}")
        # "down": no call can be answered (no edge, or no worker); "degraded": calls
        # are answered but something is wrong.
        out = not answering or len(down) == len(self.pool.links)
        store = self.store.spool.status()
        if not store["ok"]:
            reasons.append(f"store: {store['pending']} writes not written"
                           + (f" ({store['error']})" if store["error"] else ""))
        loop = self.loop_watch.status()
        if loop["lag_ms"] > DEGRADED_LAG_MS:
            reasons.append(f"event loop lag {loop['lag_ms']:.0f} ms")
        overload = self.overload.status()
        if overload["shedding"]:
            reasons.append(f"overloaded, new hotline calls refused (503 Lines busy): "
                           f"{overload['reason']}")
        return {
            "status": "down" if out else "degraded" if reasons else "ok",
            # "reason": the first of "reasons" (every one), while not ok.
            **({"reason": reasons[0]} if reasons else {}),
            "reasons": reasons,
            "edge": {"up": edge_up, "answering": answering, "restarts": self.edge.restarts,
                     "pid": self.edge.pid, "last_answer": self.edge_liveness.last_answer},
            # null when webrtc is off (no browser phones, no relay).
            "rtpengine": None if rtp is None else {
                "up": rtp.alive, "restarts": rtp.restarts, "pid": rtp.pid},
            "uptime_s": round(time.time() - self.started_at, 1),
            "active_calls": len(self.flow.calls),
            "workers": {w.worker_id: {"up": w.up, "restarts": w.restarts,
                                      "pid": w.process.pid if w.process else None}
                        for w in self.pool.links.values()},
            # A plugin that raises does not stop calls, but it shows here.
            "plugins": {name: {"errors": sum(n for (p, _), n in errors.items() if p == name)}
                        for name in self.plugins.plugins},
            # A failed write never strands a call: it is queued (cti/store/spool.py).
            "store": store,
            "event_loop": loop,
            # Refusing new calls early (cti/controller/overload.py).
            "overload": overload,
        }

    async def _set_overload_flag(self, on: bool | None) -> int | None:
        if self.rpc is None:
            return None
        try:
            return await self.rpc.set_overload(on)
        except EdgeRpcError as exc:
            log.debug("overload flag not set at the edge: %s", exc)
            return None

    # ---------------------------------------------------------------- edge
    async def _watch_edge(self) -> None:
        """A Kamailio that is alive but answers no SIP (stopped, stuck) is as good as
        dead: after a few unanswered probes in a row kill it, and the supervisor
        above starts a new one."""
        s = self.settings.sip
        while not self._stopping:
            await asyncio.sleep(PROBE_INTERVAL_S)
            pid = self.edge.pid
            if not self.edge.alive:
                self.edge_liveness.reset()  # the supervisor is on it
                continue
            self.edge_liveness.answered(await probe_once(s.ip, s.port, self.edge_secret))
            if self.edge_liveness.hung and self.edge.pid == pid:
                log.error("SIP edge (kamailio) pid=%s answered no SIP OPTIONS on %s:%d "
                          "for %d probes: killing it to start a new one", pid, s.ip,
                          s.port, self.edge_liveness.misses)
                self.edge.kill()
                self.edge_liveness.reset()

    async def _edge_restored(self) -> None:
        """A new Kamailio knows only its rendered files: the registrations it loads
        from its database, the trunks it registers with from its uac_reg table; the
        dispatcher's view of the workers is ours to give it again."""
        rooms = self.flow.rooms
        for link in self.pool.links.values():
            await self._set_dispatch(
                link, link.up and link.worker_id not in rooms.out_of_rotation)
        await self.browser_phones.restore()

    # ------------------------------------------------------------- workers
    def _on_worker_event(self, link: WorkerLink, msg: dict[str, Any]) -> None:
        self.flow.on_worker_event(link, msg)

    async def _on_worker_up(self, link: WorkerLink) -> None:
        await self.flow.on_worker_up(link)
        await self._set_dispatch(link, True)

    async def _on_worker_down(self, link: WorkerLink) -> None:
        await self._set_dispatch(link, False)
        advisor_dialogs = await self.flow.on_worker_down(link)
        if self.rpc is not None:
            # The dialogs went through the edge: it sends callers and advisors the
            # BYE the dead worker cannot, and frees the worker's dispatcher slots.
            try:
                ended = await self.rpc.end_worker_dialogs(link.worker_id)
                for sip_call_id in advisor_dialogs:
                    ended += await self.rpc.end_dialog(sip_call_id)
                log.info("edge ended %d dialogs of worker=%s", ended, link.worker_id)
            except Exception as e:
                log.warning("could not end dialogs of worker=%s: %s", link.worker_id, e)

    def _edge_rotation(self, worker_id: str, active: bool) -> None:
        """From the flow: a consult filled a worker up (False) or it has room again."""
        link = self.pool.get(worker_id)
        if link is not None:
            task = asyncio.get_running_loop().create_task(self._set_dispatch(link, active))
            self._rotation_tasks.add(task)
            task.add_done_callback(self._rotation_tasks.discard)

    async def _phone_registered(self, name: str) -> bool | None:
        """Whether a user's phone is registered at the edge; None when the edge cannot
        say now (the dial then tells)."""
        if self.rpc is None:
            return None
        try:
            return await self.rpc.registered(name)
        except Exception as e:
            log.warning("registration of %s not known: %s", name, e)
            return None

    async def _set_dispatch(self, link: WorkerLink, active: bool) -> None:
        if self.rpc is None:
            return
        try:
            await self.rpc.set_worker_state(link.worker_id, active)
        except Exception as e:  # the edge may be stopping; the OPTIONS probe still works
            log.warning("could not set worker=%s active=%s at the edge: %s",
                        link.worker_id, active, e)


async def _nothing() -> None:
    """rtpengine keeps no state of ours: a restarted one needs nothing back."""


def _lock_runtime_dir(runtime_dir: Path) -> IO[str]:
    """One gateway per runtime dir: a second one would delete the first one's sockets."""
    f = open(runtime_dir / "cti.lock", "a+")  # noqa: SIM115 (held until stop)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        other = f.read().strip() or "?"
        f.close()
        raise ConfigError(f"runtime_dir: {runtime_dir} is in use by another cti serve "
                          f"(pid {other}); stop it or give this one its own runtime_dir") from None
    f.truncate(0)
    f.write(str(os.getpid()))
    f.flush()
    return f


def _bind_tcp(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"http: cannot listen on {host}:{port}: {os.strerror(e.errno or 0)}"
                          ) from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock

