"""The floor: health, routing picture, IVR flags, queue statistics, directory,
wrap-up codes, away reasons and /metrics."""

# No `from __future__ import annotations`: FastAPI must see the real types.
import time
from collections import Counter
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Request, Response, status
from fastapi.responses import PlainTextResponse

from cti import metrics
from cti.api.deps import GatewayApi
from cti.api.guard import Auth
from cti.api.limits import Vocabulary
from cti.api.roles import V1
from cti.api.schemas import DirectoryItem, FlagRequest, WrapUpCodeItem
from cti.labels import labels as label_table
from cti.routing import AdvisorState
from cti.store.reports import Reports, service_by_queue, service_figures, start_of_today


def queue_stats(gw: GatewayApi, reports: Reports, now: float) -> dict[str, Any]:
    """What the wallboard shows: waiting per language and topic, longest wait,
    today's service level and abandoned calls (in all and per queue), advisors
    per state."""
    snap = gw.flow.distributor.snapshot(now)
    queues = snap["queues"]
    day = start_of_today(now)
    # Ended calls come from the store; calls still going on from the flow.
    times = reports.queue_times_by_queue(day)
    times += [((c.language, c.topic), c.queued_at, c.answered_at, None)
              for c in gw.flow.calls.all()
              if c.queued_at is not None and c.queued_at >= day and c.answered_at is not None]
    states = Counter(a["state"] for a in snap["advisors"])
    target = gw.settings.wallboard.service_level_s
    return {
        "now": now,
        "queues": queues,
        "waiting": sum(q["waiting"] for q in queues),
        "longest_wait_s": max((q["longest_wait_s"] for q in queues), default=0.0),
        "today": service_figures([t[1:] for t in times], target),
        "service_levels": service_by_queue(times, target),
        "advisors": {s.value: states.get(s.value, 0) for s in AdvisorState},
    }


def register(app: FastAPI, gw: GatewayApi, reports: Reports) -> None:
    flags = Vocabulary.of(gw.settings).flags

    @app.get(f"{V1}/health", responses={503: {"description": "down: no call can be "
                                                            "answered (same body)"}})
    async def health(response: Response) -> dict[str, Any]:
        """ok, degraded (calls are answered, something is wrong: see reasons) or
        down (no call can be answered); down answers 503 for monitors and balancers."""
        body = gw.health()
        if body["status"] == "down":
            response.status_code = 503
        return body

    @app.get(f"{V1}/routing")
    async def routing(p: Auth) -> dict[str, Any]:
        """The distributor's live picture: advisors, waiting calls, positions, waits."""
        return gw.flow.distributor.snapshot(time.time())

    @app.get(f"{V1}/ivr/flags")
    async def ivr_flags(p: Auth) -> dict[str, bool]:
        """The gateway-wide flags IVR flows branch on (e.g. crisis)."""
        return dict(gw.flow.flags)

    @app.put(f"{V1}/ivr/flags/{{name}}",
             responses={422: {"description": "a flag the config does not name"}})
    async def set_ivr_flag(name: Annotated[str, Path(max_length=64)], body: FlagRequest,
                           p: Auth, request: Request) -> dict[str, bool]:
        """Switch a flag (e.g. a crisis is on): it counts from the next caller's IVR.
        Stored (it survives a restart) and audited before this answers. Only flags
        the config names (ivr.flags, or a flow's `flag:<name>` branch)."""
        if name not in flags:
            raise HTTPException(422, [{
                "type": "value_error", "loc": ["path", "name"], "input": name,
                "msg": f"unknown flag (expected one of {', '.join(sorted(flags))})"}])
        try:
            await gw.flow.set_flag(name, body.value, by=p.user,
                                   address=request.client.host if request.client else None)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        return dict(gw.flow.flags)

    @app.get(f"{V1}/stats/queues")
    async def stats(p: Auth) -> dict[str, Any]:
        """Waiting per language and topic, longest wait, today's service level
        (answered within wallboard.service_level_s / answered + abandoned),
        abandoned today, advisors per state."""
        return queue_stats(gw, reports, time.time())

    @app.get(f"{V1}/directory", response_model=list[DirectoryItem])
    async def directory(p: Auth) -> list[DirectoryItem]:
        """Transfer targets (target_type external). An entry with a `country` is that
        country's embassy: the one of the caller's country is the caller's embassy."""
        return [DirectoryItem(key=d.key, name=d.name, number=d.number, country=d.country)
                for d in gw.settings.directory]

    @app.get(f"{V1}/wrap-up-codes", response_model=list[WrapUpCodeItem])
    async def wrap_up_codes(p: Auth) -> list[WrapUpCodeItem]:
        return [WrapUpCodeItem(code=c.code, label=c.label) for c in gw.settings.wrap_up.codes]

    @app.get(f"{V1}/labels")
    async def labels(p: Auth) -> dict[str, dict[str, str]]:
        """Words for the codes screens show: {topics, languages, wrap_up_codes,
        end_reasons, states, away_reasons: {code: word}} (from the config; states,
        end reasons and the gateway's own away reasons: cti/labels.py)."""
        return label_table(gw.settings)

    @app.get(f"{V1}/away-reasons")
    async def away_reasons(p: Auth) -> list[str]:
        return list(gw.settings.away_reasons)

    @app.get("/metrics", response_class=PlainTextResponse,
           responses={200: {"content": {metrics.CONTENT_TYPE: {}}}})
    async def prometheus() -> PlainTextResponse:
        """Prometheus text format. Open to clients on the gateway's own host (the
        scraper), else a supervisor's or admin's bearer token."""
        return PlainTextResponse(metrics.render(gw, reports), media_type=metrics.CONTENT_TYPE,
                                 status_code=status.HTTP_200_OK)

