"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audio import write_tone
from tests.e2e.gateway_harness import PROMPT_CACHE


@pytest.fixture
def short_prompts(tmp_path: Path) -> Path:
    """Recorded-prompt overrides of 0.3 s for every prompt: the IVR's logic, not
    espeak's speed, sets the pace of these tests (the override folder is the
    product's own mechanism for recorded prompts)."""
    root = tmp_path / "prompts"
    for wav in PROMPT_CACHE.glob("*/*.wav"):
        if wav.parent.name in ("music", "_joined"):
            continue
        dest = root / wav.parent.name / wav.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_tone(dest, 600, 0.3)
    return root
