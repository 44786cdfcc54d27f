// The browser phone of the agent desktop: JsSIP over the edge's WebSocket, with
// short-lived SIP credentials from POST /api/v1/agents/me/phone (never the
// advisor's own SIP password). Media: DTLS-SRTP to rtpengine, which relays it to
// the media workers' plain RTP. Advisors with a desk phone see "Desk phone".
"use strict";

const AgentPhone = (() => {
  const { api, show, el } = CTI;
  const T = (id) => document.querySelector(`[data-testid="${id}"]`);
  const DTMF_KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];

  class Phone {
    constructor(session) {
      this.session = session;
      this.ua = null;
      this.call = null; // the JsSIP RTCSession ringing or connected
      this.muted = false;
      this.onRinging = () => {};
      this.ui = {
        panel: T("phone"), mode: T("phone-mode"), reg: T("phone-registration"),
        error: T("phone-error"), ring: T("phone-ringing"), answer: T("phone-answer"),
        hangup: T("phone-hangup"), mute: T("phone-mute"), pad: T("phone-dtmf"),
        mic: T("phone-mic"), speaker: T("phone-speaker"), audio: T("phone-audio"),
        devices: T("phone-devices"),
      };
      this.ui.answer.addEventListener("click", () => this.answer());
      this.ui.hangup.addEventListener("click", () => this.hangup());
      this.ui.mute.addEventListener("click", () => this.toggleMute());
      this.ui.speaker.addEventListener("change", () => this.useSpeaker());
      this.ui.pad.replaceChildren(...DTMF_KEYS.map((k) => el("button", {
        type: "button", class: "secondary", "data-testid": `phone-dtmf-${k}`, text: k,
      })));
      this.ui.pad.addEventListener("click", (e) => {
        const key = e.target.closest("button");
        if (key) this.dtmf(key.textContent);
      });
      this.renderCall("idle");
    }

    get inBrowser() { return this.ua !== null; }
    ringing() { return this.call !== null && this.callState === "ringing"; }

    // After login: the browser phone, or the desk phone said plainly.
    async start() {
      show(this.ui.panel, true);
      let creds;
      try {
        creds = await api(this.session, "/agents/me/phone", { method: "POST" });
      } catch (err) {
        this.fail(`Phone: ${err.message}`);
        return;
      }
      if (creds.mode !== "browser") {
        this.ui.mode.textContent = "Desk phone: calls ring your SIP phone.";
        this.ui.panel.dataset.mode = "desk";
        show(this.ui.devices, false);
        this.renderReg("desk");
        return;
      }
      this.ui.panel.dataset.mode = "browser";
      this.ui.mode.textContent = "Browser phone: calls ring in this page.";
      if (!this.checkSecureSocket(creds.ws_url)) return;
      if (!(await this.checkMicrophone())) return;
      await this.listDevices();
      this.processing = creds.audio_processing !== false;
      this.register(creds);
    }

    // An https page may not open ws:// (mixed content): the browser would fail
    // the socket with no reason given, so say what is wrong and who can fix it.
    checkSecureSocket(url) {
      if (location.protocol !== "https:" || /^wss:/i.test(url)) return true;
      this.renderReg("failed");
      this.fail(`This page is secure (https) but the phone's server is not (${url}): `
        + "the browser refuses it. Calls cannot ring here; ask the administrator to "
        + "turn on wss (webrtc.wss_port).", "insecure-websocket");
      return false;
    }

    // Without a microphone the advisor cannot talk: say so before any call rings.
    async checkMicrophone() {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        this.fail("This browser cannot use a microphone here (open the page over https "
          + "or on this computer).", "no-microphone");
        return false;
      }
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
        stream.getTracks().forEach((t) => t.stop());
        return true;
      } catch (err) {
        const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
        this.fail(denied
          ? "Microphone blocked: allow the microphone for this page (the icon in the "
            + "address bar), then sign in again. Calls cannot ring here until then."
          : `No microphone found (${err && err.name}): plug one in and sign in again.`,
          denied ? "microphone-denied" : "no-microphone");
        return false;
      }
    }

    async listDevices() {
      const devices = await navigator.mediaDevices.enumerateDevices();
      const fill = (select, kind, fallback) => {
        const list = devices.filter((d) => d.kind === kind);
        select.replaceChildren(el("option", { value: "", text: fallback }), ...list.map(
          (d, i) => el("option", { value: d.deviceId, text: d.label || `${kind} ${i + 1}` })));
      };
      fill(this.ui.mic, "audioinput", "Default microphone");
      fill(this.ui.speaker, "audiooutput", "Default speaker");
      // Choosing the speaker needs setSinkId (Chromium); elsewhere the default plays.
      this.ui.speaker.disabled = typeof this.ui.audio.setSinkId !== "function";
    }

    register(creds) {
      const socket = new JsSIP.WebSocketInterface(creds.ws_url);
      this.ua = new JsSIP.UA({
        sockets: [socket], uri: creds.uri, authorization_user: creds.auth_user,
        password: creds.password, realm: creds.realm, register: true,
        register_expires: 300, session_timers: false, user_agent: "cti-agent-desktop",
      });
      this.renderReg("registering");
      this.ua.on("registered", () => this.renderReg("registered"));
      this.ua.on("unregistered", () => this.renderReg("unregistered"));
      this.ua.on("disconnected", () => this.renderReg("disconnected"));
      this.ua.on("registrationFailed", (e) => {
        this.renderReg("failed");
        this.fail(`Phone registration failed: ${e.cause || "refused"}.`);
      });
      this.ua.on("newRTCSession", (e) => {
        if (e.originator === "remote") this.incoming(e.session, e.request);
      });
      this.ua.start();
    }

    incoming(s, request) {
      if (this.call) { s.terminate({ status_code: 486 }); return; }
      this.call = s;
      this.muted = false;
      const callId = request.getHeader("X-CTI-Call-ID") || "";
      this.ui.panel.dataset.callId = callId;
      s.on("peerconnection", (e) => this.watchMedia(e.peerconnection));
      s.on("accepted", () => this.renderCall("connected"));
      s.on("confirmed", () => this.renderCall("connected"));
      s.on("ended", () => this.ended());
      s.on("failed", () => this.ended());
      this.renderCall("ringing");
      this.onRinging(callId);
    }

    watchMedia(pc) {
      pc.addEventListener("track", (e) => {
        this.ui.audio.srcObject = e.streams[0] || new MediaStream([e.track]);
        this.ui.audio.play().catch(() => {}); // autoplay refused: the next click plays
      });
    }

    answer() {
      if (!this.ringing()) return;
      const mic = this.ui.mic.value;
      const p = this.processing;
      const audio = { echoCancellation: p, noiseSuppression: p, autoGainControl: p };
      if (mic) audio.deviceId = { exact: mic };
      this.call.answer({
        mediaConstraints: { audio, video: false },
        pcConfig: { iceServers: [] }, // rtpengine is reachable directly
      });
    }

    hangup() {
      if (this.call) this.call.terminate();
    }

    toggleMute() {
      if (!this.call || this.callState !== "connected") return;
      this.muted = !this.muted;
      if (this.muted) this.call.mute({ audio: true }); else this.call.unmute({ audio: true });
      this.renderCall("connected");
    }

    dtmf(key) {
      if (this.call && this.callState === "connected") {
        this.call.sendDTMF(key, { transportType: "RFC2833", duration: 120 });
      }
    }

    async useSpeaker() {
      if (typeof this.ui.audio.setSinkId === "function") {
        try { await this.ui.audio.setSinkId(this.ui.speaker.value); } catch (err) {
          this.fail(`Speaker: ${err.message}`);
        }
      }
    }

    ended() {
      this.call = null;
      this.ui.audio.srcObject = null;
      delete this.ui.panel.dataset.callId;
      this.renderCall("idle");
    }

    // Sign-out: unregister and forget the credentials (the gateway revokes them too).
    stop() {
      if (this.call) this.call.terminate();
      if (this.ua) this.ua.stop();
      this.ua = null;
      this.renderReg("unregistered");
      show(this.ui.panel, false);
    }

    fail(text, reason) {
      this.ui.error.textContent = text;
      if (reason) this.ui.panel.dataset.problem = reason;
    }

    renderReg(state) {
      const text = { registering: "Registering…", registered: "Registered",
        unregistered: "Not registered", disconnected: "Disconnected (reconnecting)",
        failed: "Registration failed", desk: "Desk phone" }[state] || state;
      this.ui.reg.textContent = text;
      this.ui.reg.dataset.state = state;
      if (state === "registered") this.ui.error.textContent = "";
    }

    renderCall(state) {
      this.callState = state;
      this.ui.panel.dataset.callState = state;
      this.ui.ring.textContent = { idle: "", ringing: "Incoming call…",
        connected: this.muted ? "On the phone (muted)" : "On the phone" }[state];
      show(this.ui.answer, state === "ringing");
      this.ui.hangup.disabled = state === "idle";
      this.ui.mute.disabled = state !== "connected";
      this.ui.mute.textContent = this.muted ? "Unmute" : "Mute";
      this.ui.mute.setAttribute("aria-pressed", String(this.muted));
      for (const b of this.ui.pad.querySelectorAll("button")) b.disabled = state !== "connected";
    }
  }

  return { Phone };
})();
