"""The coach role: config, login, the role rules (cti/api/roles.py) and the guard's
message. The guard's enforcement on a running gateway: tests/e2e/test_roles.py and
plugins/recording/tests/test_http.py."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
import yaml

from cti.api.auth import Authenticator
from cti.api.guard import WHO
from cti.api.roles import ROUTE_ROLES, Rule, allows
from cti.config import ConfigError, parse_settings
from cti.core.skills import SkillBook

REPO = Path(__file__).resolve().parents[2]
ROLES = ("advisor", "coach", "supervisor", "admin")


def demo() -> dict:
    return yaml.safe_load((REPO / "config" / "cti.yaml").read_text())


def test_the_coach_rule_lets_coaches_supervisors_and_admins_in() -> None:
    assert "coach" in get_args(Rule)
    table = {rule: {role for role in ROLES if allows(rule, role)} for rule in get_args(Rule)}
    assert table["coach"] == {"coach", "supervisor", "admin"}
    assert table["supervisor"] == {"supervisor", "admin"}  # a coach sees no floor
    assert table["advisor"] == {"advisor"}                  # nor takes calls
    assert table["user"] == set(ROLES) and table["public"] == set(ROLES)
    assert table["local_or_supervisor"] == {"supervisor", "admin"}


def test_the_guard_says_who_a_route_is_for() -> None:
    assert WHO["coach"] == "coaches, supervisors and admins"
    assert WHO["advisor"] == "advisors"


def test_the_coach_page_is_public_like_the_wallboard() -> None:
    assert ROUTE_ROLES[("GET", "/coach")] == "public"


def test_the_demo_coach_needs_no_skills_and_takes_no_calls() -> None:
    s = parse_settings(demo(), REPO / "config" / "cti.yaml")
    ines = next(a for a in s.advisors if a.name == "ines")
    assert (ines.role, ines.display_name, ines.languages, ines.topics) == (
        "coach", "Inès", {}, {})
    assert "ines" not in SkillBook(s).names()


def test_a_role_outside_the_list_is_a_config_error() -> None:
    data = demo()
    data["advisors"][-1]["role"] = "listener"
    with pytest.raises(ConfigError, match="role"):
        parse_settings(data, REPO / "config" / "cti.yaml")


async def test_a_coach_logs_in_with_the_coach_role() -> None:
    s = parse_settings(demo(), REPO / "config" / "cti.yaml")
    auth = Authenticator(s)
    token = await auth.login("ines", "demo-ines", "127.0.0.1")
    p = auth.check(token)
    assert p is not None and (p.user, p.role, p.is_supervisor) == ("ines", "coach", False)
