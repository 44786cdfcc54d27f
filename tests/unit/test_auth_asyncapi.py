"""docs/asyncapi.yaml documents every event type, the non-event messages and commands."""

from __future__ import annotations

import pytest

from cti.api.commands import COMMANDS
from cti.events import EVENT_TYPES, make_event
from tests.event_schema import document, event_errors, message_validator


def test_every_event_type_has_a_schema_with_closed_data() -> None:
    doc = document()
    assert doc["asyncapi"].startswith("2.6")
    schemas, messages = doc["components"]["schemas"], doc["components"]["messages"]
    listed = {m["$ref"].rsplit("/", 1)[1]
              for m in doc["channels"]["/api/v1/ws"]["subscribe"]["message"]["oneOf"]}
    for t in sorted(EVENT_TYPES):
        assert t in messages and t in listed, f"event type {t} is not documented"
        assert schemas[t]["additionalProperties"] is False, t
        assert set(schemas[t].get("required", [])) <= set(schemas[t]["properties"]), t
    assert {"hello", "heartbeat", "reply"} <= listed


def test_every_command_is_documented() -> None:
    doc = document()
    names = {m["name"] for k, m in doc["components"]["messages"].items() if k.startswith("cmd.")}
    assert names == set(COMMANDS)


def event(type_: str, data: dict) -> dict:
    ev = make_event(type_, data, call_id="c1", advisor="sofia")
    ev["seq"] = 7
    return ev


def test_valid_events_pass_and_undocumented_fields_fail() -> None:
    ok = event("call.held", {"on": True, "by": "sofia"})
    assert event_errors(ok) == []
    assert event_errors(event("agent.state", {"state": "away", "reason": "lunch"})) == []
    extra = event("call.connected", {"waited_s": 1.0, "secret": 1})
    assert event_errors(extra) == ["data: Additional properties are not allowed "
                                   "('secret' was unexpected)"]
    assert event_errors(event("call.held", {"on": "yes", "by": "sofia"})) == [
        "data/on: 'yes' is not of type 'boolean'"]
    assert event_errors({**ok, "seq": 0})  # the bus numbers from 1
    assert event_errors({**ok, "type": "call.unknown"})
    missing = event("call.ended", {"reason": "caller_hangup", "advisor": None})
    assert event_errors(missing) == ["data: 'duration_s' is a required property"]


@pytest.mark.parametrize(("name", "msg"), [
    ("hello", {"type": "hello", "user": "sofia", "role": "advisor", "last_seq": 3,
               "replay_complete": True, "heartbeat_s": 15}),
    ("heartbeat", {"type": "heartbeat", "last_seq": 3, "ts": 1.5}),
    ("reply", {"type": "reply", "id": 1, "ok": True, "result": {}}),
    ("reply", {"type": "reply", "id": None, "ok": False, "error": "not JSON"}),
])
def test_non_event_messages_match(name: str, msg: dict) -> None:
    assert list(message_validator(name).iter_errors(msg)) == []
