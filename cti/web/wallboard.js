// The supervisors' wallboard: GET /api/v1/stats/queues, refreshed on every call or
// advisor event from the WebSocket and every few seconds; the crisis panel is
// wallboard-crisis.js, the calls back panel wallboard-callbacks.js, the campaigns
// panel wallboard-campaigns.js, the advisor-by-advisor floor wallboard-floor.js.
"use strict";

(() => {
  const { el, show, api } = CTI;
  const T = (id) => document.querySelector(`[data-testid="${id}"]`);
  const session = new CTI.Session("wallboard");
  const POLL_MS = 5000;
  // Several events often arrive together (a call ends, an advisor frees up):
  // fetch once for the burst.
  const DEBOUNCE_MS = 150;
  const ADVISOR_STATES = ["available", "reserved", "on_call", "wrap_up", "away", "logged_out"];

  const ui = {
    login: T("login"), loginForm: T("login-form"), loginError: T("login-error"),
    board: T("board"), who: T("who"), conn: T("conn-status"), signOut: T("sign-out"),
    updated: T("updated"), error: T("board-error"),
  };

  let socket = null;
  let pollTimer = null;
  let debounce = null;
  let tickTimer = null;
  let stats = null;
  let fetchedAt = 0;
  let inFlight = false;
  let again = false;

  CTI.wireLogin(ui.loginForm, ui.loginError, session, ["supervisor", "admin"], start);
  ui.signOut.addEventListener("click", signOut);

  function signOut() {
    if (socket) socket.close();
    socket = null;
    clearInterval(pollTimer);
    clearInterval(tickTimer);
    CrisisPanel.stop();
    CallbacksPanel.stop();
    CampaignsPanel.stop();
    FloorPanel.stop();
    FloorMonitor.stop();
    CTI.logout(session);  // revokes the token (best effort) and forgets it
    show(ui.board, false);
    show(ui.login, true);
    show(ui.who, false);
    show(ui.signOut, false);
  }

  async function start() {
    show(ui.login, false);
    show(ui.board, true);
    show(ui.signOut, true);
    ui.who.textContent = session.user;
    show(ui.who, true);
    await CTI.loadLabels(session);  // words for topics, languages, states
    socket = new CTI.Socket(session, {
      onEvent, onHello: () => {
        refresh(); CrisisPanel.refresh(); CallbacksPanel.refresh(); CampaignsPanel.refresh();
        FloorPanel.refresh();
      },
      onStatus: (s) => CTI.renderStatus(ui.conn, s),
      onAuthFailed: (why) => { signOut(); ui.loginError.textContent = why; },
    });
    socket.connect();
    refresh();
    pollTimer = setInterval(refresh, POLL_MS);
    tickTimer = setInterval(renderLongest, 1000);
    CrisisPanel.start(session);
    CallbacksPanel.start(session);
    CampaignsPanel.start(session);
    FloorMonitor.start(session);
    FloorPanel.start(session);
  }

  function onEvent(ev) {
    CrisisPanel.onEvent(ev);
    CallbacksPanel.onEvent(ev);
    CampaignsPanel.onEvent(ev);
    FloorPanel.onEvent(ev);
    if (ev.type.startsWith("call.") || ev.type === "agent.state") {
      clearTimeout(debounce);
      debounce = setTimeout(refresh, DEBOUNCE_MS);
    }
  }

  // One request at a time; a refresh asked for meanwhile runs right after.
  async function refresh() {
    if (!session.token) return;
    if (inFlight) { again = true; return; }
    inFlight = true;
    try {
      stats = await api(session, "/stats/queues");
      fetchedAt = Date.now();
      ui.error.textContent = "";
      render(stats);
    } catch (err) {
      ui.error.textContent = `stats: ${err.message}`;
      if (err.status === 401) signOut();
    } finally {
      inFlight = false;
      if (again) { again = false; refresh(); }
    }
  }

  // ------------------------------------------------------------------ rendering
  // The shape of GET /api/v1/stats/queues: queues [{language, topic, waiting,
  // longest_wait_s}], waiting, longest_wait_s, today {answered, answered_within_sl,
  // abandoned, service_level (share or null), service_level_s}, advisors {state: n}.
  function render(s) {
    T("total-waiting").textContent = String(s.waiting);
    renderLongest();
    renderServiceLevel(s.today);
    T("abandoned").textContent = String(s.today.abandoned);
    renderQueues(s.queues);
    renderQueueService(s.service_levels || [], s.today.service_level_s);
    renderAdvisors(s.advisors);
    ui.updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  // The longest wait keeps counting between refreshes while someone waits.
  function renderLongest() {
    if (!stats) return;
    const node = T("longest-wait");
    if (!stats.waiting) {
      node.textContent = "–";
      node.dataset.seconds = "";
      node.classList.remove("alert");
      return;
    }
    const s = stats.longest_wait_s + (Date.now() - fetchedAt) / 1000;
    node.textContent = CTI.fmtDuration(s);
    node.dataset.seconds = String(Math.round(s));
    // Past the service level target this caller can no longer count as answered in time.
    node.classList.toggle("alert", s > stats.today.service_level_s);
  }

  function renderServiceLevel(today) {
    T("service-level-target").textContent = `(answered within ${today.service_level_s} s)`;
    T("service-level").textContent = today.service_level === null
      ? "–" : `${Math.round(today.service_level * 100)} %`;
    const total = today.answered + today.abandoned;
    T("service-level-detail").textContent = total
      ? `${today.answered_within_sl} of ${total} calls (${today.abandoned} abandoned)` : "no calls yet";
  }

  function renderQueues(queues) {
    const shown = queues.filter((q) => q.waiting > 0)
      .sort((a, b) => b.longest_wait_s - a.longest_wait_s);
    T("queue-rows").replaceChildren(...shown.map((q) => {
      return el("tr", { "data-testid": `queue-${q.language}-${q.topic}` },
        el("th", { scope: "row", text: CTI.label("language", q.language) }),
        el("td", { text: CTI.label("topic", q.topic) }),
        el("td", { class: "num", "data-testid": "queue-waiting", text: String(q.waiting) }),
        el("td", { class: "num", "data-testid": "queue-longest",
                   text: CTI.fmtDuration(q.longest_wait_s) }));
    }));
    show(T("queues-empty"), shown.length === 0);
  }

  // Today's service level of each queue (language and topic) that had a queued call.
  function renderQueueService(rows, target) {
    T("sl-queues-target").textContent = `(answered within ${target} s)`;
    T("sl-queue-rows").replaceChildren(...rows.map((q) => el("tr",
      { "data-testid": `sl-${q.language}-${q.topic}` },
      el("th", { scope: "row", text: CTI.label("language", q.language) }),
      el("td", { text: CTI.label("topic", q.topic) }),
      el("td", { class: "num", "data-testid": "sl-answered", text: String(q.answered) }),
      el("td", { class: "num", "data-testid": "sl-within", text: String(q.answered_within_sl) }),
      el("td", { class: "num", "data-testid": "sl-abandoned", text: String(q.abandoned) }),
      el("td", { class: "num", "data-testid": "sl-value", text: q.service_level === null
        ? "–" : `${Math.round(q.service_level * 100)} %` }))));
    show(T("sl-queues-empty"), rows.length === 0);
  }

  function renderAdvisors(counts) {
    const states = [...ADVISOR_STATES,
      ...Object.keys(counts).filter((k) => !ADVISOR_STATES.includes(k))];
    T("advisor-rows").replaceChildren(...states.map((st) => el("tr",
      { "data-testid": `advisors-${st}` },
      el("th", { scope: "row", text: CTI.label("state", st) }),
      el("td", { class: "num", "data-testid": "advisor-count", text: String(counts[st] ?? 0) }))));
  }

  if (session.token && ["supervisor", "admin"].includes(session.role)) start();
})();
