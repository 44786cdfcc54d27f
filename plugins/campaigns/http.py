"""The campaigns plugin's REST routes, under /api/v1/plugins/campaigns."""

# No `from __future__ import annotations`: FastAPI must see the real types.
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from cti.plugins.api import ActionError, Rule, user_of
from plugins.campaigns.csvfile import CsvError
from plugins.campaigns.schemas import CampaignIn, CampaignOut, ContactOut, Counts
from plugins.campaigns.services import Campaigns
from plugins.campaigns.storage import Campaign

#: Supervisors upload, watch, pause, resume, stop and export campaigns.
RULES: dict[tuple[str, str], Rule] = {
    ("POST", "/campaigns"): "supervisor",
    ("GET", "/campaigns"): "supervisor",
    ("GET", "/campaigns/{campaign_id}"): "supervisor",
    ("GET", "/campaigns/{campaign_id}/contacts"): "supervisor",
    ("GET", "/campaigns/{campaign_id}/export.csv"): "supervisor",
    ("POST", "/campaigns/{campaign_id}/{action}"): "supervisor",
    ("GET", "/options"): "supervisor",
}


def make_router(cp: Campaigns) -> APIRouter:
    router = APIRouter(tags=["campaigns"])

    def out(c: Campaign) -> CampaignOut:
        return CampaignOut(**c.__dict__, counts=Counts(**cp.counts(c.campaign_id)))

    def get(campaign_id: int) -> Campaign:
        try:
            return cp.campaign(campaign_id)
        except KeyError:
            raise HTTPException(404, f"no campaign {campaign_id}") from None

    @router.get("/options")
    async def campaign_options() -> dict[str, Any]:
        """What an upload may name: the IVR's topics and languages, and the calling
        window campaigns get unless they bring their own."""
        ivr = cp.s.gateway.ivr
        return {"topics": [{"code": t.code, "name": t.name} for t in ivr.topics],
                "languages": [{"code": m.code, "name": m.name} for m in ivr.languages],
                "default_language": ivr.default_language,
                "window_start": cp.cfg.window_start, "window_end": cp.cfg.window_end}

    @router.post("/campaigns", status_code=201)
    async def create_campaign(body: CampaignIn, request: Request) -> CampaignOut:
        """A campaign from a CSV (number, name, language, note); 422 lists every bad
        line. It starts calling at once unless ``start`` is false."""
        try:
            return out(await cp.create(body, user_of(request)))
        except (CsvError, ActionError) as e:
            raise HTTPException(422, str(e)) from None

    @router.get("/campaigns")
    async def list_campaigns() -> list[CampaignOut]:
        """The latest campaigns, newest first, with their progress."""
        return [out(c) for c in cp.campaigns()]

    @router.get("/campaigns/{campaign_id}")
    async def one_campaign(campaign_id: int) -> CampaignOut:
        return out(get(campaign_id))

    @router.get("/campaigns/{campaign_id}/contacts")
    async def campaign_contacts(campaign_id: int) -> list[ContactOut]:
        """Every number of the campaign with its status and outcome."""
        get(campaign_id)
        return [ContactOut(**k.out()) for k in cp.contacts(campaign_id)]

    @router.get("/campaigns/{campaign_id}/export.csv")
    async def export_campaign(campaign_id: int) -> Response:
        """The outcomes as CSV: one line per number, with the advisor's wrap-up."""
        c = get(campaign_id)
        return Response(cp.export(campaign_id), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition":
                                 f'attachment; filename="campaign-{c.campaign_id}.csv"'})

    @router.post("/campaigns/{campaign_id}/{action}")
    async def campaign_action(campaign_id: int, action: Literal["pause", "resume", "stop"],
                              request: Request) -> CampaignOut:
        """pause (calls in progress go on), resume, stop (numbers not called yet end
        cancelled); 409 when the campaign's state does not allow it."""
        get(campaign_id)
        try:
            return out(await cp.set_state(campaign_id, action, user_of(request)))
        except ActionError as e:
            raise HTTPException(409, str(e)) from None

    return router
