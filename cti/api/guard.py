"""The one access check every REST route passes (rules in cti/api/roles.py)."""

# No `from __future__ import annotations`: FastAPI must see the real types.

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from cti.api.auth import Principal
from cti.api.deps import GatewayApi
from cti.api.roles import allows, route_rules

log = logging.getLogger("cti.api")

#: Who a refused rule is for, in its 403 message.
WHO = {"advisor": "advisors", "coach": "coaches, supervisors and admins"}

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


def make_guard(gw: GatewayApi) -> Callable[[HTTPConnection], Awaitable[None]]:
    """The dependency put on the whole app: route rule, token, role."""
    rules = route_rules(r.rules for r in gw.plugin_routers)

    async def guard(conn: HTTPConnection) -> None:
        if conn.scope["type"] == "websocket":
            return  # the socket answers a bad token itself: close code 4401
        route = conn.scope.get("route")
        method = conn.scope["method"]
        rule = rules.get((method, getattr(route, "path", "")))
        conn.state.principal = None
        if rule is None:  # fail closed: a route nobody gave a rule
            log.error("no role rule for %s %s: refused", method, getattr(route, "path", "?"))
            raise HTTPException(status.HTTP_403_FORBIDDEN, "no access rule for this route")
        if rule == "public":
            return
        p = gw.auth.check(bearer_token(conn))
        if rule == "local_or_supervisor" and p is None and is_loopback(
                conn.client.host if conn.client else None):
            return
        if p is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid token",
                                headers={"WWW-Authenticate": "Bearer"})
        if not allows(rule, p.role):
            who = WHO.get(rule, "supervisors and admins")
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{who} only")
        conn.state.principal = p

    return guard


def current(request: Request, _: Credentials) -> Principal:
    """The caller of a route the guard let through with a token (the bearer
    parameter only shows the scheme in the OpenAPI docs; the guard checked it)."""
    p: Principal | None = getattr(request.state, "principal", None)
    if p is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid token",
                            headers={"WWW-Authenticate": "Bearer"})
    return p


Auth = Annotated[Principal, Depends(current)]
