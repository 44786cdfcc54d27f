"""Position and expected-wait announcements, composed from prebuilt prompts (pure)."""

from __future__ import annotations

import math

from cti.ivr.engine import PromptRef

MAX_SPOKEN_NUMBER = 20
ANNOUNCE_KEYS = ("position_intro", "wait_intro", "minutes", "number_many", "wait_unknown")


def number_ref(language: str, n: int) -> PromptRef:
    """A spoken number; above twenty, "more than twenty"."""
    if 1 <= n <= MAX_SPOKEN_NUMBER:
        return PromptRef(language, f"number_{n}")
    return PromptRef(language, "number_many")


def wait_minutes(expected_wait_s: float) -> int:
    """Whole minutes, rounded up, at least one: never promise less than the truth."""
    return max(1, math.ceil(expected_wait_s / 60))


def wait_announcement(
    language: str, position: int, expected_wait_s: float | None,
) -> tuple[PromptRef, ...]:
    """ "You are number 3. The expected waiting time is about 4 minutes." """
    refs = [PromptRef(language, "position_intro"), number_ref(language, position)]
    if expected_wait_s is None:
        refs.append(PromptRef(language, "wait_unknown"))
    else:
        refs += [PromptRef(language, "wait_intro"),
                 number_ref(language, wait_minutes(expected_wait_s)),
                 PromptRef(language, "minutes")]
    return tuple(refs)


def announcement_prompts(languages: list[str]) -> set[PromptRef]:
    """Every prompt an announcement may use, for the start-up check."""
    refs = {PromptRef(lang, key) for lang in languages for key in ANNOUNCE_KEYS}
    refs |= {number_ref(lang, n) for lang in languages for n in range(1, MAX_SPOKEN_NUMBER + 1)}
    return refs
