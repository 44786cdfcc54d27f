"""The recording plugin's REST routes for coaches and supervisors, under
/api/v1/plugins/recording (what each does and what is audited: access.py)."""

# No `from __future__ import annotations`: FastAPI must see the real types.
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from cti.plugins.api import Rule, user_of
from plugins.recording.access import (
    FileGone,
    NotFound,
    RecordingAccess,
    Refused,
    Unsatisfiable,
    parse_range,
    read_bytes,
)
from plugins.recording.schemas import AudioLinkOut, HoldIn, RecordingOut
from plugins.recording.storage import Search

#: Coaches (and supervisors, admins) find and listen; supervisors hold. The stream
#: route is public for the guard: it checks its signed audio link itself.
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/recordings"): "coach",
    ("GET", "/recordings/{recording_id}"): "coach",
    ("GET", "/recordings/{recording_id}/audio"): "coach",
    ("POST", "/recordings/{recording_id}/audio-link"): "coach",
    ("GET", "/recordings/{recording_id}/stream"): "public",
    ("GET", "/recordings/{recording_id}/download"): "coach",
    ("POST", "/recordings/{recording_id}/hold"): "supervisor",
}

PREFIX = "/api/v1/plugins/recording"


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _errors(e: NotFound | FileGone | Refused) -> HTTPException:
    code = 404 if isinstance(e, NotFound) else 410 if isinstance(e, FileGone) else 403
    return HTTPException(code, e.args[0] if e.args else str(e))


def make_router(access: RecordingAccess) -> APIRouter:
    router = APIRouter(tags=["recording"])

    async def audio(recording_id: int, request: Request, by: str | None) -> Response:
        r, path = access.file(recording_id)
        size = path.stat().st_size
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-store"}
        try:
            rng = parse_range(request.headers.get("range"), size)
        except Unsatisfiable as e:
            return Response(status_code=416, headers={**headers,
                            "Content-Range": f"bytes */{e.size}"})
        if rng is None or rng.start == 0:  # a playback starts here (access.py)
            await access.audit("recording.listen", by, r, _address(request),
                               range=request.headers.get("range"))
        if rng is None:
            return StreamingResponse(read_bytes(path, 0, size), media_type="audio/wav",
                                     headers={**headers, "Content-Length": str(size)})
        return StreamingResponse(
            read_bytes(path, rng.start, rng.length), status_code=206, media_type="audio/wav",
            headers={**headers, "Content-Length": str(rng.length),
                     "Content-Range": f"bytes {rng.start}-{rng.end}/{size}"})

    @router.get("/recordings")
    async def search_recordings(
            advisor: str | None = None, topic: str | None = None, number: str | None = None,
            since: Annotated[float | None, Query(description="unix seconds")] = None,
            until: Annotated[float | None, Query(description="unix seconds")] = None,
            limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[RecordingOut]:
        """Finished recordings (declined and failed ones too), newest first."""
        q = Search(advisor=advisor or None, topic=topic or None, number=number or None,
                   since=since, until=until, limit=limit)
        return [RecordingOut(**r.out()) for r in access.search(q)]

    @router.get("/recordings/{recording_id}")
    async def get_recording(recording_id: int) -> RecordingOut:
        try:
            return RecordingOut(**access.get(recording_id).out())
        except NotFound as e:
            raise _errors(e) from None

    @router.get("/recordings/{recording_id}/audio")
    async def recording_audio(recording_id: int, request: Request) -> Response:
        """The WAV, with Range (206); a listen is audited when it starts at byte 0."""
        try:
            return await audio(recording_id, request, user_of(request))
        except (NotFound, FileGone, Refused) as e:
            raise _errors(e) from None

    @router.post("/recordings/{recording_id}/audio-link")
    async def recording_audio_link(recording_id: int, request: Request) -> AudioLinkOut:
        """A signed link to the stream route for an <audio> element (access.py)."""
        try:
            link, expires = access.audio_link(recording_id, user_of(request) or "")
        except NotFound as e:
            raise _errors(e) from None
        return AudioLinkOut(url=f"{PREFIX}/recordings/{recording_id}/stream?link={link}",
                            expires_at=expires)

    @router.get("/recordings/{recording_id}/stream")
    async def recording_stream(recording_id: int, request: Request,
                               link: str = "") -> Response:
        """The audio route for a signed link instead of a token."""
        try:
            return await audio(recording_id, request, access.check_link(recording_id, link))
        except (NotFound, FileGone, Refused) as e:
            raise _errors(e) from None

    @router.get("/recordings/{recording_id}/download")
    async def recording_download(recording_id: int, request: Request) -> Response:
        """The whole file as an attachment, audited."""
        try:
            r, path = access.file(recording_id)
        except (NotFound, FileGone, Refused) as e:
            raise _errors(e) from None
        await access.audit("recording.download", user_of(request), r, _address(request))
        size = path.stat().st_size
        return StreamingResponse(read_bytes(path, 0, size), media_type="audio/wav", headers={
            "Content-Length": str(size), "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="recording-{r.recording_id}.wav"'})

    @router.post("/recordings/{recording_id}/hold")
    async def hold_recording(recording_id: int, body: HoldIn,
                             request: Request) -> RecordingOut:
        """Keep a recording past its retention (a complaint), or release it."""
        try:
            r = await access.hold(recording_id, body.held, body.reason, user_of(request),
                                  _address(request))
        except NotFound as e:
            raise _errors(e) from None
        return RecordingOut(**r.out())

    return router
