"""What every call-flow service shares: its dependencies and the media/bus helpers.

:class:`FlowContext` is built once by :class:`cti.controller.flow.CallFlow` and
handed to every service's constructor. It owns no call logic: it holds the
explicit dependencies (settings, worker pool, bus, store, plugin host, prompts,
the call registry, skills, the distributor, the gateway-wide IVR flags) and the
helpers that turn a decision into a worker command or an event. Every log line
carries the call id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol

from cti.config import Settings
from cti.controller.calls import Call, CallRegistry, Leg
from cti.controller.durable import restore_skills, start_flags
from cti.controller.prompts import PromptLibrary
from cti.controller.skills import SkillBook
from cti.controller.workers import WorkerCommandError, WorkerSpec
from cti.core.advisors import AdvisorDirectory
from cti.events import EventBus, make_event
from cti.plugins import PluginHost
from cti.routing import Distributor, EscalationStep
from cti.store.db import Store

log = logging.getLogger("cti.flow")

# Ended calls whose advisors are remembered for their wrap-up.
RECENT_CALLS = 5000


def make_distributor(settings: Settings, skills: SkillBook) -> Distributor:
    r = settings.routing
    return Distributor(
        skills.profiles(), strategy=r.strategy, offer_timeout_s=r.offer_timeout_s,
        wrap_up_s=r.wrap_up_s, max_missed=r.max_missed, aging_per_s=r.aging_per_minute / 60,
        escalation={
            topic: [EscalationStep(s.after_s, s.min_language, s.min_topic, s.escalate)
                    for s in steps]
            for topic, steps in r.escalation.items()
        },
    )


class MediaWorker(Protocol):
    """What the flow uses of one media worker's link (cti.controller.workers.WorkerLink)."""

    @property
    def worker_id(self) -> str: ...
    @property
    def up(self) -> bool: ...
    @property
    def spec(self) -> WorkerSpec: ...
    async def command(self, cmd: str, **fields: Any) -> dict[str, Any]: ...


class MediaWorkers(Protocol):
    """What the flow uses of the worker pool (cti.controller.workers.WorkerPool)."""

    @property
    def links(self) -> Mapping[str, MediaWorker]: ...
    def get(self, worker_id: str) -> MediaWorker | None: ...


class CallControlError(ValueError):
    """A call-control request that cannot be carried out; str() is the reason."""


class RecentAdvisors:
    """Advisors who talked to a call (also before a transfer): who may wrap it up.

    Bounded: the oldest calls are forgotten first (dict insertion order).
    """

    def __init__(self, limit: int = RECENT_CALLS) -> None:
        self._by_call: dict[str, set[str]] = {}
        self._limit = limit

    def add(self, call_id: str, advisor: str) -> None:
        self._by_call.setdefault(call_id, set()).add(advisor)
        while len(self._by_call) > self._limit:
            self._by_call.pop(next(iter(self._by_call)))

    def talked_to(self, call_id: str, advisor: str) -> bool:
        return advisor in self._by_call.get(call_id, ())


