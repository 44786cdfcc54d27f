"""The crisis line's REST routes, under /api/v1/plugins/crisis_line."""

# No `from __future__ import annotations`: FastAPI must see the real types.
from fastapi import APIRouter, HTTPException, Request

from cti.plugins.api import ActionError, Rule, user_of
from plugins.crisis_line.schemas import CrisisOut, CrisisStart
from plugins.crisis_line.services import BadCrisis, CrisisLine
from plugins.crisis_line.storage import Crisis

#: The rule of every route (cti/api/roles.py): supervisors start and end crises;
#: every logged-in user may see the one in force (the desktop shows it).
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/crises"): "supervisor",
    ("GET", "/crises/current"): "user",
    ("POST", "/crises"): "supervisor",
    ("POST", "/crises/current/end"): "supervisor",
}


def make_router(line: CrisisLine) -> APIRouter:
    router = APIRouter(tags=["crisis line"])

    def out(c: Crisis) -> CrisisOut:
        return CrisisOut(
            crisis_id=c.crisis_id, name=c.name, active=c.ended_at is None, numbers=c.numbers,
            dedicated_number=c.dedicated_number, priority=c.priority, training=c.training,
            reserve=sorted(line.reserve_pool(c)), team=c.team,
            overflow_after_s=c.overflow_after_s, overflow_waiting=c.overflow_waiting,
            started_at=c.started_at, started_by=c.started_by, ended_at=c.ended_at,
            ended_by=c.ended_by, **line.stats(c))

    @router.get("/crises")
    async def list_crises() -> list[CrisisOut]:
        """The last crises, newest first (the one in force, if any, first)."""
        current = line.current
        return [out(current if current and c.crisis_id == current.crisis_id else c)
                for c in line.repo.recent()]

    @router.get("/crises/current")
    async def current_crisis() -> CrisisOut | None:
        """The crisis in force, or null."""
        return out(line.current) if line.current is not None else None

    @router.post("/crises", status_code=201)
    async def start_crisis(body: CrisisStart, request: Request) -> CrisisOut:
        """Start a crisis: announcement and IVR option for new callers, crisis routing."""
        try:
            return out(await line.start(body, user_of(request)))
        except BadCrisis as e:  # a value that does not fit the config
            raise HTTPException(422, str(e)) from None
        except ActionError as e:  # another crisis is in force
            raise HTTPException(409, str(e)) from None

    @router.post("/crises/current/end")
    async def end_crisis(request: Request) -> CrisisOut:
        """End the crisis in force: the normal flow again from the next caller."""
        try:
            return out(await line.end(user_of(request)))
        except ActionError as e:
            raise HTTPException(409, str(e)) from None

    return router
