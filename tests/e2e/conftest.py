"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.audio import write_tone
from tests.e2e.gateway_harness import PROMPT_CACHE


def write_short_prompts(root: Path) -> Path:
    """Recorded-prompt overrides of 0.3 s (600 Hz) for every prompt, under ``root``."""
    for wav in PROMPT_CACHE.glob("*/*.wav"):
        if wav.parent.name in ("music", "_joined"):
            continue
        dest = root / wav.parent.name / wav.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_tone(dest, 600, 0.3)
    return root


@pytest.fixture
def short_prompts(tmp_path: Path) -> Path:
    """Recorded-prompt overrides of 0.3 s for every prompt: the IVR's logic, not
    espeak's speed, sets the pace of these tests (the override folder is the
    product's own mechanism for recorded prompts)."""
    return write_short_prompts(tmp_path / "prompts")


@pytest.fixture(autouse=True)
def events_match_the_asyncapi_document(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every event published on any gateway's bus during a test is checked against
    docs/asyncapi.yaml; the test fails at teardown listing the invalid ones."""
    from cti.events import EventBus
    from tests.event_schema import event_errors

    invalid: list[str] = []
    publish = EventBus.publish

    def checked(self: EventBus, event: dict[str, Any]) -> dict[str, Any]:
        out = publish(self, event)
        try:  # as a WebSocket client receives it: JSON
            wire = json.loads(json.dumps(out))
        except (TypeError, ValueError) as e:
            invalid.append(f"seq {out.get('seq')} {out.get('type')}: not JSON: {e}")
            return out
        invalid.extend(f"seq {out['seq']} {out['type']}: {err}"
                       for err in event_errors(wire, self.types.schemas))
        return out

    monkeypatch.setattr(EventBus, "publish", checked)
    yield
    if invalid:
        pytest.fail(f"{len(invalid)} event(s) do not match docs/asyncapi.yaml:\n"
                    + "\n".join(invalid[:50]), pytrace=False)
