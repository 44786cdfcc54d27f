from cti.ivr import PromptRef
from cti.ivr.announce import announcement_prompts, wait_announcement, wait_minutes


def keys(refs: tuple[PromptRef, ...]) -> list[str]:
    return [r.key for r in refs]


def test_position_and_wait_in_the_callers_language() -> None:
    refs = wait_announcement("es", 3, 200.0)
    assert {r.language for r in refs} == {"es"}
    assert keys(refs) == ["position_intro", "number_3", "wait_intro", "number_4", "minutes"]


def test_minutes_round_up_and_never_zero() -> None:
    assert wait_minutes(1) == 1 and wait_minutes(60) == 1 and wait_minutes(61) == 2


def test_large_numbers_and_unknown_wait() -> None:
    refs = wait_announcement("en", 42, None)
    assert keys(refs) == ["position_intro", "number_many", "wait_unknown"]
    assert keys(wait_announcement("en", 1, 3600)) [3] == "number_many"


def test_every_announcement_prompt_is_listed_for_the_startup_check() -> None:
    needed = announcement_prompts(["nl", "tr"])
    assert PromptRef("tr", "number_20") in needed and PromptRef("nl", "wait_unknown") in needed
    for pos in range(1, 30):
        assert set(wait_announcement("tr", pos, pos * 90.0)) <= needed
