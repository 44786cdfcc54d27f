"""Pure IVR engine: flows of named nodes run as a state machine (no I/O, no asyncio)."""

from cti.ivr.engine import (
    DEMO_CONFIG,
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
    Transfer,
    as_flow,
    required_prompts,
)
from cti.ivr.extend import ExtensionLike, ExtraOption, OptionLike, extend_flow, extend_flow_with
from cti.ivr.graph import DTMF_DIGITS, Flow, FlowError, check_flow
from cti.ivr.parse import parse_flow, standard_flow

IvrAction = Action

__all__ = [
    "DEMO_CONFIG",
    "DTMF_DIGITS",
    "REQUIRED_PROMPT_KEYS",
    "Action",
    "Done",
    "ExtensionLike",
    "ExtraOption",
    "Flow",
    "FlowError",
    "Hangup",
    "IvrAction",
    "IvrConfig",
    "IvrSession",
    "MenuOption",
    "OptionLike",
    "Play",
    "PromptRef",
    "StopPlay",
    "Transfer",
    "as_flow",
    "check_flow",
    "extend_flow",
    "extend_flow_with",
    "parse_flow",
    "required_prompts",
    "standard_flow",
]
