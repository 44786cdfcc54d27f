"""The advisor's side of recordings, under /api/v1/plugins/recording: whether their
call is being recorded, pause and resume (for card numbers or passport data)."""

# No `from __future__ import annotations`: FastAPI must see the real types.
from fastapi import APIRouter, HTTPException, Request

from cti.plugins.api import ActionError, Rule, user_of
from plugins.recording.services import Recordings

CALL_RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/calls/{call_id}"): "advisor",
    ("POST", "/calls/{call_id}/pause"): "advisor",
    ("POST", "/calls/{call_id}/resume"): "advisor",
}


def make_call_router(rec: Recordings) -> APIRouter:
    router = APIRouter(tags=["recording"])

    def act(call_id: str, request: Request, resume: bool) -> dict[str, str]:
        try:
            return {"state": rec.pause(call_id, user_of(request), resume=resume)}
        except KeyError:
            raise HTTPException(404, f"no call {call_id}") from None
        except PermissionError as e:
            raise HTTPException(403, str(e)) from None
        except ActionError as e:
            raise HTTPException(409, str(e)) from None

    @router.get("/calls/{call_id}")
    async def recording_state(call_id: str, request: Request) -> dict[str, str | None]:
        """"recording", "paused", or null (not recorded)."""
        call = rec.s.calls.get(call_id)
        if call is None:
            raise HTTPException(404, f"no call {call_id}")
        if call.advisor != user_of(request):
            raise HTTPException(403, "only the advisor of the call")
        return {"state": rec.s.recorder.state(call_id)}

    @router.post("/calls/{call_id}/pause")
    async def pause_recording(call_id: str, request: Request) -> dict[str, str]:
        """Pause the recording of your call: silence in the file until resumed, the
        stretch listed in the index (409 if the call is not being recorded)."""
        return act(call_id, request, resume=False)

    @router.post("/calls/{call_id}/resume")
    async def resume_recording(call_id: str, request: Request) -> dict[str, str]:
        return act(call_id, request, resume=True)

    return router
