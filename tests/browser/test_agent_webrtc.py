"""Issue 14: the advisor talks from /agent. Chromium with a fake microphone (a 1 kHz
WAV) registers over WebSocket, answers a real caller playing 400 Hz; both sides
hear each other (the caller's recording, a WebAudio analyser in the page); hold,
unhold and hang-up from the page."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserType, Page, expect

from tests.audio import (
    RMS_FLOOR,
    audio_rms,
    read_wav,
    tone_seconds,
    wait_file_final,
    wait_recorded,
    write_tone,
)
from tests.browser.conftest import CHROMIUM, Floor, floor_of, login, screenshot
from tests.e2e.gateway_harness import self_signed_cert
from tests.e2e.test_webrtc_edge import browser_advisors
from tests.peers.phone import Phone
from tests.peers.ports import free_port

pytestmark = pytest.mark.e2e

SPANISH_CALLER = "+34911234567"
ADVISOR_HZ = 1000  # the page's microphone
CALLER_HZ = 400

# In the page: the dominant frequency of the phone's remote stream every 50 ms
# (AnalyserNode, fftSize 4096), and when 400 Hz was first heard.
ANALYSER_JS = """() => {
  const audio = document.querySelector('[data-testid="phone-audio"]');
  const st = window.__heard = { peaks: [], first: null };
  let an = null, buf = null, ctx = null;
  setInterval(() => {
    if (!audio.srcObject) return;
    if (!an) {
      ctx = new AudioContext();
      an = ctx.createAnalyser(); an.fftSize = 4096;
      ctx.createMediaStreamSource(audio.srcObject).connect(an);
      buf = new Float32Array(an.frequencyBinCount);
    }
    an.getFloatFrequencyData(buf);
    let best = 1;
    for (let i = 2; i < buf.length; i++) if (buf[i] > buf[best]) best = i;
    const hz = best * ctx.sampleRate / an.fftSize;
    st.peaks.push({ t: performance.now(), hz, db: buf[best] });
    if (st.first === null && buf[best] > -60 && Math.abs(hz - %d) < 15) st.first = performance.now();
  }, 50);
}""".replace("%d", str(CALLER_HZ))


@pytest.fixture
def mic_wav(tmp_path: Path) -> Path:
    return write_tone(tmp_path / "mic-1khz.wav", ADVISOR_HZ, 20, rate=48000)


@pytest.fixture
def webrtc_browser(browser_type: BrowserType, mic_wav: Path, scheme: str) -> Iterator[Browser]:
    # wss: the page and the edge show a self-signed certificate (cti.tlsfiles).
    trust = ["--ignore-certificate-errors"] if scheme == "wss" else []
    browser = browser_type.launch(executable_path=CHROMIUM, args=[
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_wav}",
        "--autoplay-policy=no-user-gesture-required",
        # rtpengine's ICE candidate is on loopback in these tests.
        "--allow-loopback-in-peer-connection", *trust])
    yield browser
    browser.close()


def _rtc_floor(tmp_path: Path, **overrides: Any) -> contextlib.AbstractContextManager[Floor]:
    # Pure tones: the browser's noise suppressor would fade them out (see config).
    return floor_of(tmp_path, short_prompts=True, webrtc__enabled=True,
                    webrtc__audio_processing=False, advisors=browser_advisors("sofia"),
                    **overrides)


def _https(tmp_path: Path, wss: bool) -> dict[str, Any]:
    """The page over https (a self-signed certificate), the phone on wss or not."""
    crt, key = self_signed_cert(tmp_path / "pem")
    return {"http__tls": {"cert_file": str(crt), "key_file": str(key)},
            "webrtc__wss_port": free_port() if wss else 0}


@pytest.fixture
def rtc_floor(tmp_path: Path) -> Iterator[Floor]:
    with _rtc_floor(tmp_path) as f:
        yield f


@pytest.fixture
def call_floor(tmp_path: Path, scheme: str) -> Iterator[Floor]:
    """ws: the page on http; wss: the page on https, the phone on wss."""
    with _rtc_floor(tmp_path, **(_https(tmp_path, True) if scheme == "wss" else {})) as f:
        yield f


def _page(browser: Browser, errors: list[str]) -> Page:
    page = browser.new_context(permissions=["microphone"]).new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    if os.environ.get("CTI_JSSIP_DEBUG"):  # a file for JsSIP's own log, when debugging
        log = open(os.environ["CTI_JSSIP_DEBUG"], "a")  # noqa: SIM115
        page.add_init_script("localStorage.debug = 'JsSIP:*';")
        page.on("console", lambda m: (log.write(m.text + "\n"), log.flush()))
        page.on("pageerror", lambda e: (log.write(f"PAGEERROR {e}\n"), log.flush()))
    return page


def _heard(page: Page, since: float, hz: float) -> float:
    """Share of the page's analyser frames since `since` (performance.now) at hz."""
    peaks: list[dict[str, Any]] = page.evaluate("window.__heard.peaks")
    recent = [p for p in peaks if p["t"] >= since and p["db"] > -70]
    if not recent:
        return 0.0
    return sum(abs(p["hz"] - hz) < 15 for p in recent) / len(recent)


