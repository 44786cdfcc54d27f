"""Consults with a colleague, as the distributor sees them.

An advisor who is consulted is reserved (state ``reserved``, reason
``consult``) so no other call is offered to them meanwhile; if the consult is
completed they take the call over as if they had answered it; otherwise they
are free again. A mixin of :class:`cti.routing.distributor.Distributor`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cti.routing.eligibility import skill_gap
from cti.routing.model import (
    DEFAULT_STEPS,
    Action,
    AdvisorChanged,
    AdvisorState,
    CallStatus,
    Requirements,
)
from cti.routing.records import _Advisor, _Call

if TYPE_CHECKING:
    import itertools
    from collections.abc import Mapping, Sequence

    from cti.routing.model import EscalationStep

CONSULT = "consult"


class ConsultMixin:
    if TYPE_CHECKING:  # provided by Distributor
        _advisors: dict[str, _Advisor]
        _available: dict[str, set[str]]
        _calls: dict[str, _Call]
        _escalation: Mapping[str, Sequence[EscalationStep]]
        _topic_trainings: dict[str, frozenset[str]]
        _seq: itertools.count[int]

        def _advisor(self, name: str) -> _Advisor: ...
        def _change(self, adv: _Advisor, state: AdvisorState, reason: str | None,
                    now: float) -> AdvisorChanged: ...
        def _settle(self, adv: _Advisor, now: float,
                    missed_reason: str | None = None) -> list[Action]: ...
        def _dispatch(self, now: float) -> list[Action]: ...
        def _clock(self, now: float) -> float: ...

    def pick_advisor(self, language: str, topic: str, now: float) -> str | None:
        """An available advisor who fits a new call of this language and topic now
        (the topic's first escalation step), the longest idle first; None if nobody."""
        steps = self._escalation.get(topic) or self._escalation.get("default") or DEFAULT_STEPS
        needed = Requirements(language, topic, self._topic_trainings.get(topic, frozenset()))
        fitting = [self._advisors[n] for n in self._available.get(language, ())
                   if skill_gap(self._advisors[n].profile, needed, steps[0], now) is None]
        if not fitting:
            return None
        return min(fitting, key=lambda a: (a.since if a.since is not None else 0.0,
                                           a.order)).name

    def reserve_for_consult(self, advisor: str, call_id: str, now: float) -> list[Action]:
        """The advisor is consulted about ``call_id``: nothing else is offered to them."""
        adv = self._advisor(advisor)
        if adv.state is not AdvisorState.AVAILABLE:
            raise ValueError(f"{advisor} is not available (they are {adv.state.value})")
        adv.call_id = call_id
        return [self._change(adv, AdvisorState.RESERVED, CONSULT, self._clock(now))]

    def release_consult(self, advisor: str, now: float) -> list[Action]:
        """The consult ended without a hand-over: the advisor is free again."""
        adv = self._advisor(advisor)
        if adv.state is not AdvisorState.RESERVED or adv.reason != CONSULT:
            return []
        now = self._clock(now)
        return [*self._settle(adv, now), *self._dispatch(now)]

    def take_over(self, call_id: str, advisor: str, *, language: str, topic: str,
                  priority: int = 0, now: float) -> list[Action]:
        """The consulted advisor takes the call: it is theirs, connected, from ``now``."""
        adv = self._advisor(advisor)
        if adv.state is not AdvisorState.RESERVED or adv.reason != CONSULT \
                or adv.call_id != call_id:
            raise ValueError(f"{advisor} is not in a consult about {call_id}")
        if call_id in self._calls:
            raise ValueError(f"call {call_id!r} is still with the distributor")
        now = self._clock(now)
        steps = self._escalation.get(topic) or self._escalation.get("default") or DEFAULT_STEPS
        seq = next(self._seq)
        self._calls[call_id] = _Call(
            call_id, Requirements(language, topic, frozenset()), priority, now, seq,
            (0.0, now, seq), steps, status=CallStatus.CONNECTED, advisor=advisor,
            accepted_at=now)
        adv.missed = 0
        return [self._change(adv, AdvisorState.ON_CALL, None, now)]
