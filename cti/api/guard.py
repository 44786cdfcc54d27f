"""The one access check every REST route passes (rules in cti/api/roles.py)."""

# No `from __future__ import annotations`: FastAPI must see the real types.

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from cti.api.auth import Principal
from cti.api.deps import GatewayApi
from cti.api.roles import Rule, allows, route_rules

log = logging.getLogger("cti.api")

#: Who a refused rule is for, in its 403 message.
WHO = {"advisor": "advisors", "coach": "coaches, supervisors and admins", "admin": "admins"}

bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _refusal(gw: GatewayApi, rule: Rule | None, conn: HTTPConnection, method: str,
             path: str) -> HTTPException | Principal | None:
    """What the rule says for this request: a refusal, the caller, or None (public)."""
    if rule is None:  # fail closed: a route nobody gave a rule
        log.error("no role rule for %s %s: refused", method, path)
        return HTTPException(status.HTTP_403_FORBIDDEN, "no access rule for this route")
    if rule == "public":
        return None
    p = gw.auth.check(bearer_token(conn))
    if rule == "local_or_supervisor" and p is None and is_loopback(
            conn.client.host if conn.client else None):
        return None
    if p is None:
        return HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid token",
                             headers={"WWW-Authenticate": "Bearer"})
    if not allows(rule, p.role):
        who = WHO.get(rule, "supervisors and admins")
        return HTTPException(status.HTTP_403_FORBIDDEN, f"{who} only")
    return p


def make_guard(gw: GatewayApi) -> Callable[[HTTPConnection], Awaitable[None]]:
    """The dependency put on the whole app: route rule, token, role."""
    rules = route_rules(r.rules for r in gw.plugin_routers)

    async def guard(conn: HTTPConnection) -> None:
        if conn.scope["type"] == "websocket":
            return  # the socket answers a bad token itself: close code 4401
        route = conn.scope.get("route")
        method = conn.scope["method"]
        path = getattr(route, "path", "")
        conn.state.principal = None
        outcome = _refusal(gw, rules.get((method, path)), conn, method, path or "?")
        if isinstance(outcome, HTTPException):
            raise outcome
        conn.state.principal = outcome

    return guard


class EarlyGuard:
    """Pure ASGI, before the body is read: a request the guard would refuse (no
    token, a wrong role) is answered 401/403 before its body is parsed, so an
    unauthenticated caller never learns how its body would validate. The guard
    dependency checks again on the route (the same rule)."""

    def __init__(self, app: ASGIApp, gw: GatewayApi, routes: Callable[[], list[BaseRoute]]
                 ) -> None:
        self.app = app
        self.gw = gw
        self.routes = routes
        self.rules = route_rules(r.rules for r in gw.plugin_routers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes():
                match, child = route.matches(scope)
                if match == Match.FULL:
                    if isinstance(route, APIRoute):
                        conn = HTTPConnection(scope)
                        method = scope["method"]
                        outcome = _refusal(self.gw, self.rules.get((method, route.path)),
                                           conn, method, route.path)
                        if isinstance(outcome, HTTPException):
                            response = JSONResponse({"detail": outcome.detail},
                                                    outcome.status_code, outcome.headers)
                            await response(scope, receive, send)
                            return
                    break
        await self.app(scope, receive, send)


def current(request: Request, _: Credentials) -> Principal:
    """The caller of a route the guard let through with a token (the bearer
    parameter only shows the scheme in the OpenAPI docs; the guard checked it)."""
    p: Principal | None = getattr(request.state, "principal", None)
    if p is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid token",
                            headers={"WWW-Authenticate": "Bearer"})
    return p


Auth = Annotated[Principal, Depends(current)]
