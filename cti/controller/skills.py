"""Moved to cti/core/skills.py (the API and the controller both use it); the
names stay importable from here."""

from cti.core.skills import SkillBook, Skills, expiry_ts

__all__ = ["SkillBook", "Skills", "expiry_ts"]
