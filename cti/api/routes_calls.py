"""Calls: active list, detail with decision trace, call control, wrap-up, records.

An advisor reaches only calls where ``flow.advisor_of(call)`` is themself (a
wrap-up or a detail also after the call went on to someone else); any other
call is a 404, as if it did not exist. Supervisors and admins reach every call.
"""

# No `from __future__ import annotations`: FastAPI must see the real types.
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query, Request, status

from cti.api import actions
from cti.api.deps import GatewayApi
from cti.api.guard import Auth
from cti.api.roles import V1
from cti.api.schemas import (
    HoldRequest,
    MonitorRequest,
    MonitorState,
    RecordingRequest,
    RecordingState,
    TransferRequest,
    WrapUpRequest,
)
from cti.store.reports import MAX_LIMIT, RecordQuery, Reports

#: Call ids are at most 64 characters (as in the WebSocket commands).
CallIdPath = Annotated[str, Path(max_length=64)]
#: A search term of /records.
Term = Annotated[str | None, Query(max_length=64)]

_REFUSALS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such call (or not yours)"},
    409: {"description": "the call cannot do that now (one-line reason)"},
}


def _do(fn: Callable[[], None]) -> dict[str, bool]:
    try:
        fn()
    except actions.ActionError as e:
        raise HTTPException(e.status, e.message) from None
    return {"ok": True}


