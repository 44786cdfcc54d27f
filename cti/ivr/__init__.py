"""Pure IVR engine: DTMF menus as a state machine (no I/O, no asyncio)."""

from cti.ivr.engine import (
    DEMO_CONFIG,
    DTMF_DIGITS,
    REQUIRED_PROMPT_KEYS,
    Action,
    Done,
    Hangup,
    IvrConfig,
    IvrSession,
    MenuOption,
    Play,
    PromptRef,
    StopPlay,
    required_prompts,
)

IvrAction = Action

__all__ = [
    "DEMO_CONFIG",
    "DTMF_DIGITS",
    "REQUIRED_PROMPT_KEYS",
    "Action",
    "Done",
    "Hangup",
    "IvrAction",
    "IvrConfig",
    "IvrSession",
    "MenuOption",
    "Play",
    "PromptRef",
    "StopPlay",
    "required_prompts",
]
