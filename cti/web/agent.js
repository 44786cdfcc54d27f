// The agent desktop: login, state, screen pop, call controls, transfer, wrap-up, history.
"use strict";

(() => {
  const { $, el, show, api } = CTI;
  const T = (id) => document.querySelector(`[data-testid="${id}"]`);
  const session = new CTI.Session("agent");
  const CRISIS_POLL_MS = 20000;

  const ui = {
    login: T("login"), loginForm: T("login-form"), loginError: T("login-error"),
    desk: T("desk"), who: T("who"), conn: T("conn-status"), signOut: T("sign-out"),
    state: T("agent-state"), stateReason: T("agent-state-reason"), stateError: T("state-error"),
    awayReason: T("away-reason"),
    pop: T("screen-pop"), callState: T("call-state"),
    controls: T("call-controls"), actionError: T("action-error"),
    accept: T("offer-accept"), reject: T("offer-reject"), hold: T("hold"), hangup: T("hangup"),
    recording: T("recording"), recState: T("recording-state"), recToggle: T("recording-toggle"),
    transferForm: T("transfer-form"), transferType: T("transfer-type"),
    transferTarget: T("transfer-target"), transferTextBox: T("transfer-target-text"),
    suggestions: $("#transfer-suggestions"), directory: T("directory"),
    directoryList: T("directory-list"),
    consult: T("consult-controls"), consultState: T("consult-state"),
    wrap: T("wrap-up"), wrapForm: T("wrap-up-form"), wrapCode: T("wrap-up-code"),
    wrapNote: T("wrap-up-note"), wrapError: T("wrap-up-error"), wrapCall: T("wrap-up-call"),
    wrapCountdown: T("wrap-up-countdown"),
    notice: T("notice"),
  };

  // The call on the card (null: none) and the call awaiting a wrap-up (null: none).
  let call = null;
  let wrapUpCallId = null;
  let me = null;
  let directory = [];
  let socket = null;
  let crisisTimer = null;
  let wrapTimer = null;
  let phone = null; // the browser phone (phone.js), or the desk phone said on screen

  // ------------------------------------------------------------------ login
  CTI.wireLogin(ui.loginForm, ui.loginError, session, ["advisor"], start);
  ui.signOut.addEventListener("click", signOut);

  function signOut() {
    if (socket) socket.close();
    socket = null;
    clearInterval(crisisTimer);
    show(T("crisis-top"), false);
    if (phone) phone.stop();  // unregisters before the token (and its SIP credentials) ends
    phone = null;
    CTI.logout(session);  // revokes the token (best effort) and forgets it
    call = null;
    wrapUpCallId = null;
    show(ui.desk, false);
    show(ui.login, true);
    show(ui.who, false);
    show(ui.signOut, false);
  }

  async function start() {
    show(ui.login, false);
    show(ui.desk, true);
    show(ui.signOut, true);
    ui.who.textContent = session.user;
    show(ui.who, true);
    await CTI.loadLabels(session);  // before the first screen pop: words, not codes
    socket = new CTI.Socket(session, {
      onEvent, onHello: resync,
      onStatus: (s) => CTI.renderStatus(ui.conn, s),
      onAuthFailed: (why) => { signOut(); ui.loginError.textContent = why; },
    });
    socket.connect();
    phone = new AgentPhone.Phone(session);
    phone.start();
    refreshCrisis();
    crisisTimer = setInterval(refreshCrisis, CRISIS_POLL_MS);
    await Promise.all([loadWrapUpCodes(), loadDirectory(), loadAwayReasons()]);
  }

  // ------------------------------------------------------------------ crisis
  // The crisis in force (crisis_line plugin), polled: advisors get no crisis.* events.
  async function refreshCrisis() {
    const top = T("crisis-top");
    try {
      const crisis = await api(session, "/plugins/crisis_line/crises/current");
      top.textContent = crisis ? `Crisis in force: ${crisis.name}` : "";
      show(top, Boolean(crisis));
    } catch (err) {
      if (err.status === 404) clearInterval(crisisTimer); // the plugin is not enabled
      if (err.status === 401) signOut();
    }
  }

  // After every (re)connect: the REST picture, in case the page was reloaded or the
  // gateway could not replay everything missed (hello.replay_complete false).
  async function resync(hello) {
    await Promise.all([refreshMe(), restoreActiveCall(hello.replay_complete === false),
      refreshHistory()]);
  }

  async function refreshMe() {
    try {
      me = await api(session, "/agents/me");
      renderState(me.state, null);
      fillSuggestions();
    } catch (err) {
      if (err.status === 401) signOut();
    }
  }

  async function restoreActiveCall(missedEvents) {
    let calls;
    try {
      calls = await api(session, "/calls");
    } catch (err) {
      return; // the card stays as it is
    }
    const mine = calls.find((c) => c.advisor === session.user);
    if (mine && (!call || call.id !== mine.call_id)) {
      setCall(mine.call_id, mine, mine.held_at ? "held" : mine.state);
      restoreClocks(mine);
    } else if (!mine && call && call.state !== "ended" && missedEvents) {
      // Its call.ended was among the events lost: end the card here.
      onEnded({ data: { reason: "ended while offline" } });
    }
  }

  // A row of GET /calls: the card's clocks as if the events had been seen.
  function restoreClocks(c) {
    if (c.answered_at) {
      CallClock.answered(c.answered_at);
      CallClock.held(Boolean(c.held_at), c.held_at);
    } else if (c.state === "offered") {
      CallClock.offered(c.offered_at, c.offer_timeout_s);
    }
  }

  // ------------------------------------------------------------------ state
  function renderState(state, reason) {
    ui.state.textContent = state ? state.replace("_", " ") : "–";
    ui.state.dataset.state = state || "";
    ui.stateReason.textContent = reason ? `(${CTI.label("away_reason", reason)})` : "";
    for (const b of document.querySelectorAll("button[data-state]")) {
      b.setAttribute("aria-pressed", String(b.dataset.state === state));
    }
  }

  // Reasons come from config (away_reasons): the API refuses any other.
  async function loadAwayReasons() {
    let list = [];
    try {
      const r = await api(session, "/away-reasons");
      list = Array.isArray(r) ? r : (r && r.reasons) || [];
    } catch (err) {
      ui.stateError.textContent = `away reasons: ${err.message}`;
    }
    ui.awayReason.replaceChildren(el("option", { value: "", text: "(no reason)" }),
      ...list.map((x) => {
        const v = typeof x === "string" ? x : x.code || x.reason;
        return el("option", { value: v, text: CTI.label("away_reason", v) });
      }));
  }

  for (const b of document.querySelectorAll("button[data-state]")) {
    b.addEventListener("click", async () => {
      ui.stateError.textContent = "";
      const body = { state: b.dataset.state };
      if (b.dataset.state === "away" && ui.awayReason.value) body.reason = ui.awayReason.value;
      try {
        me = await api(session, "/agents/me/state", { method: "POST", body });
        renderState(me.state, body.reason || null);
      } catch (err) {
        ui.stateError.textContent = err.message;
      }
    });
  }

  // ------------------------------------------------------------------ events
  function onEvent(ev) {
    const d = ev.data || {};
    switch (ev.type) {
      case "agent.state":
        if (ev.advisor === session.user) onAgentState(d);
        break;
      case "call.offered":
        setCall(ev.call_id, d, "offered");
        CallClock.offered(ev.ts, d.offer_timeout_s);
        break;
      case "call.connected":
        if (isCurrent(ev)) {
          call.connected = true;
          setCallState("connected");
          CallClock.answered(ev.ts);
        }
        break;
      case "call.held":
        if (isCurrent(ev)) { setCallState(d.on ? "held" : "connected"); CallClock.held(d.on, ev.ts); }
        break;
      case "call.recording":
        // started/resumed: recording; paused; done/failed: not recorded any more
        if (isCurrent(ev)) {
          setRecording({ started: "recording", resumed: "recording", paused: "paused" }[d.state]
            || null);
        }
        break;
      case "call.transferring":
        // A blind transfer releases the advisor at once; the caller hears music.
        if (isCurrent(ev) && d.kind === "blind") handOff(d);
        else if (isCurrent(ev)) note(`Transferring to ${d.target}…`);
        break;
      case "call.transferred":
        if (isCurrent(ev)) handOff(d);
        break;
      case "call.transfer_failed":
        if (isCurrent(ev)) note(`Transfer to ${d.target} failed: ${d.reason || d.code || "no answer"}`, true);
        break;
      case "call.consult":
        if (isCurrent(ev)) onConsult(d);
        break;
      case "call.ended":
        if (isCurrent(ev)) onEnded(ev);
        break;
      case "call.wrap_up":
        if (ev.call_id === wrapUpCallId) wrapUpDone(d);
        else refreshHistory();
        break;
      case "agent.recovery":
        if (ev.advisor === session.user) onRecovery(d);
        break;
      case "call.not_wrapped_up":
        if (d.advisor === session.user) refreshHistory();
        break;
      default:
        break;
    }
  }

  function isCurrent(ev) { return call !== null && ev.call_id === call.id; }

  function onAgentState(d) {
    renderState(d.state, d.reason);
    if (d.state === "wrap_up") startWrapCountdown();
    else stopWrapCountdown();
    // An offer that went elsewhere (timeout, revoked) leaves the advisor free again.
    // (on_call comes just before call.connected: that is the answer, not a revoke.)
    const free = ["available", "away", "logged_out"].includes(d.state);
    if (call && call.state === "offered" && !call.connected && free) {
      clearCall();
    }
  }

  // A recovery break: no offer until it is over (or until I choose a state).
  function onRecovery(d) {
    const box = T("recovery");
    box.dataset.state = d.state;
    if (d.state === "started") {
      const until = new Date(d.until * 1000);
      const hhmm = `${String(until.getHours()).padStart(2, "0")}:${String(until.getMinutes()).padStart(2, "0")}`;
      box.textContent = d.why === "granted"
        ? `Recovery break until ${hhmm}, granted by ${d.by}. Take the time you need.`
        : `Recovery break until ${hhmm}. Take the time you need; no call comes in before.`;
      show(box, true);
    } else {
      show(box, false);
    }
  }

  function onConsult(d) {
    const active = d.state === "ringing" || d.state === "talking";
    show(ui.consult, active);
    // One transfer at a time: the form returns when the consult is over.
    show(ui.transferForm, !active && (call.state === "connected" || call.state === "held"));
    ui.consultState.textContent = `Consulting ${d.target}: ${d.state}`;
    if (!active) note(`Consultation with ${d.target} ${d.state}.`, d.state === "failed");
  }

  // The advisor handed the call on: their part is over, wrap-up follows.
  function handOff(d) {
    if (call.state === "transferred" || call.state === "ended") return;
    const wasConnected = call.connected;
    setCallState("transferred");
    CallClock.stop();
    show(ui.consult, false);
    note(`Transferred to ${d.target}.`);
    if (wasConnected) openWrapUp(call.id);
  }

  function onEnded(ev) {
    if (call.state === "transferred") return; // the call went on without us; wrap-up is open
    const wasConnected = call.connected;
    setCallState("ended");
    CallClock.stop();
    show(ui.consult, false);
    note(`Call ended: ${CTI.label("end_reason", ev.data.reason) || "ended"}.`);
    if (wasConnected) openWrapUp(call.id);
    refreshHistory();
  }

  // ------------------------------------------------------------------ the card
  function setCall(id, pop, state) {
    call = { id, pop, state, connected: state === "connected" || state === "held",
      recording: pop.recording || null };  // GET /calls says it after a reload
    ui.pop.dataset.callId = id;
    AgentPop.render(pop);
    setCallState(state);
    ui.actionError.textContent = "";
    show(ui.consult, false);
    show(ui.pop, true);
    show(ui.controls, true);
    highlightEmbassy();
    fillSuggestions();
  }

  function clearCall() {
    call = null;
    AgentPop.stopClock();
    CallClock.clear();
    show(ui.pop, false);
    show(T("pop-guide"), false);
    show(ui.controls, false);
  }

  function setCallState(state) {
    call.state = state;
    ui.callState.textContent = state;
    ui.pop.dataset.callState = state;
    const live = state === "connected" || state === "held";
    show(ui.accept.parentElement, state === "offered");
    show(ui.hold.parentElement, live || state === "offered");
    ui.hold.disabled = !live;
    ui.hold.textContent = state === "held" ? "Resume" : "Hold";
    ui.hold.setAttribute("aria-pressed", String(state === "held"));
    ui.hangup.disabled = state === "ended" || state === "transferred";
    show(ui.transferForm, live);
    if (state === "ended" || state === "transferred") show(ui.controls, false);
    renderRecording();
  }

  // The call's recording: null (not recorded), "recording" or "paused".
  function setRecording(state) {
    call.recording = state;
    renderRecording();
  }

  function renderRecording() {
    const rec = call.state === "ended" || call.state === "transferred" ? null : call.recording;
    show(ui.recording, Boolean(rec));
    ui.recState.textContent = rec === "paused" ? "Recording paused" : rec ? "Recording" : "";
    ui.recState.dataset.state = rec || "";
    ui.recToggle.textContent = rec === "paused" ? "Resume recording" : "Pause recording";
    ui.recToggle.setAttribute("aria-pressed", String(rec === "paused"));
  }

  // ------------------------------------------------------------------ controls
  async function act(cmd, args) {
    ui.actionError.textContent = "";
    try {
      return await socket.command(cmd, { call_id: call.id, ...args });
    } catch (err) {
      ui.actionError.textContent = `${cmd}: ${err.message}`;
      return null;
    }
  }

  function note(text, isError = false) {
    ui.actionError.textContent = isError ? text : "";
    if (!isError) ui.notice.textContent = text;
  }

  // Accept on the card answers the browser phone too (with a desk phone, the
  // advisor picks up the handset).
  ui.accept.addEventListener("click", () => {
    if (phone && phone.ringing()) phone.answer();
    return act("offer.accept");
  });
  ui.reject.addEventListener("click", async () => {
    if (await act("offer.reject")) clearCall();
  });
  ui.hangup.addEventListener("click", () => act("hangup"));
  ui.hold.addEventListener("click", () => act("hold", { on: call.state !== "held" }));
  // Card numbers, passport data: pause, then resume (the event updates the card too).
  ui.recToggle.addEventListener("click", async () => {
    const r = await act("recording", { paused: call.recording !== "paused" });
    if (r && call) setRecording(r.state);
  });
  T("consult-complete").addEventListener("click", () => act("consult.complete"));
  T("consult-cancel").addEventListener("click", () => act("consult.cancel"));

  ui.transferType.addEventListener("change", () => {
    const external = ui.transferType.value === "external";
    show(ui.directory, external);
    show(ui.transferTextBox, !external);
    fillSuggestions();
  });

  ui.transferForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(ui.transferForm);
    const targetType = String(data.get("target_type"));
    const target = targetType === "external"
      ? String(data.get("directory") || "") : ui.transferTarget.value.trim();
    if (!target) {
      ui.actionError.textContent = "Choose a transfer target first.";
      return;
    }
    await act("transfer", { kind: String(data.get("kind")), target_type: targetType, target });
  });

  // Topics the advisor may hand a call to: their own and the call's.
  function fillSuggestions() {
    let values = [];
    if (ui.transferType.value === "queue") {
      values = Object.keys((me && me.topics) || {});
      if (call && call.pop.topic && !values.includes(call.pop.topic)) values.push(call.pop.topic);
    }
    ui.suggestions.replaceChildren(...values.map((v) => el("option",
      { value: v, label: CTI.label("topic", v) })));
  }

  async function loadDirectory() {
    try {
      directory = await api(session, "/directory");
    } catch (err) {
      directory = [];
      ui.directoryList.replaceChildren(el("li", { class: "error", text: `directory: ${err.message}` }));
      return;
    }
    ui.directoryList.replaceChildren(...directory.map((d, i) => el("li",
      { "data-testid": `directory-entry-${d.key}`, "data-country": d.country || "" },
      el("label", {},
        el("input", { type: "radio", name: "directory", value: d.key, checked: i === 0 }),
        el("span", {}, el("strong", { text: d.name || d.key }), ` ${d.number || ""}`),
        el("span", { class: "embassy-tag badge", hidden: true, text: "caller's embassy" })))));
    highlightEmbassy();
  }

  // The embassy of the caller's country is the entry most likely wanted: mark it.
  function highlightEmbassy() {
    const country = call && call.pop.caller ? call.pop.caller.country : null;
    for (const li of ui.directoryList.querySelectorAll("li[data-country]")) {
      const match = Boolean(country) && li.dataset.country === country;
      li.classList.toggle("embassy", match);
      li.toggleAttribute("data-embassy", match);
      show(li.querySelector(".embassy-tag"), match);
      if (match) li.querySelector("input").checked = true;
    }
  }

  // ------------------------------------------------------------------ wrap-up
  async function loadWrapUpCodes() {
    try {
      const codes = await api(session, "/wrap-up-codes");
      ui.wrapCode.replaceChildren(el("option", { value: "", text: "Choose…" }),
        ...codes.map((c) => el("option", { value: c.code, text: c.label || c.code })));
    } catch (err) {
      ui.wrapError.textContent = `wrap-up codes: ${err.message}`;
    }
  }

  // number: of a call from the history (wrapped up later); else the card's.
  function openWrapUp(callId, number) {
    wrapUpCallId = callId;
    ui.wrapForm.reset();
    ui.wrapError.textContent = "";
    ui.wrapCall.textContent = number !== undefined ? number || ""
      : call && call.pop.caller ? call.pop.caller.number || "" : "";
    show(ui.wrap, true);
    ui.wrapCode.focus();
  }

  // Wrap-up lasts until saved, at most the topic's time (routing.wrap_up_s).
  async function startWrapCountdown() {
    let view;
    try {
      view = await api(session, "/agents/me");
    } catch (err) {
      return;  // the countdown is a help; the wrap-up works without it
    }
    clearInterval(wrapTimer);
    if (!view.wrap_until) return;
    const tick = () => {
      const left = Math.max(0, view.wrap_until - Date.now() / 1000);
      ui.wrapCountdown.textContent =
        `Available again in ${CTI.fmtDuration(left)} at the latest, or when you save.`;
    };
    tick();
    wrapTimer = setInterval(tick, 1000);
  }

  function stopWrapCountdown() {
    if (wrapTimer === null) return;
    clearInterval(wrapTimer);
    wrapTimer = null;
    ui.wrapCountdown.textContent = wrapUpCallId === null ? ""
      : "Wrap-up time is over: you are available again. You can still save this wrap-up.";
  }

  ui.wrapForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    ui.wrapError.textContent = "";
    const code = ui.wrapCode.value;
    if (!code) { ui.wrapError.textContent = "Choose a wrap-up code."; return; }
    try {
      const distressing = T("wrap-up-distressing").checked;
      await socket.command("wrap_up", { call_id: wrapUpCallId, code, note: ui.wrapNote.value,
        distressing });
      wrapUpDone({ code });
    } catch (err) {
      ui.wrapError.textContent = err.message;
    }
  });

  function wrapUpDone(d) {
    if (wrapUpCallId === null) return;
    wrapUpCallId = null;
    show(ui.wrap, false);
    ui.wrapCountdown.textContent = "";
    ui.notice.textContent = `Wrap-up saved (${CTI.label("wrap_up", d.code)}).`;
    if (call && (call.state === "ended" || call.state === "transferred")) clearCall();
    refreshHistory();
  }

  // ------------------------------------------------------------------ history
  function refreshHistory() { return AgentHistory.refresh(session, openWrapUp); }

  // ------------------------------------------------------------------ boot
  if (session.token && session.role === "advisor") start();
})();
