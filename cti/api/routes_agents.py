"""Login, the advisor's own state and history, advisors' skills (supervisors)."""

# No `from __future__ import annotations`: FastAPI must see the real types.
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Request, status
from fastapi.responses import JSONResponse

from cti.api.actions import ActionError, set_state
from cti.api.auth import RateLimited
from cti.api.deps import GatewayApi
from cti.api.guard import Auth, bearer_token
from cti.api.limits import Vocabulary, unknown_keys
from cti.api.roles import V1
from cti.api.schemas import (
    AgentView,
    LoginRequest,
    LoginResponse,
    RecoveryRequest,
    SkillsRequest,
    StateRequest,
)
from cti.core.skills import Skills
from cti.edge.rpc import EdgeRpcError
from cti.routing import AdvisorState
from cti.store.reports import Reports, start_of_today


def http_error(e: ActionError) -> HTTPException:
    return HTTPException(e.status, e.message)


def register(app: FastAPI, gw: GatewayApi, reports: Reports) -> None:
    vocab = Vocabulary.of(gw.settings)

    @app.post(f"{V1}/login", response_model=LoginResponse,
            responses={401: {"description": "wrong user name or password"},
                       429: {"description": "too many failed logins (see Retry-After)"}})
    async def login(body: LoginRequest, request: Request) -> Any:
        ip = request.client.host if request.client else ""
        try:
            token = await gw.auth.login(body.username, body.password, ip)
        except RateLimited as e:
            return JSONResponse({"detail": str(e)}, status.HTTP_429_TOO_MANY_REQUESTS,
                                headers={"Retry-After": str(e.retry_after)})
        if token is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password")
        p = gw.auth.check(token)
        assert p is not None
        return LoginResponse(token=token, user=p.user, role=p.role,
                             expires_in=gw.settings.http.token_ttl_s)

    @app.post(f"{V1}/logout", status_code=204)
    async def logout(p: Auth, request: Request) -> None:
        """End this token now."""
        token = bearer_token(request)
        if token:
            await gw.auth.expire(token)

    @app.post(f"{V1}/agents/me/phone",
              responses={503: {"description": "the SIP edge cannot take the credentials"}})
    async def phone(p: Auth, request: Request) -> dict[str, Any]:
        """Where this advisor's calls ring: {"mode": "desk"}, or "browser" with
        short-lived SIP credentials for the page's WebSocket phone (they end with
        this token: logout or expiry)."""
        phones = gw.browser_phones
        token = bearer_token(request)
        if not token or not phones.enabled_for(p.user):
            return {"mode": "desk"}
        try:
            creds = await phones.issue(token, p.user, p.expires_at)
        except EdgeRpcError as e:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(e)) from None
        # The page's own scheme; behind a proxy its X-Forwarded-Proto counts only
        # from http.trusted_proxies (uvicorn's proxy_headers, cti.controller.gateway).
        return creds.public(gw.settings, secure=request.url.scheme == "https")

    @app.get(f"{V1}/agents/me", response_model=AgentView)
    async def me(p: Auth) -> AgentView:
        return agent_view(gw, p.user)

    @app.post(f"{V1}/agents/me/state", response_model=AgentView,
            responses={422: {"description": "unknown state or away reason"}})
    async def state(body: StateRequest, p: Auth) -> AgentView:
        """available / away (with a reason from config away_reasons) / logged_out."""
        if body.state == "available":
            await gw.presence.refresh()  # a phone that registered a moment ago counts
        try:
            set_state(gw, p, body.state, body.reason)
        except ActionError as e:
            raise http_error(e) from None
        return agent_view(gw, p.user)

    @app.get(f"{V1}/agents/me/history")
    async def history(p: Auth) -> list[dict[str, Any]]:
        """Today's calls of the advisor (newest first) with their wrap-up."""
        return reports.history(p.user, start_of_today())

    @app.get(f"{V1}/advisors", response_model=list[AgentView])
    async def advisors(p: Auth) -> list[AgentView]:
        return [agent_view(gw, a.name) for a in gw.flow.advisors.all()]

    @app.put(f"{V1}/advisors/{{name}}/skills", response_model=AgentView,
             responses={404: {"description": "no such advisor"},
                        422: {"description": "a language, topic or training the "
                                             "config does not know"}})
    async def set_skills(name: Annotated[str, Path(max_length=64)], body: SkillsRequest,
                         p: Auth, request: Request) -> AgentView:
        """Live skill and training changes: they count from the next routing decision.
        Stored (they survive a restart) and audited before this answers. Languages
        and topics are the IVR's codes, trainings those the config names."""
        a = gw.flow.advisors.get(name)
        if a is None or a.role != "advisor":
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such advisor")
        errors = (unknown_keys("languages", body.languages, vocab.languages)
                  + unknown_keys("topics", body.topics, vocab.topics)
                  + unknown_keys("trainings", body.trainings, vocab.trainings))
        if errors:
            raise HTTPException(422, errors)
        try:
            await gw.flow.update_skills(
                name, Skills(body.languages, body.topics, body.trainings), by=p.user,
                address=request.client.host if request.client else None)
        except KeyError as e:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(e).strip("'\"")) from None
        return agent_view(gw, name)

    @app.post(f"{V1}/advisors/{{name}}/recovery", response_model=AgentView,
              responses={404: {"description": "no such advisor"},
                         409: {"description": "the advisor is logged out"}})
    async def grant_recovery(name: Annotated[str, Path(max_length=64)], body: RecoveryRequest,
                             p: Auth) -> AgentView:
        """A recovery break for an advisor: away (reason recovery) for the minutes
        given, from now or from the end of their call; audited, announced."""
        a = gw.flow.advisors.get(name)
        if a is None or a.role != "advisor":
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such advisor")
        if gw.flow.distributor.advisor_state(name) is AdvisorState.LOGGED_OUT:
            raise HTTPException(status.HTTP_409_CONFLICT, f"{name} is logged out")
        gw.flow.recovery.start(name, body.minutes * 60, call_id=None, by=p.user,
                               why="granted")
        return agent_view(gw, name)



def agent_view(gw: GatewayApi, name: str) -> AgentView:
    a = gw.flow.advisors.get(name)
    if a is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such advisor")
    if a.role != "advisor":
        return AgentView(name=a.name, display_name=a.display_name, role=a.role, state=None,
                         languages={}, topics={}, trainings={})
    skills = gw.flow.skills.get(name)
    wrap = gw.flow.distributor.wrap_up_of(name)
    return AgentView(
        name=a.name, display_name=a.display_name, role=a.role,
        state=gw.flow.distributor.advisor_state(name).value,
        languages=skills.languages, topics=skills.topics, trainings=skills.trainings,
        wrap_until=wrap[0] if wrap else None, wrap_call=wrap[1] if wrap else None,
    )
