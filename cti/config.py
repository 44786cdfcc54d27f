"""The gateway's configuration: pydantic models, loading, and one-line errors.

A bad file stops `cti serve` before anything starts, with one line that names the
file, the key and what was expected (ConfigError's message).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

import yaml
from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cti.config_base import ConfigError, ConfigModel, valid_network
from cti.config_errors import UniqueKeyLoader, describe_validation_error
from cti.config_ivr import IvrSettings, MenuEntry, OpeningHours, PromptSettings
from cti.config_overload import OverloadSettings
from cti.config_trunk import TrunkSettings
from cti.ivr import Flow, FlowError, check_flow, parse_flow, standard_flow

# Re-exported: the rest of cti imports the config's names from cti.config.
__all__ = ["AdvisorSettings", "ConfigError", "IvrSettings", "MenuEntry", "OpeningHours",
           "PromptSettings", "Settings", "TrunkSettings", "describe_validation_error",
           "ivr_flows", "load_settings", "parse_settings"]

NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")

_CIDR_RE = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}(/[0-9]{1,2})?$")


class TlsFiles(ConfigModel):
    """A certificate (PEM, the chain after it) and its private key (PEM); relative
    paths are relative to the config file's folder."""

    cert_file: Path
    key_file: Path


class SipTlsSettings(TlsFiles):
    # SIP over TLS at the edge (phones register with ;transport=tls); the legs
    # between the edge and the workers stay plain on loopback.
    port: int = Field(5061, ge=1, le=65535)


class SipSettings(ConfigModel):
    ip: str = "127.0.0.1"
    port: int = Field(5060, ge=1, le=65535)
    realm: str = "cti.local"
    hotlines: list[str] = Field(min_length=1)
    # Who may dial a hotline besides the trunks: "any", or a list of IPv4
    # addresses / networks ("127.0.0.0/8"); [] means the trunks only.
    accept_from: Literal["any"] | list[str] = "any"
    # Concurrent hotline calls from one source IP (trunks exempt: they have their
    # own max_calls); more get 486 from the edge. 0: no limit.
    max_calls_per_source: int = Field(10, ge=0)
    # Hotline INVITEs from one source IP per minute (trunks exempt); more get 503
    # with Retry-After. 0: no limit.
    call_attempts_per_source_per_minute: int = Field(60, ge=0)
    # Requests a second from one source IP (averaged over 2 s) past which the edge
    # drops its requests for a while (pike; trunks and the workers exempt). 0: off.
    flood_requests_per_second: int = Field(200, ge=0, le=100_000)
    # SIP over TLS for phones (null: UDP and TCP only).
    tls: SipTlsSettings | None = None

    @field_validator("accept_from")
    @classmethod
    def _networks(cls, v: Literal["any"] | list[str]) -> Literal["any"] | list[str]:
        if isinstance(v, list):
            for net in v:
                if not _CIDR_RE.match(net) or not valid_network(net):
                    raise ValueError(f"expected \"any\" or a list of IPv4 addresses or "
                                     f"networks like 127.0.0.0/8 (got {net!r})")
        return v


class WorkerSettings(ConfigModel):
    # No cap below what memory allows (issue 15): a worker is ~7 MiB PSS forked from
    # the zygote; the port plan (a SIP port and an RTP span each) is checked below.
    count: int = Field(2, ge=1, le=5000)
    ip: str = "127.0.0.1"
    sip_port_base: int = Field(5071, ge=1, le=65000)
    rtp_port_base: int = Field(20000, ge=1024, le=64000)
    # Each worker's RTP ports (RTP+RTCP pairs): even, so every span starts even.
    rtp_ports_per_worker: int = Field(40, ge=8, le=1000)
    # Fork the workers from a warm parent that imported pjsua2 once (they share its
    # pages: about half the memory a worker); off: each is its own python process.
    fork_from_zygote: bool = True
    restart_delay_s: float = Field(0.2, ge=0)
    # A call that received no RTP for this long is ended (reason rtp_timeout);
    # calls on hold are exempt. 0 turns it off.
    rtp_timeout_s: float = Field(30, ge=0)
    # RFC 4028 session timers on every call: a peer that neither refreshes nor
    # answers our refresh is hung up after at most this long. 0 turns them off.
    session_expires_s: int = Field(1800, ge=0)

    @field_validator("session_expires_s")
    @classmethod
    def _session_expires(cls, v: int) -> int:
        if 0 < v < 90:
            raise ValueError("session_expires_s must be 0 (off) or >= 90 (RFC 4028 minimum)")
        return v

    @field_validator("rtp_port_base", "rtp_ports_per_worker")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError(f"must be even (RTP+RTCP port pairs), not {v}")
        return v

    @model_validator(mode="after")
    def _ports_fit(self) -> WorkerSettings:
        last_sip = self.sip_port_base + self.count - 1
        last_rtp = self.rtp_port_base + self.count * self.rtp_ports_per_worker - 1
        for key, last in (("sip_port_base", last_sip), ("rtp_port_base", last_rtp)):
            if last > 65535:
                raise ValueError(f"{self.count} workers do not fit: {key} {getattr(self, key)} "
                                 f"+ their ports ends at {last}, past 65535")
        return self


