"""Decision traces: why a call was offered to an advisor, and why not to the others."""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Mapping
from typing import Any, Protocol

from cti.routing.eligibility import match_score
from cti.routing.matching import gap, rank, reserve_only
from cti.routing.model import AdvisorState, EscalationStep
from cti.routing.records import _Advisor, _Call


class TracedDistributor(Protocol):
    """What a trace reads of the Distributor (a Protocol: the distributor imports
    this module, so this one does not import it back)."""

    @property
    def strategy(self) -> str: ...
    @property
    def _advisors(self) -> Mapping[str, _Advisor]: ...
    @property
    def _by_language(self) -> Mapping[str, set[str]]: ...
    @property
    def _missed_advisors(self) -> Container[str]: ...

MAX_CANDIDATES = 10
MAX_NAMED_EXCLUSIONS = 50


def _state_reason(adv: _Advisor) -> str | None:
    if adv.state is AdvisorState.AVAILABLE:
        return None
    if adv.state is AdvisorState.AWAY:
        return f"away ({adv.reason})" if adv.reason else "away"
    if adv.state is AdvisorState.LOGGED_OUT:
        return "logged out"
    if adv.state is AdvisorState.RESERVED:
        return "reserved"
    return f"busy ({adv.state.value})"


def build_trace(
    dist: TracedDistributor, call: _Call, chosen: _Advisor, index: int, step: EscalationStep,
    now: float, trigger: str,
) -> dict[str, Any]:
    """A JSON-able record of one decision.

    ``candidates``: the advisors able to take the call now (skills and state),
    best first by rank (full fits, then the reserve pool flagged ``reserve``,
    each by the strategy), at most 10. ``from_reserve``: the chosen advisor
    was taken from the call's reserve pool. ``excluded``: advisor ->
    reason for the first 50 (by name) advisors who speak the call's language
    but may not take it; ``excluded_counts``: every excluded advisor counted
    by reason ("busy (...)" counted as "busy"), including those who do not
    speak the language at all ("wrong language", never named). That keeps a
    decision cheap with a thousand advisors.
    """
    req = call.requirements
    speakers = dist._by_language.get(req.language, set())
    candidates: list[dict[str, Any]] = []
    excluded: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for name in sorted(speakers):
        adv = dist._advisors[name]
        reason = gap(adv, call, step, now, dist._advisors) or (
            None if adv is chosen else _state_reason(adv))
        if reason is None and adv is not chosen and name in dist._missed_advisors:
            missed_this = name == call.last_failed_by
            reason = "missed this call just before" if missed_this else "just missed an offer"
        if reason is None:
            candidates.append({"advisor": name, "score": match_score(adv.profile, req),
                               "rank": list(rank(dist.strategy, adv, call, step, now)),
                               "reserve": reserve_only(adv, call, step, now)})
            continue
        counts[reason.split(" (")[0] if reason.startswith("busy") else reason] += 1
        if len(excluded) < MAX_NAMED_EXCLUSIONS:
            excluded[name] = reason
    others = len(dist._advisors) - len(speakers)
    if others:
        counts["wrong language"] += others
    candidates.sort(key=lambda c: c["rank"])
    return {
        "trigger": trigger,  # call_waiting: the call chose; advisor_free: the advisor did
        "strategy": dist.strategy,
        "chosen": chosen.name,
        # Taken from the call's reserve pool: the advisor lacks its topic or trainings.
        "from_reserve": reserve_only(chosen, call, step, now),
        "requirements": {"language": req.language, "topic": req.topic,
                         "trainings": sorted(req.trainings)},
        "reserve_pool": sorted(req.reserve),
        "priority": call.priority,
        "waited_s": round(now - call.enqueued_at, 1),
        "step": {"index": index, "after_s": step.after_s, "min_language": step.min_language,
                 "min_topic": step.min_topic},
        "candidates": candidates[:MAX_CANDIDATES],
        "excluded": excluded,
        "excluded_counts": dict(counts),
    }
