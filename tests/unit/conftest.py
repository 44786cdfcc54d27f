from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.controller_fakes import Harness


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    """The call flow on fake media workers (tests/unit/controller_fakes.py)."""
    harness = Harness(tmp_path)
    yield harness
    harness.close()