class HttpSettings(ConfigModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # Tests configure a few seconds to watch a token expire.
    token_ttl_s: int = Field(12 * 3600, ge=1)
    # Failed logins allowed per minute, counted per user name and client address
    # together (a flood from one address does not lock the user out elsewhere),
    # and, ten times as many, per client address.
    login_attempts_per_minute: int = Field(10, ge=1, le=10_000)
    # Proxies whose X-Forwarded-For names the client (addresses or networks);
    # from any other address the header is ignored.
    trusted_proxies: list[str] = []
    # Request bodies above this are refused (413) before they are read (4 MiB
    # holds a campaign CSV of the default 20000 contacts).
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    # A WebSocket client gets {"type": "heartbeat"} this often.
    ws_heartbeat_s: float = Field(15.0, gt=0, le=3600)
    # Messages a WebSocket client may have unsent before it is closed as too slow
    # (4408); it resumes with ?since= from the replay buffer.
    ws_send_queue: int = Field(1000, ge=10, le=100_000)
    # HTTPS (and wss) on http.port instead of plain HTTP; null: plain.
    tls: TlsFiles | None = None


class WebRtcSettings(ConfigModel):
    """The browser phone of /agent: Kamailio takes SIP over WebSocket, rtpengine
    relays the browser's DTLS-SRTP media to the workers' plain RTP."""

    enabled: bool = False
    ws_port: int = Field(5066, ge=1, le=65535)  # ws://<sip.ip>:<ws_port> (Kamailio)
    # wss://<sip.ip>:<wss_port> for pages served over https (browsers refuse ws://
    # from an https page); 0: no wss.
    wss_port: int = Field(0, ge=0, le=65535)
    # The wss certificate; null: http.tls's, or else a self-signed one made with
    # openssl into <runtime_dir>/wss/ (the browser must be told to trust it).
    tls: TlsFiles | None = None
    ng_port: int = Field(2223, ge=1, le=65535)  # rtpengine's control socket, on 127.0.0.1
    # The address rtpengine offers browsers for media (their ICE candidate); sip.ip if unset.
    media_ip: str | None = None
    rtp_port_min: int = Field(30000, ge=1024, le=65000)
    rtp_port_max: int = Field(30199, ge=1024, le=65535)
    # The browser's echo cancellation, noise suppression and gain control on the
    # advisor's microphone. Off only for tests with pure tones (the noise
    # suppressor fades a steady tone to silence within seconds).
    audio_processing: bool = True

    @model_validator(mode="after")
    def _range(self) -> WebRtcSettings:
        if self.rtp_port_max - self.rtp_port_min < 7:
            raise ValueError("rtp_port_max must be at least rtp_port_min + 7 (4 ports a call)")
        if self.tls is not None and not self.wss_port:
            raise ValueError("tls is set but wss_port is 0 (no wss listener would use it): "
                             "set wss_port, or remove tls")
        return self


class WallboardSettings(ConfigModel):
    # Service level: the share of calls answered within this many seconds.
    service_level_s: float = Field(20.0, gt=0)


class WrapUpCode(ConfigModel):
    code: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    label: str = Field(min_length=1)
    # A call wrapped up with it gives the advisor a recovery break.
    distressing: bool = False


class WrapUpSettings(ConfigModel):
    codes: list[WrapUpCode] = []
    # Away (reason "recovery") this long after a distressing call; 0: no break.
    recovery_break_s: float = Field(300.0, ge=0, le=3600)

    @field_validator("codes")
    @classmethod
    def _unique_codes(cls, v: list[WrapUpCode]) -> list[WrapUpCode]:
        codes = [c.code for c in v]
        if len(set(codes)) != len(codes):
            raise ValueError(f"duplicate codes in {codes}")
        return v


class EscalationStepSettings(ConfigModel):
    after_s: float = Field(ge=0)
    min_language: int = Field(ge=1, le=5)
    min_topic: int = Field(ge=0, le=5)  # 0: any advisor with the language
    escalate: bool = False


def _default_escalation() -> dict[str, list[EscalationStepSettings]]:
    return {"default": [
        EscalationStepSettings(after_s=0, min_language=3, min_topic=3),
        EscalationStepSettings(after_s=30, min_language=2, min_topic=1),
        EscalationStepSettings(after_s=90, min_language=1, min_topic=0, escalate=True),
    ]}


class RoutingSettings(ConfigModel):
    strategy: Literal["best_match", "longest_idle", "least_talk_time", "round_robin"] = (
        "best_match")
    offer_timeout_s: float = Field(20.0, gt=0)
    # A customer the gateway calls out (call back, campaign) who has not picked up
    # after this long: the ringing is cancelled, the attempt ends unreached.
    callee_ring_s: float = Field(40.0, gt=0)
    # The most seconds of wrap-up after a call (it ends when the advisor saves it;
    # after this the call is "not wrapped up"): one number, or per topic with a "default".
    wrap_up_s: float | dict[str, float] = 0.0
    max_missed: int = Field(1, ge=1)
    # Away (phone_offline) while an advisor's phone has no registered contact
    # (cti/controller/presence.py). Off: state is only what advisors set (a lab
    # that drives the API without phones).
    state_follows_phone: bool = True
    aging_per_minute: float = Field(1.0, ge=0)  # priority points a call gains per minute
    escalation: dict[str, list[EscalationStepSettings]] = Field(
        default_factory=_default_escalation)
    # After max_wait_s in the queue (0: never): "hook" lets plugins act (the
    # callbacks plugin offers a call back), "queue:<topic>" moves the call to that
    # topic's queue, keeping its place in time.
    max_wait_s: float = Field(0.0, ge=0)
    max_wait_action: str = Field("hook", pattern=r"^(hook|queue:[A-Za-z0-9_-]+)$")

    @field_validator("escalation")
    @classmethod
    def _steps_ordered(
        cls, v: dict[str, list[EscalationStepSettings]],
    ) -> dict[str, list[EscalationStepSettings]]:
        if "default" not in v:
            raise ValueError("expected a 'default' list of steps")
        for topic, steps in v.items():
            if not steps or steps[0].after_s != 0:
                raise ValueError(f"{topic}: the first step must have after_s 0")
            if any(a.after_s >= b.after_s for a, b in zip(steps, steps[1:], strict=False)):
                raise ValueError(f"{topic}: steps must have increasing after_s")
        return v

    @field_validator("wrap_up_s", mode="before")
    @classmethod
    def _wrap_up_type(cls, v: Any) -> Any:
        def number(x: Any) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool)

        if not (number(v) or (isinstance(v, dict) and all(number(x) for x in v.values()))):
            raise ValueError("expected seconds (a number), or seconds per topic "
                             "({default: 5, emergency: 30})")
        return v

    @field_validator("wrap_up_s")
    @classmethod
    def _wrap_up(cls, v: float | dict[str, float]) -> float | dict[str, float]:
        values = v.values() if isinstance(v, dict) else [v]
        if any(x < 0 for x in values):
            raise ValueError("expected seconds >= 0")
        return v


