"""pjsua2's settings for a media engine: the endpoint (no threads of its own, G.711 clock)
and an account (its RTP span, session timers). Pure builders, kept apart from the engine."""

from __future__ import annotations

import pjsua2 as pj

from cti.media.model import EngineConfig
from cti.media.pacing import CLOCK_RATE

MAX_CALLS = 4  # PJSUA_MAX_CALLS of the wheel; higher values are silently clamped


def endpoint_config(cfg: EngineConfig) -> pj.EpConfig:
    ep = pj.EpConfig()
    ua = ep.uaConfig
    ua.threadCnt = 0
    ua.mainThreadOnly = False
    ua.maxCalls = MAX_CALLS
    ua.userAgent = cfg.user_agent
    med = ep.medConfig
    med.hasIoqueue = False  # RTP read by the same poll as SIP: no media thread
    med.threadCnt = 0
    med.clockRate = med.sndClockRate = CLOCK_RATE
    med.sndAutoCloseTime = cfg.snd_auto_close_s  # see EngineConfig
    logc = ep.logConfig
    logc.level = cfg.pj_log_level
    logc.consoleLevel = cfg.pj_log_level
    return ep


def account_config(cfg: EngineConfig, id_uri: str) -> pj.AccountConfig:
    acfg = pj.AccountConfig()
    acfg.idUri = id_uri
    tc = acfg.mediaConfig.transportConfig
    tc.port = cfg.rtp_port
    # rtp_range is the span of ports this engine owns. PJSIP binds RTP+RTCP
    # pairs and wraps only once the RTP port is *past* port + portRange, so it
    # binds up to port + portRange + 1: two below the span keeps every socket
    # inside it (else the last pair lands on the next worker's first ports:
    # "Address already in use" under churn, issue 15).
    tc.portRange = max(2, cfg.rtp_range - 2)
    tc.boundAddress = cfg.ip  # else RTP leaves from the outside address
    if cfg.session_expires_s > 0:
        # RFC 4028 on every call, whether the peer supports it or not: when it
        # does not, we refresh (re-INVITE/UPDATE at half the interval); PJSIP
        # ends a session that is not refreshed in time (README "Dead calls").
        cc = acfg.callConfig
        cc.timerUse = pj.PJSUA_SIP_TIMER_ALWAYS
        cc.timerSessExpiresSec = cfg.session_expires_s
        cc.timerMinSESec = min(90, cfg.session_expires_s)
    return acfg
