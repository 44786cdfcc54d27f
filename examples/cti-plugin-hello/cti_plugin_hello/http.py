"""The REST routes, under /api/v1/plugins/hello, and the rule of each (fail closed)."""

# No `from __future__ import annotations`: FastAPI must see the real types.
from fastapi import APIRouter, HTTPException, Request

from cti.plugins.api import ActionError, Rule, user_of
from cti_plugin_hello.schemas import VipIn, VipOut
from cti_plugin_hello.services import Vips

#: (method, path as declared below) -> who may use it (cti/api/roles.py).
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/vips"): "supervisor",
    ("POST", "/vips"): "supervisor",
}


def make_router(vips: Vips) -> APIRouter:
    router = APIRouter(tags=["hello"])

    @router.get("/vips")
    async def list_vips() -> list[VipOut]:
        """Every VIP number and how many calls it made today."""
        return vips.list()

    @router.post("/vips", status_code=201)
    async def add_vip(body: VipIn, request: Request) -> VipOut:
        """Add a VIP number (stored: it stays one after a restart)."""
        try:
            return await vips.add(body.number, user_of(request))
        except ActionError as e:
            raise HTTPException(409, str(e)) from None

    return router