Level = Annotated[int, Field(ge=1, le=5)]


_HA1_RE = re.compile(r"^[0-9a-f]{32}$")


class AdvisorSettings(ConfigModel):
    name: str
    # No plaintext: `cti passwd NAME` prints both lines. password_hash (argon2id)
    # checks API logins; sip_ha1 = md5(name:realm:password) is what SIP digest
    # needs (Kamailio's users table), so it changes with sip.realm.
    password_hash: str
    sip_ha1: str
    display_name: str | None = None
    # Skills with a level 1-5 ({es: 5, en: 3}); a plain list means level 3.
    languages: dict[str, Level] = {}
    topics: dict[str, Level] = {}
    # Completed trainings with their expiry date ({crisis: 2027-06-30}); a plain
    # list, or no date, means no expiry.
    trainings: dict[str, date | None] = {}
    # advisor: takes calls (needs skills); supervisor, admin: the floor, no calls;
    # coach: listens to recordings (the recording plugin), no calls, no floor.
    role: Literal["advisor", "supervisor", "admin", "coach"] = "advisor"
    # Where calls ring: a desk SIP phone registered with sip_ha1, or the browser
    # phone in /agent (webrtc.enabled; short-lived credentials after each login).
    phone: Literal["desk", "browser"] = "desk"

    @field_validator("languages", "topics", "trainings", mode="before")
    @classmethod
    def _list_to_levels(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, list):
            filler = None if info.field_name == "trainings" else 3
            return {str(x): filler for x in v}
        return v

    @model_validator(mode="after")
    def _advisors_have_skills(self) -> AdvisorSettings:
        if self.role == "advisor" and not (self.languages and self.topics):
            raise ValueError("an advisor needs at least one language and one topic")
        return self

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, v: str) -> str:
        from argon2 import Type, extract_parameters
        from argon2.exceptions import InvalidHashError

        try:
            ok = extract_parameters(v).type is Type.ID
        except (InvalidHashError, ValueError):
            ok = False
        if not ok:
            raise ValueError("expected an argon2id hash ($argon2id$v=19$...) as printed by "
                             "`cti passwd NAME`")
        return v

    @field_validator("sip_ha1")
    @classmethod
    def _ha1(cls, v: str) -> str:
        if not _HA1_RE.match(v):
            raise ValueError("expected 32 lowercase hex digits, md5(name:realm:password), "
                             "as printed by `cti passwd NAME --realm REALM`")
        return v

    @field_validator("name")
    @classmethod
    def _sip_safe(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("expected letters, digits, '.', '_' or '-' (it is a SIP user name)")
        return v


class DirectoryEntry(ConfigModel):
    """A transfer target: the crisis team, an embassy, another service."""

    key: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    name: str
    uri: str = Field(pattern=r"^sips?:\S+$")  # where the gateway dials it
    number: str | None = None  # as shown to advisors
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")  # an embassy's country


class StoreSettings(ConfigModel):
    path: Path = Path("../var/cti.sqlite3")


def _known(key: str, kind: str, value: object, known: list[str]) -> None:
    """ValueError naming the key, the unknown value and the known ones."""
    if value in known:
        return
    close = difflib.get_close_matches(str(value), known, 1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"{key}: unknown {kind} {value!r}{hint}; known: "
                     f"{', '.join(known) or '(none)'}")


# Plugin settings that name a config value, by the convention of the bundled
# plugins (crisis_line.topic, callbacks.topics, crisis_line.training): checked
# here so a typo fails check-config, not the first call that needs it.
_PLUGIN_REFERENCES = {"topic": "topic", "topics": "topic", "language": "language",
                      "languages": "language", "training": "training",
                      "reserve_training": "training"}


def _check_plugin_references(prefix: str, section: Mapping[str, Any], langs: list[str],
                             topics: list[str], trainings: list[str]) -> None:
    known = {"topic": topics, "language": langs, "training": trainings}
    for key, kind in _PLUGIN_REFERENCES.items():
        value = section.get(key)
        values = value if isinstance(value, list) else [value]
        for j, v in enumerate(values):
            if isinstance(v, str) and v:  # "" / null: none (e.g. no training needed)
                where = f"{prefix}.{key}" + (f".{j}" if isinstance(value, list) else "")
                what = "training (no advisor has it)" if kind == "training" else kind
                _known(where, what, v, known[kind])


class Settings(ConfigModel):
    gateway_name: str = "cti"
    runtime_dir: Path = Path("../var/run")
    sip: SipSettings
    workers: WorkerSettings = WorkerSettings()
    http: HttpSettings = HttpSettings()
    ivr: IvrSettings
    prompts: PromptSettings = PromptSettings()
    routing: RoutingSettings = RoutingSettings()
    advisors: list[AdvisorSettings] = Field(min_length=1)
    # Enabled plugins by name, each with its own settings (validated by the
    # plugin's config model when it is loaded; null or {} for its defaults).
    plugins: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")],
                  dict[str, Any] | None] = {}
    store: StoreSettings = StoreSettings()
    directory: list[DirectoryEntry] = []
    trunks: list[TrunkSettings] = []
    wrap_up: WrapUpSettings = WrapUpSettings()
    wallboard: WallboardSettings = WallboardSettings()
    # Languages advisors speak and calls may have beyond the IVR's menu (a
    # campaign's rows, a call back): an advisor's language is one or the other.
    extra_languages: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,16}$")]] = []
    webrtc: WebRtcSettings = WebRtcSettings()
    overload: OverloadSettings = OverloadSettings()
    # Reasons an advisor may give for `away` (the API refuses others).
    away_reasons: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]] = [
        "break", "lunch", "meeting", "training", "admin"]
    # Where the file was read from; relative paths are relative to its folder.
    source: Path = Field(Path("."), exclude=True)

    @field_validator("advisors")
    @classmethod
    def _unique_advisors(cls, v: list[AdvisorSettings]) -> list[AdvisorSettings]:
        seen: set[str] = set()
        for a in v:
            if a.name in seen:
                raise ValueError(f"advisor {a.name!r} is listed twice")
            seen.add(a.name)
        return v

    @field_validator("trunks")
    @classmethod
    def _unique_trunks(cls, v: list[TrunkSettings]) -> list[TrunkSettings]:
        names = [t.name for t in v]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate trunk names in {names}")
        return v

    @model_validator(mode="after")
    def _routing_topics_exist(self) -> Settings:
        # A misspelt topic under wrap_up_s or escalation would silently never apply.
        topics = sorted({m.code for m in self.ivr.topics})
        r = self.routing
        sections: list[tuple[str, Mapping[str, object]]] = [("escalation", r.escalation)]
        if isinstance(r.wrap_up_s, dict):
            sections.insert(0, ("wrap_up_s", r.wrap_up_s))
        for section, mapping in sections:
            for key in mapping:
                if key != "default" and key not in topics:
                    close = difflib.get_close_matches(key, [*topics, "default"], 1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    raise ValueError(
                        f"routing.{section}.{key}: not an IVR topic ({hint}expected "
                        f"'default' or one of {', '.join(topics)})")
        target = r.max_wait_action.partition(":")[2]
        if target and target not in topics:
            raise ValueError(f"routing.max_wait_action: {target!r} is not an IVR topic "
                             f"(expected one of {', '.join(topics)})")
        return self

    @model_validator(mode="after")
    def _references_exist(self) -> Settings:
        # A typo'd skill ("topics: {digit: 4}") would silently never match a call.
        langs = [m.code for m in self.ivr.languages]
        langs += [x for x in self.extra_languages if x not in langs]
        topics = [m.code for m in self.ivr.topics]
        for i, adv in enumerate(self.advisors):
            for key, known in (("languages", langs), ("topics", topics)):
                for code in getattr(adv, key):
                    _known(f"advisors.{i}.{key}.{code}", key[:-1], code, known)
        for code in self.ivr.emergency_topics:
            _known(f"ivr.emergency_topics.{code}", "topic", code, topics)
        trainings = sorted({t for adv in self.advisors for t in adv.trainings})
        for name, section in self.plugins.items():
            _check_plugin_references(f"plugins.{name}", section or {}, langs, topics, trainings)
        return self

    @model_validator(mode="after")
    def _flows_run(self) -> Settings:
        # Every flow is built and checked now: an error names the number and the node.
        keys = [d.key for d in self.directory]
        if len(set(keys)) != len(keys):
            raise ValueError(f"directory: duplicate keys in {keys}")
        for number in self.ivr.flows:
            if number not in self.sip.hotlines:
                raise ValueError(f"ivr.flows.{number}: not one of sip.hotlines "
                                 f"({', '.join(self.sip.hotlines)}); calls to it never arrive")
        ivr_flows(self)
        return self

    @model_validator(mode="after")
    def _ports_do_not_clash(self) -> Settings:
        # Caught here, a clash names its keys; at start it is "kamailio exited 255".
        w = self.workers
        spans = [
            ("sip.port", self.sip.ip, self.sip.port, self.sip.port),
            ("http.port", self.http.host, self.http.port, self.http.port),
            ("workers.sip_port_base", w.ip, w.sip_port_base, w.sip_port_base + w.count - 1),
        ]
        if self.sip.tls is not None:
            spans.insert(1, ("sip.tls.port", self.sip.ip, self.sip.tls.port, self.sip.tls.port))
        # (RTP ports: the media engine skips a port in use and takes the next)
        rtc = self.webrtc
        if rtc.enabled:  # rtpengine takes its whole range at start: it must be free
            media_ip = rtc.media_ip or self.sip.ip
            spans += [
                ("webrtc.ws_port", self.sip.ip, rtc.ws_port, rtc.ws_port),
                *([("webrtc.wss_port", self.sip.ip, rtc.wss_port, rtc.wss_port)]
                  if rtc.wss_port else []),
                ("webrtc.ng_port", "127.0.0.1", rtc.ng_port, rtc.ng_port),
                ("webrtc.rtp_port_min", media_ip, rtc.rtp_port_min, rtc.rtp_port_max),
                ("workers.rtp_port_base", w.ip, w.rtp_port_base,
                 w.rtp_port_base + w.count * w.rtp_ports_per_worker - 1),
            ]
        for i, (key, ip, lo, hi) in enumerate(spans):
            for other, ip2, lo2, hi2 in spans[i + 1:]:
                same_host = ip == ip2 or "0.0.0.0" in (ip, ip2)
                if same_host and lo <= hi2 and lo2 <= hi:
                    raise ValueError(f"{other}: ports {lo2}-{hi2} on {ip2} overlap {key} "
                                     f"({lo}-{hi} on {ip})")
        return self

    def path(self, p: Path) -> Path:
        """Resolve a path from the config against the config file's folder."""
        return p if p.is_absolute() else (self.source.parent / p).resolve()

    def advisor(self, name: str) -> AdvisorSettings | None:
        return next((a for a in self.advisors if a.name == name), None)


class _FlowTiming(TypedDict):
    default_language: str
    default_topic: str
    digit_timeout_s: float
    max_retries: int
    silent_retries: int | None
    silent_skips_menus: bool


def ivr_flows(settings: Settings) -> dict[str, Flow]:
    """The checked flow of each dialled number with its own; "" is the standard flow."""
    ivr = settings.ivr
    topics = [m.code for m in ivr.topics]
    timing: _FlowTiming = {
        "default_language": ivr.default_language, "default_topic": ivr.default_topic,
        "digit_timeout_s": ivr.digit_timeout_s, "max_retries": ivr.max_retries,
        "silent_retries": ivr.silent_retries, "silent_skips_menus": ivr.silent_skips_menus}
    flows = {"": standard_flow([(m.digit, m.code) for m in ivr.languages],
                               [(m.digit, m.code) for m in ivr.topics], notice=ivr.notice,
                               **timing)}
    for number, data in ivr.flows.items():
        try:
            flow = parse_flow(number, data, languages=tuple(m.code for m in ivr.languages),
                              **timing)
            check_flow(flow, topics=topics, directory=[d.key for d in settings.directory])
        except FlowError as e:
            raise ValueError(f"ivr.flows.{number}: {e}") from None
        flows[number] = flow
    return flows


def parse_settings(data: Any, source: Path) -> Settings:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level")
    try:
        return Settings.model_validate({**data, "source": source.resolve()})
    except ValidationError as e:
        raise ConfigError(f"{source}: {describe_validation_error(e, Settings, data, ())}") from None


def load_settings(path: Path) -> Settings:
    """Read and validate a YAML config file; raise ConfigError with one clear line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: cannot read: not UTF-8 text ({e.reason} at byte "
                          f"{e.start})") from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).replace("\n", " ")
        raise ConfigError(f"{path}:{where}: not valid YAML: {problem}") from None
    return parse_settings(data, path)
