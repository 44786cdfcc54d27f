"""Call actions shared by the REST routes and the WebSocket commands.

One place decides who may act on which call and turns the flow's refusals into
one-line errors, so REST and WebSocket follow the same rules.
"""

from __future__ import annotations

import logging
from typing import Any

from cti.api.auth import Principal
from cti.api.deps import GatewayApi, TargetType, TransferKind

log = logging.getLogger("cti.api")


class ActionError(Exception):
    """A refused request: an HTTP status for REST, the message for both."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def owner_of(gw: GatewayApi, call_id: str) -> str | None:
    try:
        return gw.flow.advisor_of(call_id)
    except KeyError:
        return None


def check_call(gw: GatewayApi, p: Principal, call_id: str) -> str | None:
    """The call's advisor, if `p` may act on the call; else ActionError 404.

    An advisor gets the same 404 for another advisor's call as for no call at
    all: the API does not reveal which calls exist. For supervisors the flow
    itself says whether the call exists (KeyError -> 404).
    """
    owner = owner_of(gw, call_id)
    if not p.is_supervisor and owner != p.user:
        raise ActionError(404, "no such call")
    return owner


def _run(call_id: str, what: str, fn: Any, *args: Any) -> Any:
    """Call a flow method; KeyError -> 404, a refusal (ValueError) -> 409."""
    try:
        return fn(*args)
    except KeyError:
        raise ActionError(404, "no such call") from None
    except ValueError as e:  # CallControlError is a ValueError
        log.info("%s refused call_id=%s: %s", what, call_id, e)
        raise ActionError(409, str(e) or f"{what} refused") from None


def acting_advisor(gw: GatewayApi, p: Principal, call_id: str) -> str:
    """Whose wrap-up or offer it is: the advisor themself, or the call's advisor
    when a supervisor acts for them."""
    owner = check_call(gw, p, call_id)
    if p.is_supervisor:
        if owner is None:
            exists = gw.flow.calls.get(call_id) or gw.store.get_call(call_id)
            raise ActionError(409 if exists else 404,
                              "the call has no advisor" if exists else "no such call")
        return owner
    return p.user


def hangup(gw: GatewayApi, p: Principal, call_id: str) -> None:
    check_call(gw, p, call_id)
    _run(call_id, "hangup", gw.flow.hangup_call, call_id, p.user)


def hold(gw: GatewayApi, p: Principal, call_id: str, on: bool) -> None:
    check_call(gw, p, call_id)
    _run(call_id, "hold", gw.flow.hold_call, call_id, p.user, on)


def pause_recording(gw: GatewayApi, p: Principal, call_id: str, paused: bool) -> str:
    """Pause (card numbers, passport data: silence in the file) or resume the call's
    recording; its state after. 409 if the call is not being recorded."""
    check_call(gw, p, call_id)
    state: str | None = _run(call_id, "recording", gw.flow.pause_recording, call_id, p.user,
                             paused)
    if state is None:
        raise ActionError(409, "the call is not being recorded")
    return state


def transfer(gw: GatewayApi, p: Principal, call_id: str, kind: TransferKind,
             target_type: TargetType, target: str) -> None:
    check_call(gw, p, call_id)
    _run(call_id, "transfer", gw.flow.transfer_call, call_id, p.user, kind, target_type,
         target)


def consult_complete(gw: GatewayApi, p: Principal, call_id: str) -> None:
    check_call(gw, p, call_id)
    _run(call_id, "consult.complete", gw.flow.consult_complete, call_id, p.user)


def consult_cancel(gw: GatewayApi, p: Principal, call_id: str) -> None:
    check_call(gw, p, call_id)
    _run(call_id, "consult.cancel", gw.flow.consult_cancel, call_id, p.user)


def _offered_to(gw: GatewayApi, p: Principal, call_id: str) -> str:
    """Who answers for the offer: the advisor it rings for (also a colleague
    consulted about the call), or the call's advisor when a supervisor acts."""
    if not p.is_supervisor and gw.flow.consulted(call_id) == p.user:
        return p.user
    return acting_advisor(gw, p, call_id)


def accept_offer(gw: GatewayApi, p: Principal, call_id: str) -> None:
    _run(call_id, "offer.accept", gw.flow.accept_offer, call_id,
         _offered_to(gw, p, call_id))


def reject_offer(gw: GatewayApi, p: Principal, call_id: str) -> None:
    _run(call_id, "offer.reject", gw.flow.reject_offer, call_id,
         _offered_to(gw, p, call_id))


def wrap_up(gw: GatewayApi, p: Principal, call_id: str, code: str, note: str,
            distressing: bool = False) -> None:
    if p.is_supervisor:
        advisor = acting_advisor(gw, p, call_id)
    elif gw.flow.handled_by(call_id, p.user):  # also after the call went on elsewhere
        advisor = p.user
    else:
        raise ActionError(404, "no such call")
    codes = [c.code for c in gw.settings.wrap_up.codes]
    if code not in codes:
        raise ActionError(422, f"unknown wrap-up code {code!r} (expected one of "
                               f"{', '.join(codes)})")
    _run(call_id, "wrap_up", gw.flow.wrap_up, call_id, advisor, code, note, distressing)


def set_state(gw: GatewayApi, p: Principal, state: str, reason: str | None) -> None:
    """An advisor's own state; `away` needs a reason from config away_reasons."""
    if state == "away" and reason is not None and reason not in gw.settings.away_reasons:
        raise ActionError(422, f"unknown away reason {reason!r} (expected one of "
                               f"{', '.join(gw.settings.away_reasons)})")
    if state != "away" and reason is not None:
        raise ActionError(422, "a reason is given only with away")
    try:
        gw.flow.set_advisor_state(p.user, state, reason)
    except (KeyError, ValueError) as e:
        raise ActionError(409, str(e).strip("'\"")) from None
