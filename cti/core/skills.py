"""Advisors' skills as the distributor sees them, editable at run time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from cti.config import AdvisorSettings, Settings
from cti.routing import AdvisorProfile


def expiry_ts(valid_until: date | None) -> float | None:
    """A training valid through a date stops counting at the next midnight, UTC."""
    if valid_until is None:
        return None
    end = datetime.combine(valid_until + timedelta(days=1), time.min, tzinfo=timezone.utc)
    return end.timestamp()


@dataclass
class Skills:
    languages: dict[str, int]
    topics: dict[str, int]
    trainings: dict[str, date | None] = field(default_factory=dict)

    def profile(self, name: str) -> AdvisorProfile:
        return AdvisorProfile(
            name=name, languages=dict(self.languages), topics=dict(self.topics),
            trainings={t: expiry_ts(d) for t, d in self.trainings.items()},
        )

    def as_dict(self) -> dict[str, Mapping[str, object]]:
        return {
            "languages": dict(self.languages), "topics": dict(self.topics),
            "trainings": {t: d.isoformat() if d else None for t, d in self.trainings.items()},
        }


def skills_of(advisor: AdvisorSettings) -> Skills:
    return Skills(dict(advisor.languages), dict(advisor.topics), dict(advisor.trainings))


class SkillBook:
    """The current skills of every advisor (config at start, then API edits)."""

    def __init__(self, advisors: Settings | Iterable[AdvisorSettings]) -> None:
        """``advisors``: the live list (cti/core/advisors.py), or a config's seed."""
        people = advisors.advisors if isinstance(advisors, Settings) else advisors
        self._skills = {a.name: skills_of(a) for a in people if a.role == "advisor"}

    def add(self, advisor: AdvisorSettings) -> AdvisorProfile:
        """A new advisor who takes calls (ValueError: not one, or the name is taken)."""
        if advisor.role != "advisor" or advisor.name in self._skills:
            raise ValueError(f"{advisor.name!r} cannot be added as an advisor who takes calls")
        self._skills[advisor.name] = skills_of(advisor)
        return self._skills[advisor.name].profile(advisor.name)

    def remove(self, name: str) -> None:
        self._skills.pop(name, None)

    def names(self) -> list[str]:
        return list(self._skills)

    def get(self, name: str) -> Skills:
        if name not in self._skills:
            raise KeyError(f"{name!r} is not an advisor who takes calls")
        return self._skills[name]

    def set(self, name: str, skills: Skills) -> AdvisorProfile:
        self.get(name)
        self._skills[name] = skills
        return skills.profile(name)

    def profiles(self) -> list[AdvisorProfile]:
        return [s.profile(n) for n, s in self._skills.items()]
