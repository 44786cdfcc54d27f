"""Who may take a call, why not, and how well: pure functions on one advisor and one call."""

from __future__ import annotations

from collections.abc import Sequence

from cti.routing.model import AdvisorProfile, EscalationStep, Requirements


def step_index(steps: Sequence[EscalationStep], waited_s: float) -> int:
    """The last step whose ``after_s`` has passed (steps are in increasing order)."""
    index = 0
    for i, step in enumerate(steps):
        if step.after_s <= waited_s:
            index = i
        else:
            break
    return index


def skill_gap(
    profile: AdvisorProfile, req: Requirements, step: EscalationStep, now: float
) -> str | None:
    """Why the advisor's skills do not fit the call under ``step``; None if they do."""
    lang = profile.language_level(req.language)
    if lang == 0:
        return "wrong language"
    if lang < step.min_language:
        return f"language level {lang} < {step.min_language}"
    if step.min_topic > 0:
        topic = profile.topic_level(req.topic)
        if topic == 0:
            return f"no topic {req.topic}"
        if topic < step.min_topic:
            return f"topic level {topic} < {step.min_topic}"
    if req.trainings:
        missing = sorted(req.trainings - profile.valid_trainings(now))
        if missing:
            name = missing[0]
            expired = name in profile.trainings
            return f"training {name} expired" if expired else f"missing training {name}"
    return None


def is_eligible(
    profile: AdvisorProfile,
    requirements: Requirements,
    step: EscalationStep | None = None,
    now: float = 0.0,
) -> bool:
    """Skill match only (the advisor's state is checked by the distributor)."""
    return skill_gap(profile, requirements, step or EscalationStep(0.0, 1, 1), now) is None


def reserve_fit(profile: AdvisorProfile, req: Requirements) -> bool:
    """In the call's reserve pool and speaking its language: topic, trainings and the
    escalation step's levels do not count (a reserve takes what nobody else can)."""
    return profile.name in req.reserve and profile.language_level(req.language) >= 1


def match_score(profile: AdvisorProfile, req: Requirements) -> int:
    """Best match: language level plus topic level (0 when the topic is missing)."""
    return profile.language_level(req.language) + profile.topic_level(req.topic)