def _record(floor: Floor, caller: Phone, leg: str, path: Path, seconds: float) -> Path:
    floor.run(caller.command("record_start", leg=leg, file=str(path)))
    floor.run(wait_recorded(path, seconds))
    floor.run(caller.command("record_stop", leg=leg))
    floor.run(wait_file_final(path))
    return path


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_advisor_answers_in_the_browser_and_both_sides_hear_each_other(
        webrtc_browser: Browser, call_floor: Floor, tmp_path: Path, scheme: str) -> None:
    floor = call_floor
    errors: list[str] = []
    page = _page(webrtc_browser, errors)
    login(page, floor, "/agent", "sofia")
    expect(page.get_by_test_id("phone-registration")).to_have_text("Registered")
    assert page.evaluate("location.protocol") == ("https:" if scheme == "wss" else "http:")
    assert floor.run(_registered_over(floor, "sofia")) == scheme
    expect(page.get_by_test_id("phone")).to_have_attribute("data-mode", "browser")
    page.get_by_test_id("state-available").click()
    expect(page.get_by_test_id("agent-state")).to_have_text("available")

    caller = floor.phone(SPANISH_CALLER)
    leg = floor.dial(caller, "32")
    pop = page.get_by_test_id("screen-pop")
    expect(pop).to_be_visible()
    expect(page.get_by_test_id("pop-number")).to_have_text(SPANISH_CALLER)
    expect(page.get_by_test_id("phone-ringing")).to_have_text("Incoming call…")
    call_id = pop.get_attribute("data-call-id")
    assert call_id
    expect(page.get_by_test_id("phone")).to_have_attribute("data-call-id", call_id)
    floor.run(caller.command("play", leg=leg, file=str(write_tone(
        tmp_path / "caller.wav", CALLER_HZ, 2)), loop=True, play_id="t"))

    rtp = floor.gw.rtpengine
    assert rtp is not None and rtp.pid is not None
    page.evaluate(ANALYSER_JS)
    cpu_before = _cpu_s(rtp.pid), time.monotonic()
    answered = page.evaluate("performance.now()")
    t0 = time.monotonic()
    page.get_by_test_id("phone-answer").click()
    expect(page.get_by_test_id("call-state")).to_have_text("connected")
    expect(page.get_by_test_id("phone-ringing")).to_have_text("On the phone")
    page.wait_for_function("window.__heard.first !== null", timeout=15_000)
    first = page.evaluate("window.__heard.first")
    print(f"\n[{scheme}] Answer -> 400 Hz heard in the page: {first - answered:.0f} ms "
          f"(call connected after {time.monotonic() - t0:.2f} s)")
    screenshot(page, "agent-webrtc-call")

    # The caller hears the page's microphone; the page hears the caller.
    heard = _record(floor, caller, leg, tmp_path / "caller-heard.wav", 3)
    assert tone_seconds(heard, ADVISOR_HZ) >= 2.0, "the caller did not hear the advisor"
    since = page.evaluate("performance.now()") - 2500
    assert _heard(page, since, CALLER_HZ) >= 0.8, page.evaluate("window.__heard.peaks.slice(-20)")
    assert floor.gw.rtpengine is not None and floor.run(floor.gw.rtpengine.sessions()) == 1

    # Hold from the page: the caller hears music, not the advisor.
    page.get_by_test_id("hold").click()
    expect(page.get_by_test_id("call-state")).to_have_text("held")
    held = _record(floor, caller, leg, tmp_path / "caller-held.wav", 2.5)
    # (the first few hundred ms may still be the advisor: the switch to music)
    assert tone_seconds(held, ADVISOR_HZ) <= 0.5, "the held caller still hears the advisor"
    assert audio_rms(held) > 100, "the held caller heard silence, not music"
    page.get_by_test_id("hold").click()
    expect(page.get_by_test_id("call-state")).to_have_text("connected")
    resumed = _record(floor, caller, leg, tmp_path / "caller-resumed.wav", 3)
    assert tone_seconds(resumed, ADVISOR_HZ) >= 1.5, "after unhold the caller hears nobody"

    # Mute in the page's phone: the caller hears the advisor no more.
    page.get_by_test_id("phone-mute").click()
    expect(page.get_by_test_id("phone-ringing")).to_have_text("On the phone (muted)")
    muted = _record(floor, caller, leg, tmp_path / "caller-muted.wav", 2.5)
    # (what was already on its way -- jitter buffers -- plays out in the first ~0.7 s)
    samples, rate = read_wav(muted)
    assert tone_seconds(muted, ADVISOR_HZ) <= 1.2
    assert float(np.sqrt(np.mean(samples[-rate:] ** 2))) < RMS_FLOOR, \
        "muted, the caller still hears the advisor"
    page.get_by_test_id("phone-mute").click()
    expect(page.get_by_test_id("phone-mute")).to_have_attribute("aria-pressed", "false")

    cpu_s, wall_s = _cpu_s(rtp.pid) - cpu_before[0], time.monotonic() - cpu_before[1]
    print(f"[{scheme}] rtpengine CPU during the WebRTC call: {100 * cpu_s / wall_s:.2f} % of a core "
          f"({cpu_s:.2f} s in {wall_s:.1f} s)")

    # Hang-up from the page ends both legs: the caller's and the browser's.
    page.get_by_test_id("hangup").click()
    floor.run(caller.wait_for("leg.state", leg=leg, state="disconnected", timeout=10))
    expect(page.get_by_test_id("phone")).to_have_attribute("data-call-state", "idle")
    expect(page.get_by_test_id("call-state")).to_have_text("ended")
    floor.run(_until_no_sessions(floor))
    assert not errors, errors


