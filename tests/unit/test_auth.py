"""Passwords (argon2id, SIP HA1), `cti passwd`, config checks, login rate limit, tokens."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from argon2 import PasswordHasher

from cti.api.auth import (
    USER_LIMIT_FACTOR,
    Authenticator,
    RateLimited,
    SlidingWindow,
    hash_password,
    sip_ha1,
)
from cti.config import ConfigError, parse_settings

REPO = Path(__file__).resolve().parents[2]


def demo(**http: object) -> dict:
    data = yaml.safe_load((REPO / "config" / "cti.yaml").read_text())
    data["http"].update(http)
    return data


def test_demo_config_holds_hashes_of_demo_passwords_only() -> None:
    text = (REPO / "config" / "cti.yaml").read_text()
    assert "demo-sofia" not in text and "password:" not in text
    s = parse_settings(demo(), REPO / "config" / "cti.yaml")
    for a in s.advisors:
        assert PasswordHasher().verify(a.password_hash, f"demo-{a.name}")
        assert a.password_hash.startswith("$argon2id$")
        assert a.sip_ha1 == hashlib.md5(f"{a.name}:{s.sip.realm}:demo-{a.name}".encode()
                                        ).hexdigest()


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("password_hash", "demo-sofia", "expected an argon2id hash"),
    ("password_hash", "$argon2i$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
     "expected an argon2id hash"),
    ("sip_ha1", "xyz", "expected 32 lowercase hex digits"),
    ("sip_ha1", "D44EC857877F9497B9A9525006FA9CF0", "expected 32 lowercase hex digits"),
])
def test_a_bad_hash_is_a_one_line_config_error(field: str, value: str, expected: str) -> None:
    data = demo()
    data["advisors"][2][field] = value
    with pytest.raises(ConfigError) as e:
        parse_settings(data, Path("cti.yaml"))
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"cti.yaml: advisors[3] (sofia).{field}: {expected}"), msg


def test_a_plaintext_password_is_refused_by_name() -> None:
    data = demo()
    data["advisors"][0]["password"] = "demo-michel"
    with pytest.raises(ConfigError, match=r"advisors\[1\] \(michel\)\.password: "
                                          "unknown key"):
        parse_settings(data, Path("cti.yaml"))


def run_passwd(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cti.cli", "passwd", *args], input=stdin,
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def test_cti_passwd_prints_both_config_lines_from_stdin() -> None:
    out = run_passwd("sofia", "--realm", "example.org", stdin="s3cret-enough\n")
    assert out.returncode == 0, out.stderr
    lines = yaml.safe_load(out.stdout)
    assert PasswordHasher().verify(lines["password_hash"], "s3cret-enough")
    assert lines["sip_ha1"] == hashlib.md5(b"sofia:example.org:s3cret-enough").hexdigest()
    # Without --realm: the config's sip.realm.
    default = yaml.safe_load(run_passwd("sofia", "--password", "s3cret-enough").stdout)
    assert default["sip_ha1"] == sip_ha1("sofia", "cti.local", "s3cret-enough")


def test_cti_passwd_refuses_short_passwords_and_bad_names() -> None:
    assert run_passwd("sofia", stdin="short\n").returncode == 1
    bad = run_passwd("so fia", "--password", "long-enough-1")
    assert bad.returncode == 2 and "invalid advisor name" in bad.stderr


def test_sliding_window_counts_a_minute_and_says_when_to_retry() -> None:
    w = SlidingWindow(3, 60)
    for t in (0, 10, 20):
        assert w.retry_after("k", t) == 0
        w.hit("k", t)
    assert w.retry_after("k", 30) == 30  # the hit at 0 leaves at 60
    assert w.retry_after("other", 30) == 0
    assert w.retry_after("k", 60) == 0
    w.forget("k", 10)
    assert len(w._hits["k"]) == 1


def settings(**http: object):  # noqa: ANN201
    return parse_settings(demo(**http), REPO / "config" / "cti.yaml")


async def test_login_by_user_and_address_is_limited_and_success_does_not_count() -> None:
    auth = Authenticator(settings(login_attempts_per_minute=3))
    for _ in range(3):  # successes are not counted
        assert await auth.login("sofia", "demo-sofia", "10.0.0.1")
    for _ in range(3):
        assert await auth.login("sofia", "wrong", "10.0.0.1") is None
    with pytest.raises(RateLimited) as limited:
        await auth.login("sofia", "demo-sofia", "10.0.0.1")  # that user from that address
    assert 1 <= limited.value.retry_after <= 60
    # The flood from 10.0.0.1 does not lock sofia out from elsewhere.
    assert await auth.login("sofia", "demo-sofia", "10.0.0.2")
    # The address is limited for every user name (password spraying).
    with pytest.raises(RateLimited):
        await auth.login("michel", "demo-michel", "10.0.0.1")
    assert await auth.login("michel", "demo-michel", "10.0.0.3")
    # Unknown users fail like a wrong password and count too.
    for _ in range(3):
        assert await auth.login("nobody", "x", "10.0.0.4") is None
    with pytest.raises(RateLimited):
        await auth.login("nobody", "x", "10.0.0.4")
    assert await auth.login("nobody", "x", "10.0.0.5") is None


async def test_many_addresses_guessing_one_user_are_limited_by_the_user_name() -> None:
    auth = Authenticator(settings(login_attempts_per_minute=2))
    for i in range(2 * USER_LIMIT_FACTOR):
        assert await auth.login("sofia", "wrong", f"10.1.0.{i}") is None
    with pytest.raises(RateLimited):
        await auth.login("sofia", "demo-sofia", "10.2.0.1")


async def test_tokens_expire_and_carry_the_role() -> None:
    s = settings()
    auth = Authenticator(s)
    token = await auth.login("nadia", "demo-nadia", "127.0.0.1")
    assert token is not None
    p = auth.check(token)
    assert p is not None and (p.user, p.role, p.is_supervisor) == ("nadia", "supervisor", True)
    assert auth.check("forged") is None and auth.check(None) is None
    real = auth.clock
    auth.clock = lambda: real() + s.http.token_ttl_s + 1
    assert auth.check(token) is None
    auth.clock = real
    assert auth.check(token) is None  # an expired token is gone for good


def test_hash_password_is_argon2id() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$") and PasswordHasher().verify(h, "correct horse")