class FlowContext:
    """The shared dependencies of the call-flow services, and their helpers."""

    def __init__(
        self,
        settings: Settings,
        pool: MediaWorkers,
        bus: EventBus,
        store: Store,
        plugins: PluginHost,
        prompts: PromptLibrary,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.bus = bus
        self.store = store
        self.plugins = plugins
        self.prompts = prompts
        self.calls = CallRegistry()
        #: Gateway-wide flags flows branch on (ivr.flags; supervisors change them live).
        #: Stored values (a supervisor's change before a restart) win over the config's.
        self.flags: dict[str, bool] = start_flags(settings.ivr.flags, store)
        #: Who works here, live: the config's seed with the admin API's changes over it.
        self.advisors = AdvisorDirectory.load(settings.advisors, store.advisors.all())
        self.skills = SkillBook(self.advisors.all())
        restore_skills(self.skills, store)
        #: A change is stored, then applied: in the same order when two requests race.
        self.state_lock = asyncio.Lock()
        # The distributor decides when an offer times out (OfferRevoked).
        self.distributor = make_distributor(settings, self.skills)
        self.recent_advisors = RecentAdvisors()
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------ lookups
    def active(self, call_id: str) -> Call:
        """The active call, or KeyError (the API turns it into a 404)."""
        call = self.calls.get(call_id)
        if call is None:
            raise KeyError(f"no active call {call_id}")
        return call

    def advisor_uri(self, advisor: str) -> str:
        """An advisor's phone, reached through the edge's registrar."""
        return f"sip:{advisor}@{self.settings.sip.ip}:{self.settings.sip.port}"

    def transfer_uri(self, target: str) -> str:
        """A directory key's URI, or the target itself (a sip: URI)."""
        entry = next((d for d in self.settings.directory if d.key == target), None)
        return entry.uri if entry is not None else target

    def add_leg(self, call: Call, leg: Leg) -> None:
        """A new leg of the call, found again by its worker's events."""
        call.legs.append(leg)
        self.calls.bind_leg(call, leg)

    # ------------------------------------------------------------ commands
    def spawn(self, coro: Coroutine[Any, Any, Any], call_id: str | None = None) -> None:
        """Run a coroutine in the background; a failure is logged with the call id."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # keep a reference: the loop holds tasks only weakly

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and (exc := t.exception()):
                log.error("flow task failed call_id=%s: %s", call_id, exc)

        task.add_done_callback(done)

    def send(self, call: Call, cmd: str, **fields: Any) -> None:
        """Fire a command at the call's worker; failures are logged with the call id."""
        self.send_to(call.worker, call, cmd, **fields)

    def send_to(self, worker: str, call: Call, cmd: str, **fields: Any) -> None:
        """Fire a command at a worker about one of the call's legs (consults use two)."""
        link = self.pool.get(worker)
        if link is None or not link.up:
            log.warning("worker down, dropped %s call_id=%s", cmd, call.call_id)
            return

        async def run() -> None:
            try:
                await link.command(cmd, **fields)
            except WorkerCommandError as e:
                # A hang-up racing the far end's own BYE is normal, not a warning; so
                # is a record_stop racing the worker's own end of the recording (the
                # caller's leg ended it; record.done follows anyway).
                level = logging.DEBUG if any(
                    w in str(e) for w in ("unknown leg", "unknown recording")) else logging.WARNING
                log.log(level, "command failed call_id=%s: %s", call.call_id, e)

        self.spawn(run(), call.call_id)

    async def dial_leg(self, call: Call, leg: Leg, uri: str, worker: str | None = None,
                       headers: dict[str, str] | None = None,
                       from_uri: str | None = None) -> bool:
        """Dial a new leg of the call (from its worker unless told); False (logged) if
        that failed. ``from_uri``: the From (name-addr) instead of the worker's."""
        link = self.pool.get(worker or call.worker)
        try:
            if link is None or not link.up:
                raise WorkerCommandError("worker gone")
            extra = {"from": from_uri} if from_uri else {}
            await link.command("dial", leg=leg.leg_id, uri=uri,
                               headers={"X-CTI-Call-ID": call.call_id, **(headers or {})},
                               **extra)
            return True
        except WorkerCommandError as e:
            log.warning("dial failed call_id=%s role=%s uri=%s: %s", call.call_id, leg.role,
                        uri, e)
            leg.state = "disconnected"
            return False

    def play(self, call: Call, play_id: str, refs: list[tuple[str, str]], kind: str,
             **extra: Any) -> None:
        """Play prompts to the caller and say so on the bus (ivr.prompt)."""
        if call.bridge_after_play:  # it replaces the play the bridge waited for
            call.bridge_after_play = play_id
        self.send(call, "play", leg=call.customer.leg_id, loop=False, play_id=play_id,
                  file=str(self.prompts.sequence(refs)))
        self.publish("ivr.prompt", call, {"play_id": play_id, "kind": kind,
                                          "prompts": [f"{lg}/{key}" for lg, key in refs],
                                          **extra})

    def play_music(self, call: Call) -> None:
        """Looping music to the caller (waiting, on hold, while a transfer rings)."""
        self.send(call, "play", leg=call.customer.leg_id, loop=True, play_id="music",
                  file=str(self.prompts.music()))

    # ------------------------------------------------------------ events
    def publish(self, type_: str, call: Call | None, data: dict[str, Any],
                advisor: str | None = None) -> int:
        """Publish about a call (its advisor unless told); returns the sequence number."""
        return self.publish_id(type_, call.call_id if call else None, data,
                               advisor=advisor or (call.advisor if call else None))

    def publish_id(self, type_: str, call_id: str | None, data: dict[str, Any],
                   advisor: str | None = None) -> int:
        """Publish on the bus (WebSocket, plugins); also for calls that already ended."""
        ev = make_event(type_, data, call_id=call_id, advisor=advisor)
        self.bus.publish(ev)
        self.plugins.call("cti_event", call_id=ev["call_id"], event=ev)
        return ev["seq"]
