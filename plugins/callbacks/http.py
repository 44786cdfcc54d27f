"""The callbacks plugin's REST routes, under /api/v1/plugins/callbacks."""

# No `from __future__ import annotations`: FastAPI must see the real types.
from fastapi import APIRouter, HTTPException, Request

from cti.plugins.api import ActionError, Rule, user_of
from plugins.callbacks.schemas import CallbackOut, CallbackStats, MoveIn
from plugins.callbacks.services import Callbacks

#: Supervisors list, cancel and reorder call backs; an advisor sees those they made.
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/requests"): "supervisor",
    ("POST", "/requests/{callback_id}/cancel"): "supervisor",
    ("POST", "/requests/{callback_id}/move"): "supervisor",
    ("GET", "/mine"): "advisor",
    ("GET", "/stats"): "supervisor",
}


def make_router(cb: Callbacks) -> APIRouter:
    router = APIRouter(tags=["callbacks"])

    def act_errors(e: Exception) -> HTTPException:
        if isinstance(e, KeyError):
            return HTTPException(404, f"no call back {e.args[0]}")
        return HTTPException(409, str(e))

    @router.get("/requests")
    async def list_callbacks(pending: bool = False) -> list[CallbackOut]:
        """Pending call backs in the order they are served, then the latest others."""
        return [CallbackOut(**r.out()) for r in cb.requests(pending_only=pending)]

    @router.post("/requests/{callback_id}/cancel")
    async def cancel_callback(callback_id: int, request: Request) -> CallbackOut:
        """Cancel a pending call back (409 once an advisor is making it)."""
        try:
            return CallbackOut(**(await cb.cancel(callback_id, user_of(request))).out())
        except (KeyError, ActionError) as e:
            raise act_errors(e) from None

    @router.post("/requests/{callback_id}/move")
    async def move_callback(callback_id: int, body: MoveIn, request: Request) -> CallbackOut:
        """Reorder: just before another pending call back, or last (``before`` null)."""
        try:
            return CallbackOut(**(await cb.move(callback_id, body.before,
                                                user_of(request))).out())
        except (KeyError, ActionError) as e:
            raise act_errors(e) from None

    @router.get("/mine")
    async def my_callbacks(request: Request) -> list[CallbackOut]:
        """The call backs the logged-in advisor made (or is making)."""
        return [CallbackOut(**r.out()) for r in cb.mine(user_of(request) or "")]

    @router.get("/stats")
    async def callback_stats() -> CallbackStats:
        """Counts for the wallboard: pending now, connected / unreached / cancelled
        today (since the gateway's local midnight), the next scheduled due time."""
        return CallbackStats(**cb.stats())

    return router
