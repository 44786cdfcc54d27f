"""Whether one advisor may take one call now, how they rank, and who or what is the
best choice: pure functions reading the distributor's records, never changing them."""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Protocol

from cti.routing.eligibility import match_score, reserve_fit, skill_gap
from cti.routing.model import AdvisorState, EscalationStep
from cti.routing.queue import WaitingCalls
from cti.routing.records import _Advisor, _Call


class ChoosingDistributor(Protocol):
    """What the choosers read of the Distributor (a Protocol: the distributor
    imports this module, so this one does not import it back)."""

    @property
    def strategy(self) -> str: ...
    @property
    def _advisors(self) -> Mapping[str, _Advisor]: ...
    @property
    def _available(self) -> Mapping[str, set[str]]: ...
    @property
    def _calls(self) -> Mapping[str, _Call]: ...
    @property
    def _missed_advisors(self) -> Container[str]: ...
    @property
    def _waiting(self) -> WaitingCalls: ...


def fits(adv: _Advisor, call: _Call, step: EscalationStep, now: float) -> str | None:
    """Why the advisor does not fit the call fully under ``step``; None if they do.
    A call put through to its preferred advisor needs only their language."""
    if call.direct and adv.name == call.preferred:
        lang = call.requirements.language
        return None if lang in adv.profile.languages else f"does not speak {lang}"
    return skill_gap(adv.profile, call.requirements, step, now)


def reserve_only(adv: _Advisor, call: _Call, step: EscalationStep, now: float) -> bool:
    """For an advisor who may take the call: only as its reserve (not a full fit)?"""
    return fits(adv, call, step, now) is not None


def gap(adv: _Advisor, call: _Call, step: EscalationStep, now: float,
        advisors: Mapping[str, _Advisor]) -> str | None:
    """Why this advisor may not take the call now, fully or from its reserve pool
    (state not checked). A call kept for its preferred advisor is kept from the
    reserve too."""
    if call.preferred and call.preferred != adv.name and now < call.preferred_until:
        pref = advisors[call.preferred]
        if pref.state is not AdvisorState.LOGGED_OUT and fits(pref, call, step, now) is None:
            return f"kept for preferred advisor {call.preferred}"
    why = fits(adv, call, step, now)
    return None if why is not None and reserve_fit(adv.profile, call.requirements) else why


def rank(strategy: str, adv: _Advisor, call: _Call, step: EscalationStep,
         now: float) -> tuple[float, ...]:
    """Lower is better: full fits before the reserve pool, then by strategy; ties
    go to the longest idle, then config order."""
    reserve = (1 if reserve_only(adv, call, step, now) else 0,)
    idle = (adv.since if adv.since is not None else 0.0, adv.order)
    if strategy == "best_match":
        return (*reserve, -match_score(adv.profile, call.requirements), *idle)
    if strategy == "least_talk_time":
        return (*reserve, adv.talk_s, *idle)
    if strategy == "round_robin":
        return (*reserve, adv.last_offer, *idle)
    return (*reserve, *idle)


def full_fit_taker(dist: ChoosingDistributor, adv: _Advisor, call: _Call, now: float) -> _Advisor | None:
    """When ``adv`` may take ``call`` only from its reserve pool: the best free
    advisor who fits it fully and has no better call to take, or None.

    Several advisors freed at once pick in idle order; without this the first
    one, a reserve, could take a call a trained colleague freed with them fits.
    Advisors who just missed an offer are left out (they pick last anyway).
    """
    _, step = call.step(now)
    if not reserve_only(adv, call, step, now):
        return None
    fitting = []
    for name in dist._available.get(call.requirements.language, ()):
        other = dist._advisors[name]
        if other is adv or name in dist._missed_advisors \
                or gap(other, call, step, now, dist._advisors) is not None \
                or reserve_only(other, call, step, now):
            continue
        if best_call_for(dist, other, now) is call:
            fitting.append(other)
    return min(fitting, key=lambda a: rank(dist.strategy, a, call, step, now)) if fitting else None

def best_call_for(dist: ChoosingDistributor, adv: _Advisor, now: float) -> _Call | None:
    """The waiting call this advisor may take with the best key (priority+aging, wait)."""
    best: _Call | None = None
    for bucket in dist._waiting.buckets_of(list(adv.profile.languages)):
        for key, cid in bucket:
            if best is not None and key >= best.key:
                break
            call = dist._calls[cid]
            if gap(adv, call, call.step(now)[1], now, dist._advisors) is None:
                best = call
                break
    return best

def best_advisor_for(dist: ChoosingDistributor, call: _Call, now: float) -> _Advisor | None:
    _, step = call.step(now)
    names = dist._available.get(call.requirements.language, ())
    eligible = [dist._advisors[n] for n in names if n not in dist._missed_advisors
                and gap(dist._advisors[n], call, step, now, dist._advisors) is None]
    others = [a for a in eligible if a.name != call.last_failed_by]
    candidates = others or eligible
    return min(candidates, key=lambda a: rank(dist.strategy, a, call, step, now)) \
        if candidates else None
