"""A gateway config for N media workers and M advisors on free loopback ports.

Starts from the demo config (its IVR, prompts, routing) like the e2e harness's
``gateway_settings``; the advisors are generated: ``load<i>`` with the skills every
load caller asks for, one shared API password (one argon2id hash, not M: hashing
costs ~150 ms each) and each their own SIP HA1. The demo supervisor stays for the
load generator's event stream. The per-source call limits are off: every SIPp
caller comes from 127.0.0.1. The crisis line's plugin is left out (it wants
crisis-trained advisors).
"""

from __future__ import annotations

import random
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cti.api.auth import hash_password, sip_ha1
from cti.ports import bindable, free_port, free_port_range

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "cti.yaml"
HOTLINE = "+31247247247"
ADVISOR_PASSWORD = "load-advisor"
SUPERVISOR = ("nadia", "demo-nadia")
# The load's RTP ranges (workers, rtpengine) come from below the range cti.ports
# hands to tests' gateways (20000-32000): in a test run those small random spans,
# remembered for the whole process, leave no run of hundreds of free ports there.
RTP_LOW, RTP_HIGH = 10000, 20000
# The workers' SIP ports: below the RTP ones (5,000 workers at most fit).
SIP_LOW, SIP_HIGH = 4000, 10000
# Ports a worker: 40 while they fit, fewer for a large pool (a worker holds at most
# 4 calls, an RTP+RTCP pair each: 16 leave room to churn), so 500+ workers fit.
RTP_PER_WORKER, RTP_PER_WORKER_MIN = 40, 16
RTPENGINE_PORTS = 64
# The menus the callers walk: language 1 (nl), topic 2 (visa): not the defaults a
# silent caller gets (a Dutch number guesses nl, the default topic is travel_advice),
# so a call queued for visa proves the digits arrived.
DIGITS = "12"
QUEUE = {"language": "nl", "topic": "visa"}


@dataclass(frozen=True)
class LoadConfig:
    path: Path
    data: dict[str, Any]
    advisors: list[str]

    @property
    def sip(self) -> tuple[str, int]:
        return self.data["sip"]["ip"], int(self.data["sip"]["port"])

    @property
    def api(self) -> str:
        http = self.data["http"]
        return f"http://{http['host']}:{http['port']}"

    @property
    def realm(self) -> str:
        return str(self.data["sip"]["realm"])


def _free_tcp_udp_block(n: int) -> int:
    """First of n consecutive ports free for both TCP and UDP (the workers' SIP).

    Below every range anything else here takes ports from: in the kernel's
    ephemeral range (32768+) a client socket opened while the gateway starts
    could take one of them, and the worker bound to it would fail the start."""
    for _ in range(500):
        base = random.randrange(SIP_LOW, SIP_HIGH - n)
        if all(bindable(base + i, (socket.SOCK_STREAM, socket.SOCK_DGRAM), "127.0.0.1")
               for i in range(n)):
            return base
    raise RuntimeError(f"no {n} consecutive free SIP ports in {SIP_LOW}-{SIP_HIGH}")


def rtp_per_worker(workers: int) -> int:
    """The RTP span per worker that fits ``workers`` (and rtpengine's) in the range."""
    room = RTP_HIGH - RTP_LOW - RTPENGINE_PORTS - 1000  # slack: some ports are in use
    per = min(RTP_PER_WORKER, room // workers) & ~1
    if per < RTP_PER_WORKER_MIN:
        raise ValueError(f"{workers} workers do not fit in RTP ports {RTP_LOW}-{RTP_HIGH} "
                         f"({RTP_PER_WORKER_MIN} each)")
    return per


def advisor_entries(count: int, realm: str) -> list[dict[str, Any]]:
    hashed = hash_password(ADVISOR_PASSWORD)
    return [{"name": name, "password_hash": hashed,
             "sip_ha1": sip_ha1(name, realm, sip_password(name)),
             "display_name": f"Load {i}",
             "languages": {"nl": 5, "en": 5},
             "topics": {"visa": 5, "passport": 5, "travel_advice": 5}}
            for i, name in enumerate(advisor_names(count))]


def advisor_names(count: int) -> list[str]:
    return [f"load{i}" for i in range(count)]


def sip_password(name: str) -> str:
    return f"sip-{name}"


def _supervisor(data: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in data["advisors"] if a["name"] == SUPERVISOR[0])


def generate(workers: int, advisors: int, webrtc: bool = True,
             root: Path | None = None, overload_cpu: float = 0.0,
             max_call_rate: int = 0) -> LoadConfig:
    """Write the config into a fresh runtime folder under /tmp (unix socket paths are
    capped at 107 bytes: it stays short)."""
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="cti-load-"))
        try:
            return generate(workers, advisors, webrtc, root, overload_cpu, max_call_rate)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)  # no free ports: leave nothing
            raise
    data: dict[str, Any] = yaml.safe_load(DEMO_CONFIG.read_text())
    guides = (data.get("plugins") or {}).get("guides")
    if guides is not None:
        guides["directory"] = str(DEMO_CONFIG.parent / guides.get("directory", "guides"))
    # the crisis line's plugin needs crisis-trained advisors; the load has none
    data["plugins"].pop("crisis_line", None)
    data["runtime_dir"] = str(root / "run")
    # SIPp stands in for a carrier: every call from one address (no per-source
    # limits, no flood guard: a trunk is exempt from both).
    data["sip"].update(port=free_port(), max_calls_per_source=0,
                       call_attempts_per_source_per_minute=0, flood_requests_per_second=0)
    data["http"].update(port=free_port(), login_attempts_per_minute=10_000)
    per = rtp_per_worker(workers)
    data["workers"].update(count=workers, sip_port_base=_free_tcp_udp_block(workers),
                           rtp_port_base=free_port_range(workers * per,
                                                         low=RTP_LOW, high=RTP_HIGH),
                           rtp_ports_per_worker=per)
    data["prompts"] = {"texts": str(REPO / "config" / "prompts.yaml"),
                       "cache_dir": str(REPO / "var" / "prompts"),
                       "override_dir": str(REPO / "config" / "prompts")}
    data["store"] = {"path": str(root / "cti.sqlite3")}
    data["routing"]["wrap_up_s"] = 0  # advisors are free again at once
    # Refusing for overload only when asked: SIPp's CPU is the machine's too.
    data["overload"] = ({"cpu_percent": overload_cpu} if overload_cpu
                        else {"cpu_percent": 0, "loop_lag_ms": 0})
    data["overload"]["max_new_calls_per_second"] = max_call_rate
    rtp_min = free_port_range(RTPENGINE_PORTS, low=RTP_LOW, high=RTP_HIGH)
    data["webrtc"].update(enabled=webrtc, ws_port=free_port(), ng_port=free_port(),
                          rtp_port_min=rtp_min, rtp_port_max=rtp_min + RTPENGINE_PORTS - 1)
    data["advisors"] = [_supervisor(data), *advisor_entries(advisors, data["sip"]["realm"])]
    path = root / "cti.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return LoadConfig(path, data, advisor_names(advisors))
