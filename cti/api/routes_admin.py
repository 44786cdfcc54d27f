"""Who works here, for admins: advisors (and supervisors, coaches, admins) with
their skills, trainings and passwords, changed live; each change stored and
audited (cti/controller/admin.py). The config's ``advisors`` are only the seed."""

# No `from __future__ import annotations`: FastAPI must see the real types.
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Request, Response

from cti.api.deps import GatewayApi
from cti.api.guard import Auth
from cti.api.limits import Vocabulary, unknown_keys
from cti.api.roles import V1
from cti.api.schemas import AdminAdvisorView, AdvisorChange, AdvisorCreate
from cti.core.advisors import AdminError
from cti.store.reports import Reports

ADVISOR = f"{V1}/admin/advisors"
NamePath = Annotated[str, Path(max_length=64)]


def register(app: FastAPI, gw: GatewayApi, reports: Reports) -> None:
    vocab = Vocabulary.of(gw.settings)

    def check_vocabulary(body: AdvisorCreate | AdvisorChange) -> None:
        errors = (unknown_keys("languages", body.languages or {}, vocab.languages)
                  + unknown_keys("topics", body.topics or {}, vocab.topics)
                  + unknown_keys("trainings", body.trainings or {}, vocab.trainings))
        if errors:
            raise HTTPException(422, errors)

    @app.get(ADVISOR, response_model=list[AdminAdvisorView])
    async def advisors(p: Auth) -> list[AdminAdvisorView]:
        return [view(gw, a.name) for a in gw.flow.advisors.all()]

    @app.post(ADVISOR, response_model=AdminAdvisorView, status_code=201,
              responses={409: {"description": "the name is taken"},
                         422: {"description": "a short password, an unknown skill, an "
                                              "advisor without languages or topics"}})
    async def add(body: AdvisorCreate, p: Auth, request: Request) -> AdminAdvisorView:
        """Works at once: the advisor logs in, registers their phone and takes calls."""
        check_vocabulary(body)
        fields = body.model_dump(exclude={"name", "password"}, exclude_none=True)
        try:
            await gw.admin.add(body.name, body.password, fields, p.user, address(request))
        except AdminError as e:
            raise HTTPException(e.status, e.message) from None
        return view(gw, body.name)

    @app.patch(f"{ADVISOR}/{{name}}", response_model=AdminAdvisorView,
               responses={404: {"description": "no such advisor"},
                          409: {"description": "a new role while on a call"},
                          422: {"description": "as for POST"}})
    async def change(name: NamePath, body: AdvisorChange, p: Auth,
                     request: Request) -> AdminAdvisorView:
        """A new role ends the user's logins (they log in again with it)."""
        check_vocabulary(body)
        fields = body.model_dump(exclude={"password"}, exclude_unset=True)
        try:
            await gw.admin.update(name, fields, body.password, p.user, address(request))
        except AdminError as e:
            raise HTTPException(e.status, e.message) from None
        return view(gw, name)

    @app.delete(f"{ADVISOR}/{{name}}", status_code=204,
                responses={404: {"description": "no such advisor"},
                           409: {"description": "on a call: remove them after it"}})
    async def remove(name: NamePath, p: Auth, request: Request) -> Response:
        """Logged out, their logins ended, their phone's registration refused."""
        if name == p.user:
            raise HTTPException(409, "an admin cannot remove themself")
        try:
            await gw.admin.remove(name, p.user, address(request))
        except AdminError as e:
            raise HTTPException(e.status, e.message) from None
        return Response(status_code=204)


def address(request: Request) -> str | None:
    return request.client.host if request.client else None


def view(gw: GatewayApi, name: str) -> AdminAdvisorView:
    a = gw.flow.advisors.get(name)
    if a is None:
        raise HTTPException(404, "no such advisor")
    d = gw.flow.distributor
    if name in d.advisor_names():  # the live skills (a supervisor's edit too)
        s = gw.flow.skills.get(name)
        languages, topics, trainings = s.languages, s.topics, s.trainings
        state: Any = d.advisor_state(name).value
    else:
        languages, topics, trainings = dict(a.languages), dict(a.topics), dict(a.trainings)
        state = None
    return AdminAdvisorView(name=a.name, display_name=a.display_name, role=a.role,
                            languages=languages, topics=topics, trainings=trainings,
                            state=state)
