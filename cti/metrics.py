"""/metrics in the Prometheus text format (0.0.4), read from live state at scrape time.

Hand-written rather than prometheus-client: every figure already lives in the
flow, the distributor, the worker pool or the store, so a scrape only formats them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

from cti.api.deps import GatewayApi
from cti.routing import AdvisorState
from cti.store.reports import Reports

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Offer outcomes that mean the advisor did not pick up.
NO_ANSWER_OUTCOMES = ("no_answer", "revoked:timeout")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str,
               samples: Iterable[tuple[dict[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} {kind}")
        sample_name = f"{name}_total" if kind == "counter" else name
        for labels, value in samples:
            self.lines.append(f"{sample_name}{_labels(labels)} {float(value):g}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(gw: GatewayApi, reports: Reports) -> str:
    now = time.time()
    w = _Writer()
    calls = Counter(c.state for c in gw.flow.calls.all())
    w.family("cti_calls", "gauge", "Active customer calls by state.",
             [({"state": s}, n) for s, n in sorted(calls.items())])
    snap = gw.flow.distributor.snapshot(now)
    queues = snap["queues"]
    w.family("cti_queue_waiting", "gauge", "Calls waiting per language and topic.",
             [({"language": q["language"], "topic": q["topic"]}, q["waiting"]) for q in queues])
    w.family("cti_queue_longest_wait_seconds", "gauge",
             "Longest current wait per language and topic.",
             [({"language": q["language"], "topic": q["topic"]}, q["longest_wait_s"])
              for q in queues])
    states = Counter(a["state"] for a in snap["advisors"])
    w.family("cti_advisors", "gauge", "Advisors per state.",
             [({"state": s.value}, states.get(s.value, 0)) for s in AdvisorState])
    outcomes = reports.offer_outcomes()
    w.family("cti_offers", "counter", "Offers made to advisors (their phone rang).",
             [({}, sum(outcomes.values()))])
    w.family("cti_offer_outcomes", "counter", "Offers by outcome.",
             [({"outcome": o}, n) for o, n in sorted(outcomes.items())])
    w.family("cti_no_answers", "counter", "Offers the advisor did not pick up.",
             [({}, sum(outcomes.get(o, 0) for o in NO_ANSWER_OUTCOMES))])
    links = sorted(gw.pool.links.values(), key=lambda link: link.worker_id)
    w.family("cti_worker_up", "gauge", "1 when the media worker is running.",
             [({"worker": link.worker_id}, 1 if link.up else 0) for link in links])
    w.family("cti_worker_restarts", "counter", "Restarts of each media worker.",
             [({"worker": link.worker_id}, link.restarts) for link in links])
    w.family("cti_websocket_clients", "gauge", "Connected CTI WebSocket clients.",
             [({}, len(gw.hub.clients))])
    w.family("cti_websocket_slow_closes", "counter",
             "WebSocket clients closed (4408) because they stopped reading: send queue full.",
             [({}, gw.hub.slow_closes)])
    w.family("cti_events", "counter", "Events published on the bus.",
             [({}, gw.bus.last_seq)])
    errors = gw.plugins.error_counts()
    w.family("cti_plugin_errors", "counter",
             "Plugin hook implementations that raised (the call went on without them).",
             [({"plugin": p, "hook": h}, n) for (p, h), n in sorted(errors.items())])
    w.family("cti_plugins_enabled", "gauge", "Plugins enabled in the config.",
             [({"plugin": name}, 1) for name in sorted(gw.plugins.plugins)])
    for services in gw.plugin_services.values():
        m = services.metrics
        for name, (help_, values) in sorted(m.counters.items()):
            w.family(f"cti_plugin_{m.plugin}_{name}", "counter", help_,
                     [(dict(labels), v) for labels, v in sorted(values.items())])
    health = gw.health()
    store = health["store"]
    w.family("cti_store_ok", "gauge",
             "1 when the store writes (0: call-path writes are queued in memory).",
             [({}, 1 if store["ok"] else 0)])
    w.family("cti_store_pending_writes", "gauge",
             "Call-path writes queued because the store could not write.",
             [({}, store["pending"])])
    w.family("cti_store_write_failures", "counter", "Store writes that failed.",
             [({}, store["failures"])])
    w.family("cti_store_dropped_writes", "counter",
             "Queued writes dropped because the queue was full (records lost).",
             [({}, store["dropped"])])
    w.family("cti_event_loop_lag_seconds", "gauge",
             "How late the controller's event loop last woke up.",
             [({}, health["event_loop"]["lag_ms"] / 1000)])
    overload = health["overload"]
    w.family("cti_overload_refusing", "gauge",
             "1 while new hotline calls are refused for overload (503 Lines busy).",
             [({}, 1 if overload["shedding"] else 0)])
    w.family("cti_overload_refused_calls", "counter",
             "Hotline calls the edge refused for overload.",
             [({}, overload["calls_refused"])])
    w.family("cti_overload_episodes", "counter", "Times the gateway began refusing for overload.",
             [({}, overload["episodes"])])
    w.family("cti_machine_cpu_percent", "gauge",
             "The machine's CPU busy (all cores) at the last overload sample.",
             [({}, overload["cpu_percent"])])
    w.family("cti_degraded", "gauge", "1 when /health says degraded or down.",
             [({}, 1 if health["status"] != "ok" else 0)])
    w.family("cti_down", "gauge", "1 when /health says down (no call can be answered).",
             [({}, 1 if health["status"] == "down" else 0)])
    edge = health["edge"]
    w.family("cti_edge_up", "gauge", "1 when the SIP edge (Kamailio) runs and answers SIP.",
             [({}, 1 if edge["up"] and edge["answering"] else 0)])
    w.family("cti_edge_restarts", "counter", "Restarts of the SIP edge (Kamailio).",
             [({}, edge["restarts"])])
    w.lines.extend(gw.flow.quality.prometheus_lines())  # histograms: their own lines
    w.family("cti_uptime_seconds", "gauge", "Seconds since the gateway started.",
             [({}, round(now - gw.started_at, 1))])
    return w.text()
