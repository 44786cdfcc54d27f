"""Stored flags and skills go over the config's at start; stale ones are skipped."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from cti.config import Settings, parse_settings
from cti.controller.durable import restore_skills, start_flags
from cti.controller.skills import SkillBook
from cti.store.db import Store

REPO = Path(__file__).resolve().parents[2]


def settings() -> Settings:
    data: dict[str, Any] = yaml.safe_load((REPO / "config" / "cti.yaml").read_text())
    return parse_settings(data, REPO / "config" / "cti.yaml")


async def test_stored_values_win_and_unknown_advisors_are_ignored(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = settings()
    store = Store(tmp_path / "s.db")
    await store.flags.set("crisis", True, "nadia")
    await store.flags.set("storm", True, "nadia")
    skills = {"languages": {"tr": 5}, "topics": {"visa": 2}, "trainings": {"crisis": None}}
    await store.skills.save("emre", skills, "nadia")
    await store.skills.save("gone", skills, "nadia")  # since removed from the config
    await store.skills.save("nadia", skills, "admin")  # a supervisor: takes no calls
    flags = start_flags({"crisis": False, "holiday": False}, store)
    assert flags == {"crisis": True, "holiday": False, "storm": True}

    book = SkillBook(s)
    with caplog.at_level(logging.WARNING, logger="cti.flow"):
        assert restore_skills(book, store) == ["emre"]
    assert book.get("emre").languages == {"tr": 5} and book.get("emre").trainings == {
        "crisis": None}
    assert book.get("michel").topics == dict(s.advisor("michel").topics)  # config
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "'gone'" in warned and "'nadia'" in warned
    store.close()
