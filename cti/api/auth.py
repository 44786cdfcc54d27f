"""Logins and bearer tokens: argon2id password hashes, expiring tokens, login rate
limits per user name and client address together, per client address, and (ten
times as many) per user name.

A flood of wrong passwords from one address blocks that address, not the user:
the user still logs in from anywhere else."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cti.config import Settings
from cti.core.advisors import AdvisorDirectory
from cti.store.sessions import SessionsRepo, StoredSession, token_hash

log = logging.getLogger("cti.api")

ROLES = ("advisor", "supervisor", "admin")

#: The per-user-name limit is this many times the per-address one.
USER_LIMIT_FACTOR = 10

_hasher = PasswordHasher()  # argon2id with the library's current defaults


def hash_password(password: str) -> str:
    """The argon2id hash stored as `password_hash` in the config."""
    return _hasher.hash(password)


def sip_ha1(name: str, realm: str, password: str) -> str:
    """Digest HA1 = md5(name:realm:password): the SIP side cannot use argon2."""
    return hashlib.md5(f"{name}:{realm}:{password}".encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    user: str
    role: str
    expires_at: float

    @property
    def is_supervisor(self) -> bool:
        """Supervisors and admins see and act on every call."""
        return self.role in ("supervisor", "admin")


class RateLimited(Exception):
    """Too many failed logins; retry_after is in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins, retry in {retry_after} s")
        self.retry_after = retry_after


class SlidingWindow:
    """At most `limit` hits per key in any `window` seconds."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def retry_after(self, key: str, now: float) -> int:
        """0 when key may try now, else the seconds until its oldest hit expires."""
        hits = self._recent(key, now)
        if len(hits) < self.limit:
            if not hits:
                self._hits.pop(key, None)  # keep the table small
            return 0
        return max(1, math.ceil(hits[0] + self.window - now))

    def hit(self, key: str, now: float) -> None:
        self._recent(key, now).append(now)

    def forget(self, key: str, at: float) -> None:
        """Take back the hit made at `at` (a login that succeeded)."""
        hits = self._hits.get(key)
        if hits is not None and at in hits:
            hits.remove(at)


class Authenticator:
    """Logins, their tokens and the login limits. ``sessions``: where tokens are kept
    (hashed) so that a restart of the controller does not log everyone out."""

    def __init__(self, settings: Settings, sessions: SessionsRepo | None = None,
                 directory: AdvisorDirectory | None = None) -> None:
        # Live: an advisor added, changed or removed through the admin API logs in
        # (or not) at once. Without a directory: the config's list.
        self._directory = directory or AdvisorDirectory(settings.advisors)
        self._ttl = settings.http.token_ttl_s
        # By the token's hash: the stored sessions are loaded the same way.
        self._tokens: dict[str, Principal] = {}
        self._sessions = sessions
        # The time source of token expiry (tests move it forward).
        self.clock: Callable[[], float] = time.time
        limit = settings.http.login_attempts_per_minute
        self._by_user_ip = SlidingWindow(limit)
        self._by_ip = SlidingWindow(limit)
        # Many addresses guessing one user's password (a botnet) still stop.
        self._by_user = SlidingWindow(limit * USER_LIMIT_FACTOR)
        # Verified against for unknown users so timing does not reveal who exists.
        self._dummy = hash_password(secrets.token_hex(8))
        # Called with a token ended by logout (the browser phone's SIP credentials
        # end with it; an expired token ends them by its own timer).
        self.on_end: list[Callable[[str], None]] = []
        # Called with a user whose every token was ended (removed, a new role or a
        # new password): their browser phone credentials end too.
        self.on_user_end: list[Callable[[str], None]] = []

    def check_rate(self, username: str, ip: str, now: float | None = None) -> None:
        """Raise RateLimited before the (slow) hash is even checked."""
        now = time.time() if now is None else now
        wait = max(self._by_user_ip.retry_after(f"{username}\0{ip}", now),
                   self._by_ip.retry_after(ip, now),
                   self._by_user.retry_after(username, now))
        if wait:
            raise RateLimited(wait)

    def _user(self, name: str) -> tuple[str, str] | None:
        """(password hash, role) of a user who may log in now."""
        a = self._directory.get(name)
        return None if a is None else (a.password_hash, a.role)

    def verify(self, username: str, password: str) -> bool:
        """Blocking (argon2 takes tens of ms): login() runs it in a thread."""
        user = self._user(username)
        try:
            return _hasher.verify(user[0] if user else self._dummy, password) and user is not None
        except (VerificationError, InvalidHashError):
            return False

    async def login(self, username: str, password: str, ip: str = "") -> str | None:
        """A new token, or None for a wrong name or password (counted for the limit)."""
        self.check_rate(username, ip)
        # Count the attempt before the slow check so parallel guesses count too;
        # a successful login takes its attempt back.
        now = time.time()
        windows = ((self._by_user_ip, f"{username}\0{ip}"), (self._by_ip, ip),
                   (self._by_user, username))
        for window, key in windows:
            window.hit(key, now)
        if not await asyncio.to_thread(self.verify, username, password):
            return None
        for window, key in windows:
            window.forget(key, now)
        user = self._user(username)
        if user is None:  # removed while the hash was checked
            return None
        token = secrets.token_urlsafe(32)
        p = Principal(username, user[1], self.clock() + self._ttl)
        if self._sessions is not None:
            try:  # stored before it is handed out: it outlives a restart
                await self._sessions.add(StoredSession(token_hash(token), p.user, p.role,
                                                       p.expires_at), self.clock())
            except sqlite3.Error as e:
                log.error("login of %s not stored (the store cannot write: %s): the "
                          "session ends with a restart", username, e)
        self._tokens[token_hash(token)] = p
        return token

    def restore(self) -> int:
        """At start: the sessions of the last run that have not expired (a user no
        longer in the config, or with another role now, is not let back in)."""
        if self._sessions is None:
            return 0
        n = 0
        for s in self._sessions.live(self.clock()):
            user = self._user(s.user)
            if user is not None and user[1] == s.role:
                self._tokens[s.token_hash] = Principal(s.user, s.role, s.expires_at)
                n += 1
        return n

    def revoke(self, user: str) -> int:
        """End every token of a user now (removed, a new role or a new password); the
        stored sessions are the caller's to remove. Returns how many were ended."""
        ended = [k for k, p in self._tokens.items() if p.user == user]
        for key in ended:
            del self._tokens[key]
        for listener in self.on_user_end:
            listener(user)
        return len(ended)

    def check(self, token: str | None) -> Principal | None:
        if not token:
            return None
        key = token_hash(token)
        p = self._tokens.get(key)
        # A user removed or given another role since the login holds no token.
        user = None if p is None else self._user(p.user)
        if p is None or p.expires_at < self.clock() or user is None or user[1] != p.role:
            self._tokens.pop(key, None)
            return None
        return p

    async def expire(self, token: str) -> None:
        """End a token now (logout), also in the store."""
        key = token_hash(token)
        self._tokens.pop(key, None)
        for listener in self.on_end:
            listener(token)
        if self._sessions is not None:
            try:
                await self._sessions.remove(key)
            except sqlite3.Error as e:
                log.error("logout not stored (the store cannot write: %s): the session "
                          "would come back after a restart until it expires", e)
