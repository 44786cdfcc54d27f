"""What the API needs from the gateway, declared here as Protocols.

The routes, the WebSocket commands and /metrics type against ``GatewayApi``,
not against ``cti.controller.gateway.Gateway``: the gateway builds the app
(it imports the API), so the API must not import the gateway back. Mypy
checks that the gateway fits where it hands itself to ``create_app``.

Members are read-only properties so that the gateway may hold a subtype
(a ``dict`` where a ``Mapping`` is asked for, the concrete flow for
``FlowApi``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

from cti.api.auth import Authenticator
from cti.api.ws import Hub
from cti.config import AdvisorSettings, Settings
from cti.controller.webphone import BrowserPhones
from cti.core.advisors import AdvisorDirectory
from cti.core.skills import Skills
from cti.events import EventBus
from cti.plugins.host import PluginHost
from cti.plugins.services import PluginRouter, Services
from cti.routing import Distributor
from cti.store.db import Store

TransferKind = Literal["blind", "consult"]
TargetType = Literal["queue", "advisor", "external"]


class ActiveCall(Protocol):
    """A call the flow is handling, as the floor statistics read it."""

    @property
    def state(self) -> str: ...
    @property
    def queued_at(self) -> float | None: ...
    @property
    def answered_at(self) -> float | None: ...
    @property
    def language(self) -> str | None: ...
    @property
    def topic(self) -> str | None: ...


class CallsApi(Protocol):
    def get(self, call_id: str) -> ActiveCall | None: ...
    def all(self) -> Iterable[ActiveCall]: ...


class SkillsApi(Protocol):
    def get(self, name: str) -> Skills: ...


class RecoveryApi(Protocol):
    """Recovery breaks (cti.controller.recovery.RecoveryBreaks)."""

    def start(self, advisor: str, seconds: float, *, call_id: str | None, by: str | None,
              why: str) -> None: ...
    def until(self, advisor: str) -> float | None: ...


class QualityApi(Protocol):
    """The legs' RTP figures (cti.controller.quality.LineQuality)."""

    def prometheus_lines(self) -> list[str]: ...


class FlowApi(Protocol):
    """The call flow: who has which call, call control, advisors' state and skills.

    Unknown calls raise KeyError, refusals ValueError (cti/api/actions.py maps
    them to 404 and 409)."""

    @property
    def calls(self) -> CallsApi: ...
    @property
    def distributor(self) -> Distributor: ...
    @property
    def skills(self) -> SkillsApi: ...
    @property
    def advisors(self) -> AdvisorDirectory:
        """Who works here, live (not ``settings.advisors``: only the seed)."""
    @property
    def flags(self) -> Mapping[str, bool]: ...
    @property
    def quality(self) -> QualityApi: ...

    def active_calls(self) -> list[dict[str, Any]]: ...
    def advisor_of(self, call_id: str) -> str | None: ...
    def consulted(self, call_id: str) -> str | None: ...
    def handled_by(self, call_id: str, advisor: str) -> bool: ...
    def accept_offer(self, call_id: str, advisor: str) -> None: ...
    def reject_offer(self, call_id: str, advisor: str) -> None: ...
    def hangup_call(self, call_id: str, by: str) -> None: ...
    def hold_call(self, call_id: str, by: str, on: bool) -> None: ...
    def pause_recording(self, call_id: str, by: str, paused: bool) -> str | None: ...
    async def monitor_call(self, call_id: str, by: str, mode: str,
                           address: str | None = None) -> dict[str, str]: ...
    async def monitor_mode(self, call_id: str, by: str, mode: str,
                           address: str | None = None) -> dict[str, str]: ...
    async def monitor_stop(self, call_id: str, by: str, address: str | None = None
                           ) -> None: ...
    def transfer_call(self, call_id: str, by: str, kind: TransferKind,
                      target_type: TargetType, target: str) -> None: ...
    def consult_complete(self, call_id: str, by: str) -> None: ...
    def consult_cancel(self, call_id: str, by: str) -> None: ...
    def wrap_up(self, call_id: str, advisor: str, code: str, note: str,
                distressing: bool = False) -> None: ...
    @property
    def recovery(self) -> RecoveryApi: ...
    def set_advisor_state(self, advisor: str, state: str, reason: str | None = None) -> None: ...
    async def update_skills(self, advisor: str, skills: Skills, by: str | None = None,
                            address: str | None = None) -> None: ...
    async def set_flag(self, name: str, value: bool, by: str | None = None,
                       address: str | None = None) -> None: ...


class AdminApi(Protocol):
    """Who works here (cti/controller/admin.py); raises AdminError."""

    async def add(self, name: str, password: str, fields: Mapping[str, Any],
                  by: str, address: str | None = None) -> AdvisorSettings: ...
    async def update(self, name: str, fields: Mapping[str, Any], password: str | None,
                     by: str, address: str | None = None) -> AdvisorSettings: ...
    async def remove(self, name: str, by: str, address: str | None = None) -> None: ...


class WorkerApi(Protocol):
    """One media worker, as /metrics reports it."""

    @property
    def worker_id(self) -> str: ...
    @property
    def up(self) -> bool: ...
    @property
    def restarts(self) -> int: ...


class PoolApi(Protocol):
    @property
    def links(self) -> Mapping[str, WorkerApi]: ...


class PresenceApi(Protocol):
    """State follows the phone (cti.controller.presence.PhonePresence)."""

    async def refresh(self) -> None: ...


class GatewayApi(Protocol):
    """The gateway as the API sees it (cti/controller/gateway.py implements it)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def auth(self) -> Authenticator: ...
    @property
    def hub(self) -> Hub: ...
    @property
    def bus(self) -> EventBus: ...
    @property
    def store(self) -> Store: ...
    @property
    def flow(self) -> FlowApi: ...
    @property
    def admin(self) -> AdminApi: ...
    @property
    def pool(self) -> PoolApi: ...
    @property
    def presence(self) -> PresenceApi: ...
    @property
    def started_at(self) -> float: ...
    @property
    def plugins(self) -> PluginHost: ...
    @property
    def plugin_services(self) -> Mapping[str, Services]:
        """Each loaded plugin's services handle (its metrics for /metrics)."""
    @property
    def plugin_routers(self) -> Sequence[PluginRouter]:
        """The routers plugins added in cti_load, with their rules (full paths)."""

    @property
    def browser_phones(self) -> BrowserPhones:
        """Short-lived SIP credentials of the /agent pages' browser phones."""

    def health(self) -> dict[str, Any]: ...
