"""Logins and bearer tokens (in memory; tokens expire)."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from cti.config import Settings


@dataclass(frozen=True)
class Principal:
    user: str
    role: str
    expires_at: float


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self._passwords = {a.name: (a.password, a.role) for a in settings.advisors}
        self._ttl = settings.http.token_ttl_s
        self._tokens: dict[str, Principal] = {}

    def login(self, username: str, password: str) -> str | None:
        entry = self._passwords.get(username)
        # Compare even for unknown users so timing does not reveal who exists.
        expected, role = entry if entry else ("\0" * 16, "advisor")
        if not hmac.compare_digest(expected.encode(), password.encode()) or entry is None:
            return None
        token = secrets.token_urlsafe(32)
        self._tokens[token] = Principal(username, role, time.time() + self._ttl)
        return token

    def check(self, token: str | None) -> Principal | None:
        if not token:
            return None
        p = self._tokens.get(token)
        if p is None or p.expires_at < time.time():
            self._tokens.pop(token, None)
            return None
        return p
