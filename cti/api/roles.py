"""Who may use what: one table for every REST route and WebSocket command.

The table is the enforcement, not documentation: a guard dependency on every
router looks the matched route up here and refuses a route that has no rule
(fail closed). The tests enumerate ``app.routes`` and the WebSocket commands
against these tables, so a new route or command without a rule fails them.

Rules:
- ``public``: no token (login, health, the static pages, the OpenAPI docs).
- ``user``: any valid token; call-scoped routes also check the call's owner
  (an advisor only reaches calls where ``flow.advisor_of(call)`` is themself).
- ``advisor``: advisors only (they take calls: state, offers, history).
- ``supervisor``: supervisors and admins.
- ``coach``: coaches, supervisors and admins (conversation coaches listen to
  recordings and to live calls; they take no calls and see no floor).
- ``admin``: admins only (who works here: advisors, their passwords and roles).
- ``local_or_supervisor``: /metrics: a Prometheus scraper on the same host
  without a token (a scraper cannot renew expiring tokens), else a supervisor's
  or admin's token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

Rule = Literal["public", "user", "advisor", "coach", "supervisor", "admin",
               "local_or_supervisor"]

V1 = "/api/v1"
#: Plugins' routes live under /api/v1/plugins/<plugin>.
PLUGIN_API_PREFIX = f"{V1}/plugins"

ROUTE_ROLES: dict[tuple[str, str], Rule] = {
    ("POST", f"{V1}/login"): "public",
    ("POST", f"{V1}/logout"): "user",
    ("GET", f"{V1}/health"): "public",
    ("GET", f"{V1}/agents/me"): "user",
    ("POST", f"{V1}/agents/me/phone"): "advisor",
    ("POST", f"{V1}/agents/me/state"): "advisor",
    ("GET", f"{V1}/agents/me/history"): "advisor",
    ("GET", f"{V1}/advisors"): "supervisor",
    ("PUT", f"{V1}/advisors/{{name}}/skills"): "supervisor",
    ("POST", f"{V1}/advisors/{{name}}/recovery"): "supervisor",
    ("GET", f"{V1}/admin/advisors"): "admin",
    ("POST", f"{V1}/admin/advisors"): "admin",
    ("PATCH", f"{V1}/admin/advisors/{{name}}"): "admin",
    ("DELETE", f"{V1}/admin/advisors/{{name}}"): "admin",
    ("GET", f"{V1}/routing"): "supervisor",
    ("GET", f"{V1}/ivr/flags"): "supervisor",
    ("PUT", f"{V1}/ivr/flags/{{name}}"): "supervisor",
    ("GET", f"{V1}/calls"): "user",
    ("GET", f"{V1}/calls/{{call_id}}"): "user",
    ("POST", f"{V1}/calls/{{call_id}}/hangup"): "user",
    ("POST", f"{V1}/calls/{{call_id}}/hold"): "user",
    ("POST", f"{V1}/calls/{{call_id}}/recording"): "user",
    ("POST", f"{V1}/calls/{{call_id}}/transfer"): "user",
    ("POST", f"{V1}/calls/{{call_id}}/consult/complete"): "user",
    ("POST", f"{V1}/calls/{{call_id}}/consult/cancel"): "user",
    ("POST", f"{V1}/calls/{{call_id}}/offer/accept"): "advisor",
    ("POST", f"{V1}/calls/{{call_id}}/offer/reject"): "advisor",
    ("POST", f"{V1}/calls/{{call_id}}/wrap-up"): "user",
    # Live monitoring (listen, whisper, barge): coaches, supervisors, admins.
    ("POST", f"{V1}/calls/{{call_id}}/monitor"): "coach",
    ("PATCH", f"{V1}/calls/{{call_id}}/monitor"): "coach",
    ("DELETE", f"{V1}/calls/{{call_id}}/monitor"): "coach",
    ("GET", f"{V1}/records"): "user",
    ("GET", f"{V1}/stats/queues"): "supervisor",
    ("GET", f"{V1}/audit"): "supervisor",
    ("GET", f"{V1}/directory"): "user",
    ("GET", f"{V1}/wrap-up-codes"): "user",
    ("GET", f"{V1}/away-reasons"): "user",
    ("GET", f"{V1}/labels"): "user",
    ("GET", "/metrics"): "local_or_supervisor",
    # The web pages themselves are public; everything they show comes from the API.
    ("GET", "/agent"): "public",
    ("GET", "/wallboard"): "public",
    ("GET", "/coach"): "public",
    ("GET", "/web/{name}"): "public",
}

# FastAPI's own documentation routes (no data, no actions).
DOC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})

# The WebSocket itself needs a valid token of any role (closed with 4401 if not).
WS_PATH = f"{V1}/ws"

WS_COMMAND_ROLES: dict[str, Rule] = {
    "ping": "user",
    "state": "advisor",
    "offer.accept": "advisor",
    "offer.reject": "advisor",
    "hangup": "user",
    "hold": "user",
    "recording": "user",
    "transfer": "user",
    "consult.complete": "user",
    "consult.cancel": "user",
    "wrap_up": "user",
}


def route_rules(extra: Iterable[Mapping[tuple[str, str], Rule]] = ()) -> dict[tuple[str, str], Rule]:
    """The one table of a gateway: the core routes' rules and those of its plugins'
    routes (cti/plugins/services.py PluginHttp). A plugin cannot change a core rule."""
    table = dict(ROUTE_ROLES)
    for rules in extra:
        for key, rule in rules.items():
            if key in ROUTE_ROLES:
                raise ValueError(f"a plugin route may not replace the rule of {key[0]} {key[1]}")
            table[key] = rule
    return table


def allows(rule: Rule, role: str) -> bool:
    """Whether a logged-in role passes a rule (public and user pass everyone; a
    coach passes only ``coach``)."""
    if rule in ("public", "user"):
        return True
    if rule == "advisor":
        return role == "advisor"
    if rule == "coach":
        return role in ("coach", "supervisor", "admin")
    if rule == "admin":
        return role == "admin"
    return role in ("supervisor", "admin")