def parse_time(value: str | None, name: str) -> float | None:
    """Unix seconds, or an ISO 8601 date / date-time (local time if no offset)."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise HTTPException(422,
                            f"{name}: expected unix seconds or an ISO 8601 date") from None


def register(app: FastAPI, gw: GatewayApi, reports: Reports) -> None:

    @app.get(f"{V1}/calls")
    async def active_calls(p: Auth) -> list[dict[str, Any]]:
        """Advisors: their own; supervisors, admins and coaches (who monitor live
        calls: POST .../monitor): every call, with who monitors it."""
        calls = gw.flow.active_calls()
        if not p.is_supervisor and p.role != "coach":
            calls = [c for c in calls if c["advisor"] == p.user]
        return calls

    @app.get(f"{V1}/calls/{{call_id}}", responses={404: _REFUSALS[404]})
    async def call_detail(call_id: CallIdPath, p: Auth) -> dict[str, Any]:
        """The call (live and stored), its offers with decision traces, its wrap-up."""
        rec = gw.store.get_call(call_id)
        active = next((c for c in gw.flow.active_calls() if c["call_id"] == call_id), None)
        mine = p.is_supervisor or gw.flow.handled_by(call_id, p.user)
        if (rec is None and active is None) or not mine:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such call")
        return {"active": active, "record": dataclasses.asdict(rec) if rec else None,
                "offers": gw.store.offers(call_id), "wrap_up": gw.store.wrap_up(call_id)}

    @app.post(f"{V1}/calls/{{call_id}}/hangup", responses=_REFUSALS)
    async def hangup(call_id: CallIdPath, p: Auth) -> dict[str, bool]:
        return _do(lambda: actions.hangup(gw, p, call_id))

    @app.post(f"{V1}/calls/{{call_id}}/hold", responses=_REFUSALS)
    async def hold(call_id: CallIdPath, body: HoldRequest, p: Auth) -> dict[str, bool]:
        """Hold (the caller hears music) or take the caller back."""
        return _do(lambda: actions.hold(gw, p, call_id, body.on))

    @app.post(f"{V1}/calls/{{call_id}}/recording", responses={
        404: _REFUSALS[404], 409: {"description": "the call is not being recorded"}})
    async def recording(call_id: CallIdPath, body: RecordingRequest, p: Auth) -> RecordingState:
        """Pause the call's recording (card numbers, passport data: silence in the
        file, the stretch listed in its index) or resume it."""
        try:
            state = actions.pause_recording(gw, p, call_id, body.paused)
        except actions.ActionError as e:
            raise HTTPException(e.status, e.message) from None
        return RecordingState(state=state)

    @app.post(f"{V1}/calls/{{call_id}}/transfer", responses=_REFUSALS)
    async def transfer(call_id: CallIdPath, body: TransferRequest, p: Auth) -> dict[str, bool]:
        """Blind or consult, to a queue (topic), an advisor or a directory entry."""
        return _do(lambda: actions.transfer(gw, p, call_id, body.kind, body.target_type,
                                            body.target))

    @app.post(f"{V1}/calls/{{call_id}}/consult/complete", responses=_REFUSALS)
    async def consult_complete(call_id: CallIdPath, p: Auth) -> dict[str, bool]:
        """The caller goes to the consulted party; the advisor leaves the call."""
        return _do(lambda: actions.consult_complete(gw, p, call_id))

    @app.post(f"{V1}/calls/{{call_id}}/consult/cancel", responses=_REFUSALS)
    async def consult_cancel(call_id: CallIdPath, p: Auth) -> dict[str, bool]:
        """End the consult; the advisor is back with the caller."""
        return _do(lambda: actions.consult_cancel(gw, p, call_id))

    async def _monitor(call_id: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await fn()
        except KeyError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such call") from None
        except ValueError as e:  # CallControlError: one line, e.g. no free line
            raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None

    def _address(request: Request) -> str | None:
        return request.client.host if request.client else None

    @app.post(f"{V1}/calls/{{call_id}}/monitor", responses={
        404: {"description": "no such call"},
        409: {"description": "not talking to an advisor, your phone is not registered, "
                             "or the call's media worker has no free line"}})
    async def monitor(call_id: CallIdPath, body: MonitorRequest, p: Auth,
                      request: Request) -> MonitorState:
        """Listen to a live call (your phone rings: you hear the caller and the
        advisor, nobody hears you), whisper (the advisor hears you) or barge (both
        do). Again while monitoring: changes the mode. Audited before this answers;
        the outcome of the ringing comes as ``call.monitor`` events."""
        st = await _monitor(call_id, lambda: gw.flow.monitor_call(
            call_id, p.user, body.mode, _address(request)))
        return MonitorState(**st)

    @app.patch(f"{V1}/calls/{{call_id}}/monitor", responses={
        404: {"description": "no such call"}, 409: {"description": "you are not monitoring it"}})
    async def monitor_mode(call_id: CallIdPath, body: MonitorRequest, p: Auth,
                           request: Request) -> MonitorState:
        """Change the mode of your monitor of the call."""
        st = await _monitor(call_id, lambda: gw.flow.monitor_mode(
            call_id, p.user, body.mode, _address(request)))
        return MonitorState(**st)

    @app.delete(f"{V1}/calls/{{call_id}}/monitor", responses={
        404: {"description": "no such call"}, 409: {"description": "you are not monitoring it"}})
    async def monitor_stop(call_id: CallIdPath, p: Auth, request: Request) -> dict[str, bool]:
        """Stop monitoring: your phone is hung up, the call goes on."""
        await _monitor(call_id, lambda: gw.flow.monitor_stop(call_id, p.user,
                                                             _address(request)))
        return {"ok": True}

    @app.post(f"{V1}/calls/{{call_id}}/offer/accept", responses=_REFUSALS)
    async def offer_accept(call_id: CallIdPath, p: Auth) -> dict[str, bool]:
        return _do(lambda: actions.accept_offer(gw, p, call_id))

    @app.post(f"{V1}/calls/{{call_id}}/offer/reject", responses=_REFUSALS)
    async def offer_reject(call_id: CallIdPath, p: Auth) -> dict[str, bool]:
        """Stop the ringing; the next advisor gets the call."""
        return _do(lambda: actions.reject_offer(gw, p, call_id))

    @app.post(f"{V1}/calls/{{call_id}}/wrap-up",
            responses={**_REFUSALS, 422: {"description": "unknown wrap-up code"}})
    async def wrap_up(call_id: CallIdPath, body: WrapUpRequest, p: Auth) -> dict[str, bool]:
        """A code from GET /wrap-up-codes and a note; the advisor is available again."""
        return _do(lambda: actions.wrap_up(gw, p, call_id, body.code, body.note,
                                           body.distressing))

    @app.get(f"{V1}/records")
    async def records(
        p: Auth,
        number: Term = None, advisor: Term = None, topic: Term = None,
        since: Annotated[str | None, Query(description="unix seconds or ISO date",
                                           max_length=64)] = None,
        until: Annotated[str | None, Query(description="unix seconds or ISO date",
                                           max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    ) -> list[dict[str, Any]]:
        """Ended calls, newest first (advisors: only their own)."""
        q = RecordQuery(number=number or None, advisor=advisor or None, topic=topic or None,
                        since=parse_time(since, "since"), until=parse_time(until, "until"),
                        limit=limit, own=None if p.is_supervisor else p.user)
        return reports.records(q)