async def _registered_over(floor: Floor, advisor: str) -> str:
    """How the advisor's page registered at the edge: ws, wss or what else. (The
    registrar writes ;transport=ws for both; the socket it came in on tells.)"""
    rpc = floor.gw.rpc
    assert rpc is not None
    found = await rpc.call("ul.lookup", "location", advisor)
    contact = found["Contacts"][0]["Contact"]
    socket, s = contact["Socket"], floor.gw.settings
    return {f"tcp:{s.sip.ip}:{s.webrtc.ws_port}": "ws",
            f"tls:{s.sip.ip}:{s.webrtc.wss_port}": "wss"}.get(socket, str(contact))


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _until_no_sessions(floor: Floor) -> None:
    import asyncio

    rtp = floor.gw.rtpengine
    assert rtp is not None
    for _ in range(100):
        if await rtp.sessions() == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("rtpengine still relays the ended call")


def test_a_refused_microphone_is_said_plainly(browser_type: BrowserType,
                                              rtc_floor: Floor) -> None:
    browser = browser_type.launch(executable_path=CHROMIUM, args=[
        "--use-fake-device-for-media-stream", "--deny-permission-prompts"])
    try:
        errors: list[str] = []
        page = browser.new_context().new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        login(page, rtc_floor, "/agent", "sofia")
        expect(page.get_by_test_id("phone-error")).to_contain_text("Microphone blocked")
        expect(page.get_by_test_id("phone")).to_have_attribute(
            "data-problem", "microphone-denied")
        expect(page.get_by_test_id("phone-registration")).not_to_have_text("Registered")
        assert not errors, errors
    finally:
        browser.close()


def test_a_desk_phone_advisor_sees_the_desk_phone(page: Page, rtc_floor: Floor) -> None:
    login(page, rtc_floor, "/agent", "michel")
    expect(page.get_by_test_id("phone-registration")).to_have_text("Desk phone")
    expect(page.get_by_test_id("phone")).to_have_attribute("data-mode", "desk")


def test_an_https_page_without_wss_says_why_the_phone_cannot_ring(
        browser_type: BrowserType, tmp_path: Path) -> None:
    browser = browser_type.launch(executable_path=CHROMIUM, args=[
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        "--ignore-certificate-errors"])
    try:
        with _rtc_floor(tmp_path, **_https(tmp_path, False)) as floor:
            errors: list[str] = []
            page = browser.new_context(permissions=["microphone"]).new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            login(page, floor, "/agent", "sofia")
            expect(page.get_by_test_id("phone")).to_have_attribute(
                "data-problem", "insecure-websocket")
            expect(page.get_by_test_id("phone-error")).to_contain_text(
                "This page is secure (https) but the phone's server is not (ws://")
            expect(page.get_by_test_id("phone-registration")).to_have_text(
                "Registration failed")
            assert not errors, errors
    finally:
        browser.close()
