"""The FastAPI application: REST under /api/v1, the CTI WebSocket, /metrics, the web pages.

Every route passes one guard (cti/api/guard.py) that applies the rule of
cti/api/roles.py for that route; a route without a rule is refused.
"""

# No `from __future__ import annotations`: FastAPI must see the real types.
import sqlite3
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, WebSocket
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from cti.api import routes_admin, routes_agents, routes_audit, routes_calls, routes_floor
from cti.api.commands import Commands
from cti.api.deps import GatewayApi
from cti.api.guard import EarlyGuard, make_guard
from cti.api.limits import AsciiJSONResponse, BodyLimit, add_input_errors
from cti.api.roles import PLUGIN_API_PREFIX, WS_PATH
from cti.store.reports import Reports
from cti.web import mount_web


def mount_plugin_routes(app: FastAPI, plugin: str, router: APIRouter) -> None:
    """Each REST route of a plugin at /api/v1/plugins/<plugin><path>, as a route of the
    app itself: the guard then sees the full path the role table names (an included
    router would show the guard the path as the plugin declared it)."""
    for route in router.routes:
        assert isinstance(route, APIRoute)  # checked when the plugin added its router
        app.add_api_route(
            f"{PLUGIN_API_PREFIX}/{plugin}{route.path}", route.endpoint,
            methods=sorted(route.methods or ()), response_model=route.response_model,
            status_code=route.status_code, summary=route.summary,
            description=route.description, name=route.name, responses=route.responses,
            dependencies=route.dependencies, tags=route.tags or [f"plugin {plugin}"])


def create_app(gw: GatewayApi) -> FastAPI:
    app = FastAPI(title="cti", version="1", docs_url="/docs",
                  description="CTI for advisors and supervisors. Log in with POST "
                  "/api/v1/login, then send `Authorization: Bearer <token>`. The WebSocket "
                  "protocol is in docs/asyncapi.yaml.",
                  dependencies=[Depends(make_guard(gw))],
                  default_response_class=AsciiJSONResponse)
    reports = Reports(gw.store.path)
    for module in (routes_admin, routes_agents, routes_audit, routes_calls, routes_floor):
        module.register(app, gw, reports)
    for plugin in gw.plugin_routers:  # each route has its rule (checked at cti_load)
        mount_plugin_routes(app, plugin.plugin, plugin.router)

    @app.exception_handler(sqlite3.Error)
    async def store_cannot_write(_request: Request, exc: sqlite3.Error) -> JSONResponse:
        # A durable action (a flag, skills, a plugin's write) is not acknowledged.
        return JSONResponse(status_code=503, headers={"Retry-After": "5"},
                            content={"detail": f"the store cannot write: {exc}"})

    @app.websocket(WS_PATH)
    async def ws(websocket: WebSocket, token: str | None = None,
                 since: Annotated[int | None, Query(ge=0)] = None) -> None:
        header = websocket.headers.get("authorization", "")
        if not token and header.lower().startswith("bearer "):
            token = header[7:].strip()
        p = gw.auth.check(token)
        # Accept first so the client can read why it is closed (4401), not a bare 403.
        await websocket.accept()
        if p is None:
            await websocket.close(code=4401, reason="missing or invalid token")
            return
        await gw.hub.serve(websocket, p, since, commands=Commands(gw),
                           heartbeat_s=gw.settings.http.ws_heartbeat_s,
                           valid=lambda: gw.auth.check(token) is not None)

    mount_web(app)
    # Outermost last: the size limit, then the early access check, then the app.
    app.add_middleware(EarlyGuard, gw=gw, routes=lambda: app.router.routes)
    app.add_middleware(BodyLimit, max_bytes=gw.settings.http.max_body_bytes)
    add_input_errors(app)
    return app
