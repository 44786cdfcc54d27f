"""The FastAPI application: REST under /api/v1 and the CTI WebSocket."""

# No `from __future__ import annotations`: FastAPI must see the real
# Annotated dependencies declared inside create_app.
import dataclasses
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cti.api.auth import Principal
from cti.api.schemas import (
    AgentView,
    FlagRequest,
    LoginRequest,
    LoginResponse,
    SkillsRequest,
    StateRequest,
)
from cti.controller.skills import Skills

if TYPE_CHECKING:
    from cti.controller.gateway import Gateway

_bearer = HTTPBearer(auto_error=False)


def create_app(gw: "Gateway") -> FastAPI:
    app = FastAPI(title="cti", version="1", docs_url="/docs")

    def principal(
        cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        p = gw.auth.check(cred.credentials if cred else None)
        if p is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid token",
                                headers={"WWW-Authenticate": "Bearer"})
        return p

    Auth = Annotated[Principal, Depends(principal)]

    def supervisor(p: Auth) -> Principal:
        if p.role not in ("supervisor", "admin"):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "supervisors and admins only")
        return p

    Supervisor = Annotated[Principal, Depends(supervisor)]

    @app.get("/api/v1/health")
    async def health() -> dict[str, Any]:
        return gw.health()

    @app.post("/api/v1/login", response_model=LoginResponse)
    async def login(body: LoginRequest) -> LoginResponse:
        token = gw.auth.login(body.username, body.password)
        if token is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password")
        p = gw.auth.check(token)
        assert p is not None
        return LoginResponse(token=token, user=p.user, role=p.role,
                             expires_in=gw.settings.http.token_ttl_s)

    @app.get("/api/v1/agents/me", response_model=AgentView)
    async def me(p: Auth) -> AgentView:
        return _agent_view(gw, p.user)

    @app.post("/api/v1/agents/me/state", response_model=AgentView)
    async def set_state(body: StateRequest, p: Auth) -> AgentView:
        try:
            gw.flow.set_advisor_state(p.user, body.state, body.reason)
        except (KeyError, ValueError) as e:
            raise HTTPException(status.HTTP_409_CONFLICT, str(e).strip("'\"")) from None
        return _agent_view(gw, p.user)

    @app.get("/api/v1/advisors", response_model=list[AgentView])
    async def advisors(p: Supervisor) -> list[AgentView]:
        return [_agent_view(gw, a.name) for a in gw.settings.advisors]

    @app.put("/api/v1/advisors/{name}/skills", response_model=AgentView)
    async def set_skills(name: str, body: SkillsRequest, p: Supervisor) -> AgentView:
        """Live skill and training changes: they count from the next routing decision."""
        try:
            gw.flow.update_skills(name, Skills(body.languages, body.topics, body.trainings))
        except KeyError as e:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(e).strip("'\"")) from None
        return _agent_view(gw, name)

    @app.get("/api/v1/routing")
    async def routing(p: Supervisor) -> dict[str, Any]:
        """The distributor's live picture: advisors, waiting calls, positions, waits."""
        return gw.flow.distributor.snapshot(time.time())

    @app.get("/api/v1/ivr/flags")
    async def ivr_flags(p: Supervisor) -> dict[str, bool]:
        """The gateway-wide flags IVR flows branch on (e.g. crisis)."""
        return dict(gw.flow.flags)

    @app.put("/api/v1/ivr/flags/{name}")
    async def set_ivr_flag(name: str, body: FlagRequest, p: Supervisor) -> dict[str, bool]:
        """Switch a flag (e.g. a crisis is on): it counts from the next caller's IVR."""
        gw.flow.set_flag(name, body.value, by=p.user)
        return dict(gw.flow.flags)

    @app.get("/api/v1/calls")
    async def active_calls(p: Auth) -> list[dict[str, Any]]:
        calls = gw.flow.active_calls()
        if p.role == "advisor":
            calls = [c for c in calls if c["advisor"] == p.user]
        return calls

    @app.get("/api/v1/calls/{call_id}")
    async def call_detail(call_id: str, p: Auth) -> dict[str, Any]:
        rec = gw.store.get_call(call_id)
        active = next((c for c in gw.flow.active_calls() if c["call_id"] == call_id), None)
        advisor = rec.advisor if rec else (active or {}).get("advisor")
        if (rec is None and active is None) or (p.role == "advisor" and advisor != p.user):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such call")
        return {"active": active, "record": dataclasses.asdict(rec) if rec else None,
                "offers": gw.store.offers(call_id)}

    @app.websocket("/api/v1/ws")
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
        await gw.hub.serve(websocket, p, since)

    return app


def _agent_view(gw: "Gateway", name: str) -> AgentView:
    a = gw.settings.advisor(name)
    if a is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such advisor")
    if a.role != "advisor":
        return AgentView(name=a.name, display_name=a.display_name, role=a.role, state=None,
                         languages={}, topics={}, trainings={})
    skills = gw.flow.skills.get(name)
    return AgentView(
        name=a.name, display_name=a.display_name, role=a.role,
        state=gw.flow.distributor.advisor_state(name).value,
        languages=skills.languages, topics=skills.topics, trainings=skills.trainings,
    )
