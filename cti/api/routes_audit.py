"""The audit for supervisors: who changed flags and skills, when, from where."""

# No `from __future__ import annotations`: FastAPI must see the real types.
from typing import Annotated, Any

from fastapi import FastAPI, Query

from cti.api.deps import GatewayApi
from cti.api.guard import Auth
from cti.api.roles import V1
from cti.store.audit import MAX_LIMIT
from cti.store.reports import Reports


def register(app: FastAPI, gw: GatewayApi, reports: Reports) -> None:

    @app.get(f"{V1}/audit")
    async def audit(p: Auth, action: str | None = None,
                    since: Annotated[float | None, Query(ge=0)] = None,
                    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
                    ) -> list[dict[str, Any]]:
        """Audit lines, newest first: ``action`` exactly (``flag.set``, ``skills.set``)
        or a prefix ending in '.' (``plugin.crisis_line.``); ``since``: unix time."""
        return [line.as_dict() for line in gw.store.audit.lines(action, since, limit)]
