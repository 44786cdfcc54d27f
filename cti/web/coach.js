// The coaches' page: find recordings (the recording plugin's API) and listen to
// them; live calls to monitor (coach-live.js). Every listen and download is
// audited by the gateway.
"use strict";

(() => {
  const { el, show, api } = CTI;
  const T = (id) => document.querySelector(`[data-testid="${id}"]`);
  const session = new CTI.Session("coach");
  const ROLES = ["coach", "supervisor", "admin"];
  const BASE = "/plugins/recording";

  const ui = {
    login: T("login"), loginForm: T("login-form"), loginError: T("login-error"),
    main: T("coach"), who: T("who"), signOut: T("sign-out"), notEnabled: T("not-enabled"),
    search: T("search-panel"), form: T("search-form"), error: T("coach-error"),
    results: T("results-panel"), rows: T("recording-rows"), empty: T("recordings-empty"),
    count: T("result-count"), player: T("player"), audio: T("player-audio"),
    title: T("player-title"), state: T("player-state"), paused: T("player-paused"),
  };

  CTI.wireLogin(ui.loginForm, ui.loginError, session, ROLES, start);
  ui.signOut.addEventListener("click", signOut);
  ui.form.addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  for (const [event, text] of [["playing", "playing"], ["pause", "paused"],
    ["ended", "ended"], ["waiting", "loading…"]]) {
    ui.audio.addEventListener(event, () => setState(text));
  }
  ui.audio.addEventListener("error", () => {
    if (ui.audio.getAttribute("src")) setState("error", "The recording could not be played (the link may have expired: press Play again).");
  });

  function setState(state, text) {
    ui.state.dataset.state = state;
    ui.state.textContent = text || state;
  }

  function signOut() {
    stopAudio();
    CoachLive.stop();
    CTI.logout(session);
    show(ui.main, false);
    show(ui.login, true);
    show(ui.who, false);
    show(ui.signOut, false);
  }

  function stopAudio() {
    ui.audio.pause();
    ui.audio.removeAttribute("src");
    ui.audio.load();
    show(ui.player, false);
  }

  async function start() {
    show(ui.login, false);
    show(ui.main, true);
    show(ui.signOut, true);
    ui.who.textContent = session.user;
    show(ui.who, true);
    const words = await CTI.loadLabels(session);
    // The topic search takes a code; the list offers each with its name.
    document.querySelector("#q-topics").replaceChildren(...Object.entries(words.topics || {})
      .map(([code, name]) => el("option", { value: code, label: name })));
    CoachLive.start(session);
    refresh();
  }

  function query() {
    const data = new FormData(ui.form);
    const q = new URLSearchParams({ limit: "200" });
    for (const key of ["advisor", "topic", "number"]) {
      const v = String(data.get(key) || "").trim();
      if (v) q.set(key, v);
    }
    const day = String(data.get("date") || "");
    if (day) {  // that day in the browser's time zone
      const since = new Date(day + "T00:00:00");
      const until = new Date(since);
      until.setDate(until.getDate() + 1);
      q.set("since", String(since.getTime() / 1000));
      q.set("until", String(until.getTime() / 1000));
    }
    return q;
  }

  async function refresh() {
    ui.error.textContent = "";
    try {
      const list = await api(session, `${BASE}/recordings?${query()}`);
      show(ui.notEnabled, false);
      show(ui.search, true);
      show(ui.results, true);
      render(list);
    } catch (err) {
      if (err.status === 404) {  // no such route: the plugin is not enabled
        show(ui.notEnabled, true);
        show(ui.search, false);
        show(ui.results, false);
      } else if (err.status === 401) {
        signOut();
        ui.loginError.textContent = "Your session has ended: sign in again.";
      } else {
        ui.error.textContent = err.message;
      }
    }
  }

  function fmtRanges(paused) {
    if (!paused || !paused.length) return "–";
    // Offsets into the file, to a tenth of a second ("0.5–0.7 s", "1:02.5–1:10.0").
    const at = (s) => (s < 60 ? s.toFixed(1)
      : `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}`);
    return paused.map(([a, b]) => `${at(a)}–${at(b)}${b < 60 ? " s" : ""}`).join(", ");
  }

  function render(list) {
    ui.count.textContent = `(${list.length})`;
    show(ui.empty, list.length === 0);
    ui.rows.replaceChildren(...list.map((r) => {
      const playable = r.status === "done";
      const why = r.status === "declined" ? "declined by the caller"
        : r.status === "failed" ? `failed${r.error ? ": " + r.error : ""}` : r.status;
      return el("tr", { "data-testid": "recording-row", "data-recording-id": String(r.recording_id),
        "data-status": r.status },
      el("td", { "data-testid": "rec-date", text: CTI.fmtDate(r.started_at) }),
      el("td", { "data-testid": "rec-advisors", text: r.advisors.join(", ") || "–" }),
      el("td", { "data-testid": "rec-topic", text: CTI.label("topic", r.topic) || "–",
        title: r.topic || "" }),
      el("td", { "data-testid": "rec-language", text: CTI.label("language", r.language) || "–",
        title: r.language || "" }),
      el("td", { "data-testid": "rec-number", text: r.caller_number || "–" }),
      el("td", { class: "num", "data-testid": "rec-duration", text: CTI.fmtDuration(r.duration_s) }),
      el("td", { "data-testid": "rec-consent", text: r.consent.replace("_", " ") }),
      el("td", { "data-testid": "rec-paused", text: fmtRanges(r.paused) }),
      el("td", { "data-testid": "rec-held", text: r.held ? `held${r.held_reason ? ": " + r.held_reason : ""}` : "no" }),
      el("td", {}, playable
        ? el("span", { class: "row" },
          el("button", { type: "button", "data-testid": "rec-play", onclick: () => play(r) }, "Play"),
          el("button", { type: "button", class: "secondary", "data-testid": "rec-download",
            onclick: () => download(r) }, "Download"))
        : el("span", { class: "muted", "data-testid": "rec-no-file", text: why })));
    }));
  }

  async function play(r) {
    ui.error.textContent = "";
    try {
      const link = await api(session, `${BASE}/recordings/${r.recording_id}/audio-link`,
        { method: "POST" });
      ui.title.textContent = `#${r.recording_id} – ${r.advisors.join(", ")}, ${CTI.fmtDate(r.started_at)}`;
      ui.paused.textContent = r.paused.length ? `Paused (not recorded): ${fmtRanges(r.paused)}` : "";
      show(ui.player, true);
      ui.audio.dataset.recordingId = String(r.recording_id);
      ui.audio.src = link.url;
      setState("loading", "loading…");
      await ui.audio.play();
    } catch (err) {
      ui.error.textContent = err.message || String(err);
    }
  }

  // A download needs the token: fetch it, then save the blob.
  async function download(r) {
    ui.error.textContent = "";
    try {
      const res = await fetch(`/api/v1${BASE}/recordings/${r.recording_id}/download`,
        { headers: { Authorization: "Bearer " + session.token } });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        throw new Error(body.detail || `HTTP ${res.status}`);
      }
      const url = URL.createObjectURL(await res.blob());
      const a = el("a", { href: url, download: `recording-${r.recording_id}.wav` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      ui.error.textContent = err.message;
    }
  }

  if (session.token && ROLES.includes(session.role)) start();
})();
