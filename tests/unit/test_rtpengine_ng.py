"""The ng protocol's bencoding (cti.edge.rtpengine) and the webrtc blocks of the
rendered edge config."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti.edge.render import EdgeSettings, WebRtcEdge, WorkerTarget, render, ws_origin_condition
from cti.edge.rtpengine import (
    RtpEngine,
    RtpEngineError,
    RtpEngineSettings,
    bdecode,
    bencode,
)


def test_bencode_round_trip_and_rtpengines_own_reply() -> None:
    command = {"command": "offer", "flags": ["trust-address", "ICE=force"], "n": 3}
    assert bencode(command) == (b"d7:command5:offer5:flagsl13:trust-address9:ICE=forcee"
                                b"1:ni3ee")
    assert bdecode(bencode(command)) == command
    assert bdecode(b"d6:result4:ponge") == {"result": "pong"}
    with pytest.raises(ValueError, match="trailing"):
        bdecode(b"i1ei2e")


def _settings(tmp_path: Path, webrtc: WebRtcEdge | None) -> EdgeSettings:
    return EdgeSettings(ip="127.0.0.1", port=15060, runtime_dir=tmp_path / "edge",
                        realm="cti.local", hotline_numbers=["+31247247247"],
                        workers=[WorkerTarget("w1", "127.0.0.1", 15071)], webrtc=webrtc)


def test_webrtc_blocks_are_on_only_when_configured(tmp_path: Path) -> None:
    off = render(_settings(tmp_path, None)).config.read_text()
    assert "\n#!define WITH_WEBRTC\n" not in off and "listen=tcp:127.0.0.1:0" in off
    on = render(_settings(tmp_path, WebRtcEdge(15066, 22230, ["http://127.0.0.1:8080"])))
    text = on.config.read_text()
    assert "\n#!define WITH_WEBRTC\n" in text
    assert "listen=tcp:127.0.0.1:15066" in text
    assert 'modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:22230")' in text
    assert '$hdr(Origin) == "http://127.0.0.1:8080"' in text


def test_origins_are_checked_before_they_reach_the_config() -> None:
    assert ws_origin_condition([]) == "0 == 1"
    with pytest.raises(ValueError, match="origin"):
        ws_origin_condition(['http://x" || 1 == 1 || "'])


async def test_a_missing_rtpengine_says_what_to_install(tmp_path: Path) -> None:
    rtp = RtpEngine(RtpEngineSettings("127.0.0.1", 22231, 40000, 40015, tmp_path),
                    binary=str(tmp_path / "no-rtpengine"))
    with pytest.raises(RtpEngineError, match="rtpengine-daemon.*webrtc.enabled: false"):
        await rtp.start()
    assert not rtp.alive
