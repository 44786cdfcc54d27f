"""The guides' REST routes, under /api/v1/plugins/guides."""

# No `from __future__ import annotations`: FastAPI must see the real types.
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response

from cti.plugins.api import ActionError, Rule, user_of
from plugins.guides.schemas import GuideEdit, GuideOut
from plugins.guides.services import Guides, UnknownGuide
from plugins.guides.storage import Guide

#: Everyone logged in reads the guides (the desktop); supervisors edit them.
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/guides"): "user",
    ("GET", "/guides/{topic}/{language}"): "user",
    ("PUT", "/guides/{topic}/{language}"): "supervisor",
    ("DELETE", "/guides/{topic}/{language}"): "supervisor",
}
Code = Annotated[str, Path(max_length=64)]


def _out(g: Guide) -> GuideOut:
    return GuideOut(topic=g.topic, language=g.language, markdown=g.markdown, source=g.source,
                    updated_at=g.updated_at, updated_by=g.updated_by)


def make_router(guides: Guides) -> APIRouter:
    router = APIRouter(tags=["guides"])

    @router.get("/guides")
    async def list_guides() -> list[GuideOut]:
        """Every guide there is, by topic and language (an edit hides its file)."""
        return [_out(g) for g in guides.all()]

    @router.get("/guides/{topic}/{language}")
    async def get_guide(topic: Code, language: Code) -> GuideOut:
        try:
            return _out(guides.get(topic, language))
        except UnknownGuide as e:
            raise HTTPException(404, str(e)) from None

    @router.put("/guides/{topic}/{language}")
    async def edit_guide(topic: Code, language: Code, body: GuideEdit,
                         request: Request) -> GuideOut:
        """Replace the guide (stored and audited): the next screen pop shows it."""
        try:
            return _out(await guides.edit(topic, language, body.markdown, user_of(request)))
        except ActionError as e:
            raise HTTPException(422, str(e)) from None

    @router.delete("/guides/{topic}/{language}", status_code=204)
    async def revert_guide(topic: Code, language: Code, request: Request) -> Response:
        """Drop the edit: the guide's file counts again."""
        try:
            await guides.revert(topic, language, user_of(request))
        except ActionError as e:
            raise HTTPException(422, str(e)) from None
        except UnknownGuide as e:
            raise HTTPException(404, str(e)) from None
        return Response(status_code=204)

    return router
