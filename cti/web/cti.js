// Shared client code for /agent and /wallboard: REST calls, login, the CTI WebSocket.
// Plain browser JavaScript (no build step, no network beyond the gateway itself).
"use strict";

const CTI = (() => {
  const API = "/api/v1";

  // The session (token, user, role) lives in sessionStorage so a page reload keeps
  // the login and the last event number, but a new tab logs in again.
  class Session {
    constructor(page) {
      this.key = "cti." + page;
      const saved = JSON.parse(sessionStorage.getItem(this.key) || "null");
      Object.assign(this, { token: null, user: null, role: null, lastSeq: null }, saved || {});
    }
    save() {
      const { token, user, role, lastSeq } = this;
      sessionStorage.setItem(this.key, JSON.stringify({ token, user, role, lastSeq }));
    }
    clear() {
      sessionStorage.removeItem(this.key);
      Object.assign(this, { token: null, user: null, role: null, lastSeq: null });
    }
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(session, path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (session && session.token) headers.Authorization = "Bearer " + session.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
    if (!res.ok) {
      const detail = data && data.detail;
      const msg = typeof detail === "string" ? detail
        : Array.isArray(detail) ? detail.map(fieldError).join("; ") : res.statusText;
      throw new ApiError(res.status, msg || ("HTTP " + res.status));
    }
    return data;
  }

  // One item of a 422 (FastAPI validation): "priority: Input should be ...".
  function fieldError(d) {
    const loc = (d.loc || []).filter((x) => x !== "body").join(".");
    return loc ? `${loc}: ${d.msg}` : d.msg;
  }

  async function login(session, username, password) {
    const r = await api(null, "/login", { method: "POST", body: { username, password } });
    session.token = r.token;
    session.user = r.user;
    session.role = r.role;
    session.lastSeq = null;
    session.save();
    return r;
  }

  // Forget the session at once (a new login may follow), then revoke its token.
  function logout(session) {
    const token = session.token;
    session.clear();
    if (!token) return;
    fetch(API + "/logout", { method: "POST", headers: { Authorization: "Bearer " + token } })
      .catch(() => {}); // expired or offline: nothing more to do
  }

  // The CTI WebSocket: numbered events, replay from the last number on reconnect,
  // heartbeats, and commands answered by {"type":"reply","id":...}.
  class Socket {
    constructor(session, { onEvent, onStatus, onHello, onAuthFailed }) {
      this.session = session;
      this.onEvent = onEvent;
      this.onStatus = onStatus || (() => {});
      this.onHello = onHello || (() => {});
      this.onAuthFailed = onAuthFailed || (() => {});
      this.ws = null;
      this.nextId = 1;
      this.pending = new Map();
      this.retryMs = 500;
      this.closedByUs = false;
      this.watchdog = null;
      this.silenceMs = 45000; // no message (not even a heartbeat) this long: reconnect
    }

    url() {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      let u = `${proto}//${location.host}${API}/ws?token=${encodeURIComponent(this.session.token)}`;
      if (this.session.lastSeq !== null && this.session.lastSeq !== undefined) {
        u += "&since=" + this.session.lastSeq;
      }
      return u;
    }

    connect() {
      this.closedByUs = false;
      this.onStatus("connecting");
      const ws = new WebSocket(this.url());
      this.ws = ws;
      ws.onmessage = (m) => this.receive(JSON.parse(m.data));
      ws.onclose = (e) => this.closed(ws, e);
      ws.onerror = () => {}; // onclose follows and decides
    }

    close() {
      this.closedByUs = true;
      clearTimeout(this.watchdog);
      if (this.ws) this.ws.close(1000);
      this.ws = null;
    }

    kick() {
      clearTimeout(this.watchdog);
      this.watchdog = setTimeout(() => {
        // A silent socket may be half-open: drop it; onclose reconnects.
        if (this.ws) this.ws.close(4000, "no heartbeat");
      }, this.silenceMs);
    }

    receive(msg) {
      this.kick();
      if (msg.type === "hello") {
        this.retryMs = 500;
        if (typeof msg.heartbeat_s === "number") this.silenceMs = 3000 * msg.heartbeat_s + 5000;
        // First connection: count from here, so a reconnect asks for what follows.
        // A last_seq below ours: the gateway restarted and numbers start again.
        const stale = this.session.lastSeq !== null && msg.last_seq < this.session.lastSeq;
        if ((this.session.lastSeq === null || stale) && typeof msg.last_seq === "number") {
          this.session.lastSeq = msg.last_seq;
          this.session.save();
        }
        this.onStatus("connected", msg);
        this.onHello(msg);
        return;
      }
      if (msg.type === "heartbeat") {
        // Every event up to last_seq that we may see was sent before the heartbeat:
        // resume from there, so a reconnect does not replay others' traffic.
        if (typeof msg.last_seq === "number" && msg.last_seq > (this.session.lastSeq ?? -1)) {
          this.session.lastSeq = msg.last_seq;
          this.session.save();
        }
        this.onStatus("connected", msg);
        return;
      }
      if (msg.type === "reply") {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.ok) p.resolve(msg.result || {});
        else p.reject(new Error(msg.error || "refused"));
        return;
      }
      if (typeof msg.seq !== "number") return;
      // Exactly once, in order: the server never repeats, but a replay after a
      // reconnect must not show an event twice either.
      if (this.session.lastSeq !== null && msg.seq <= this.session.lastSeq) return;
      this.session.lastSeq = msg.seq;
      this.session.save();
      this.onEvent(msg);
    }

    closed(ws, e) {
      if (ws !== this.ws) return;
      clearTimeout(this.watchdog);
      for (const p of this.pending.values()) p.reject(new Error("connection lost"));
      this.pending.clear();
      this.ws = null;
      if (this.closedByUs) { this.onStatus("disconnected"); return; }
      if (e.code === 4401 || e.code === 4403) {
        this.onStatus("disconnected");
        this.onAuthFailed(e.reason || "not authorised");
        return;
      }
      this.onStatus("reconnecting");
      setTimeout(() => { if (!this.closedByUs) this.connect(); }, this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 10000);
    }

    // Send a command; resolves with the reply's result, rejects with its error.
    command(cmd, args = {}) {
      return new Promise((resolve, reject) => {
        if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
          reject(new Error("not connected"));
          return;
        }
        const id = this.nextId++;
        this.pending.set(id, { resolve, reject });
        this.ws.send(JSON.stringify({ id, cmd, ...args }));
      });
    }
  }

  // ------------------------------------------------------------------ DOM helpers
  function $(sel, root = document) { return root.querySelector(sel); }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function show(node, visible) { node.hidden = !visible; }

  // A panel's refreshes: on the events it cares about (one fetch per burst) and by
  // a poll, between start() and stop().
  class Refresher {
    constructor(refresh, matches, { pollMs, debounceMs }) {
      Object.assign(this, { refresh, matches, pollMs, debounceMs });
      this.timer = null;
      this.debounce = null;
    }
    start() {
      this.stop();
      this.refresh();
      this.timer = setInterval(this.refresh, this.pollMs);
    }
    stop() {
      clearInterval(this.timer);
      clearTimeout(this.debounce);
      this.timer = null;
    }
    onEvent(ev) {
      if (this.timer === null || !this.matches(ev)) return;
      clearTimeout(this.debounce);
      this.debounce = setTimeout(this.refresh, this.debounceMs);
    }
  }

  function fmtDuration(s) {
    if (s === null || s === undefined || Number.isNaN(Number(s))) return "–";
    s = Math.max(0, Math.round(Number(s)));
    const m = Math.floor(s / 60);
    return m ? `${m}:${String(s % 60).padStart(2, "0")}` : `${s} s`;
  }

  function fmtTime(ts) {
    if (ts === null || ts === undefined || ts === "") return "–";
    const d = typeof ts === "number" ? new Date(ts * 1000) : new Date(ts);
    if (Number.isNaN(d.getTime())) return String(ts);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function fmtDate(ts) {
    if (ts === null || ts === undefined || ts === "") return "–";
    const d = typeof ts === "number" ? new Date(ts * 1000) : new Date(ts);
    if (Number.isNaN(d.getTime())) return String(ts);
    return d.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  }

  const names = {
    language: safeNames("language"),
    region: safeNames("region"),
  };
  function safeNames(type) {
    try { return new Intl.DisplayNames(["en"], { type }); } catch (e) { return null; }
  }
  function languageName(code) {
    if (!code) return "";
    try { return names.language ? names.language.of(code) : ""; } catch (e) { return ""; }
  }
  function countryName(code) {
    if (!code) return "";
    try { return names.region ? names.region.of(code) : ""; } catch (e) { return ""; }
  }

  // Words for codes (GET /labels: topics, languages, wrap_up_codes, end_reasons,
  // states, away_reasons), loaded once per login; a code without a word shows as itself.
  let labels = {};
  async function loadLabels(session) {
    try {
      labels = (await api(session, "/labels")) || {};
    } catch (err) {
      labels = {};  // the codes still say what they mean, if less kindly
    }
    return labels;
  }
  const KINDS = { topic: "topics", language: "languages", wrap_up: "wrap_up_codes",
    end_reason: "end_reasons", state: "states", away_reason: "away_reasons" };
  function label(kind, code) {
    if (code === null || code === undefined || code === "") return "";
    const table = labels[KINDS[kind] || kind] || {};
    return table[code] || String(code);
  }

  // Status text for the connection indicator (role=status on the page).
  function renderStatus(node, status) {
    const labels = {
      connecting: "Connecting…", connected: "Live", reconnecting: "Reconnecting…",
      disconnected: "Offline",
    };
    node.textContent = labels[status] || status;
    node.dataset.state = status;
  }

  // Wire a login form: calls done(session) once logged in with an allowed role.
  // ["coach", "supervisor", "admin"] -> "coaches, supervisors and admins".
  function plural(roles) {
    const words = roles.map((x) => (x.endsWith("ch") ? x + "es" : x + "s"));
    return words.length < 2 ? words.join("")
      : words.slice(0, -1).join(", ") + " and " + words[words.length - 1];
  }

  // Live monitoring of a call (POST: start or change the mode, DELETE: stop); the
  // coach page and the wallboard's floor both use it. Resolves to an error text or "".
  async function monitorCall(session, callId, method, mode) {
    try {
      await api(session, `/calls/${encodeURIComponent(callId)}/monitor`,
        { method, body: mode ? { mode } : undefined });
      return "";
    } catch (err) {
      return err.message;  // e.g. no free line on the call's media worker
    }
  }

  function wireLogin(form, errorNode, session, roles, done) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      errorNode.textContent = "";
      const data = new FormData(form);
      try {
        const r = await login(session, String(data.get("username")), String(data.get("password")));
        if (roles && !roles.includes(r.role)) {
          // Not for this page: drop the token at once rather than leave it valid.
          logout(session);
          errorNode.textContent = `This page is for ${plural(roles)}; ${r.user} is ${r.role}.`;
          return;
        }
        form.reset();
        done(session);
      } catch (err) {
        errorNode.textContent = err.message || "Login failed";
      }
    });
  }

  return {
    Session, Socket, ApiError, Refresher, api, login, logout, $, el, show, fmtDuration, fmtTime, fmtDate,
    languageName, countryName, renderStatus, wireLogin, monitorCall, loadLabels, label,
  };
})();
