// The supervisor's floor on the wallboard: every advisor (state in words, time in
// state, current call), the live calls and the calls waiting. GET /routing (the
// distributor's picture) and GET /calls (who is calling), refreshed on call and
// advisor events and by a poll; the times count on each second between fetches.
// wallboard.js calls start(session), onEvent(ev), refresh() and stop();
// addLiveCallAction(fn) lets another panel fill each new live call's actions cell.
"use strict";

const FloorPanel = (() => {
  const { el, show, api } = CTI;
  const T = (id) => document.querySelector(`[data-testid="${id}"]`);
  const POLL_MS = 5000;
  const DEBOUNCE_MS = 150;

  let session = null;
  let inFlight = false;
  let again = false;
  let ticker = null;
  // Server time minus this browser's (the times come from the gateway's clock).
  let offsetS = 0;
  // Filled by others (e.g. monitoring buttons): fn(cell, call) once per new live call row.
  const liveCallActions = [];
  const refresher = new CTI.Refresher(() => refresh(),
    (ev) => ev.type.startsWith("call.") || ev.type === "agent.state",
    { pollMs: POLL_MS, debounceMs: DEBOUNCE_MS });

  function start(s) {
    session = s;
    refresher.start();
    clearInterval(ticker);
    ticker = setInterval(tick, 1000);
  }

  function stop() {
    refresher.stop();
    clearInterval(ticker);
    session = null;
  }

  function onEvent(ev) { refresher.onEvent(ev); }

  function addLiveCallAction(fn) { liveCallActions.push(fn); }

  // One request pair at a time; a refresh asked for meanwhile runs right after.
  async function refresh() {
    if (!session) return;
    if (inFlight) { again = true; return; }
    inFlight = true;
    try {
      const [routing, calls] = await Promise.all([api(session, "/routing"), api(session, "/calls")]);
      offsetS = routing.now - Date.now() / 1000;
      T("floor-error").textContent = "";
      render(routing, new Map(calls.map((c) => [c.call_id, c])));
    } catch (err) {
      T("floor-error").textContent = `floor: ${err.message}`;
    } finally {
      inFlight = false;
      if (again && session) { again = false; refresh(); }
    }
  }

  function render(routing, calls) {
    renderAdvisors(routing.advisors, calls);
    renderLive([...calls.values()].filter((c) => c.answered_at && c.state !== "ended"));
    renderWaiting(routing.calls.filter((c) => c.status !== "connected"), calls);
  }

  // ---------------------------------------------------------------- the rows
  // A time cell counts on from `since` (unix seconds) each second (tick).
  function clock(testid, since) {
    const td = el("td", { class: "num", "data-testid": testid });
    setClock(td, since);
    return td;
  }

  function setClock(td, since) {
    if (since === null || since === undefined) {
      delete td.dataset.since;
      td.dataset.seconds = "";
      td.textContent = "–";
      return;
    }
    td.dataset.since = String(since);
    tickCell(td, Date.now() / 1000 + offsetS);
  }

  function tickCell(td, now) {
    const s = Math.max(0, now - Number(td.dataset.since));
    td.textContent = CTI.fmtDuration(s);
    td.dataset.seconds = String(Math.floor(s));
  }

  function tick() {
    const now = Date.now() / 1000 + offsetS;
    for (const td of document.querySelectorAll("[data-testid='floor'] td[data-since]")) {
      tickCell(td, now);
    }
  }

  function country(c) {
    const code = c && c.caller ? c.caller.country : null;
    if (!code) return "–";
    const name = CTI.countryName(code);
    return name && name !== code ? `${name} (${code})` : code;
  }

  function words(kind, code) { return CTI.label(kind, code) || "–"; }

  // Rows keyed by id are kept (and updated) across refreshes, so what others put
  // in a row (an actions cell, a focused button) survives the next refresh.
  function sync(tbody, items, key, make, update) {
    const old = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
    const rows = items.map((item) => {
      const tr = old.get(key(item)) || make(item);
      tr.dataset.key = key(item);
      update(tr, item);
      return tr;
    });
    tbody.replaceChildren(...rows);
  }

  function setText(tr, testid, text) { tr.querySelector(`[data-testid="${testid}"]`).textContent = text; }

  // ---------------------------------------------------------------- advisors
  function renderAdvisors(advisors, calls) {
    const list = [...advisors].sort((a, b) => a.name.localeCompare(b.name));
    sync(T("floor-advisor-rows"), list, (a) => a.name, (a) => el("tr",
      { "data-testid": "floor-advisor", "data-advisor": a.name },
      el("th", { scope: "row", text: a.name }),
      el("td", { "data-testid": "floor-advisor-state" }),
      clock("floor-advisor-time", null),
      el("td", { "data-testid": "floor-advisor-country" }),
      el("td", { "data-testid": "floor-advisor-language" }),
      el("td", { "data-testid": "floor-advisor-topic" }),
      clock("floor-advisor-talk", null)), (tr, a) => {
      const c = a.call_id ? calls.get(a.call_id) : null;
      tr.dataset.state = a.state;
      // A recovery break (after a distressing call) is marked for the supervisor.
      tr.classList.toggle("recovery", a.reason === "recovery");
      tr.toggleAttribute("data-recovery", a.reason === "recovery");
      const reason = a.reason ? ` (${CTI.label("away_reason", a.reason)})` : "";
      setText(tr, "floor-advisor-state", CTI.label("state", a.state) + reason);
      setClock(tr.querySelector("[data-testid='floor-advisor-time']"), a.since);
      setText(tr, "floor-advisor-country", c ? country(c) : "");
      setText(tr, "floor-advisor-language", c ? words("language", c.language) : "");
      setText(tr, "floor-advisor-topic", c ? words("topic", c.topic) : "");
      const talk = tr.querySelector("[data-testid='floor-advisor-talk']");
      if (c && c.answered_at) {
        setClock(talk, c.answered_at);
      } else {
        setClock(talk, null);
        talk.textContent = c ? "ringing" : "";  // offered, not answered yet; or no call
      }
    });
  }

  // ---------------------------------------------------------------- live calls
  function renderLive(live) {
    live.sort((a, b) => a.answered_at - b.answered_at);
    sync(T("live-call-rows"), live, (c) => c.call_id, (c) => {
      const actions = el("td", { "data-testid": "live-call-actions" });
      const tr = el("tr", { "data-testid": "live-call", "data-call-id": c.call_id },
        el("th", { scope: "row", "data-testid": "live-call-number" }),
        el("td", { "data-testid": "live-call-country" }),
        el("td", { "data-testid": "live-call-language" }),
        el("td", { "data-testid": "live-call-topic" }),
        el("td", { "data-testid": "live-call-advisor" }),
        clock("live-call-talk", c.answered_at),
        actions);
      for (const fn of liveCallActions) fn(actions, c);
      return tr;
    }, (tr, c) => {
      tr.dataset.state = c.held_at ? "held" : c.state;
      setText(tr, "live-call-number", (c.caller && c.caller.number) || "unknown number");
      setText(tr, "live-call-country", country(c));
      setText(tr, "live-call-language", words("language", c.language));
      setText(tr, "live-call-topic", words("topic", c.topic));
      setText(tr, "live-call-advisor", (c.advisor || "–") + (c.held_at ? " · on hold" : ""));
      setClock(tr.querySelector("[data-testid='live-call-talk']"), c.answered_at);
    });
    show(T("live-calls-empty"), live.length === 0);
  }

  // ---------------------------------------------------------------- waiting calls
  // The distributor's calls not yet connected, longest wait first (an offered
  // call still waits: its caller hears the queue until the advisor answers).
  function renderWaiting(waiting, calls) {
    waiting.sort((a, b) => a.enqueued_at - b.enqueued_at);
    sync(T("waiting-call-rows"), waiting, (w) => w.call_id, (w) => el("tr",
      { "data-testid": "waiting-call", "data-call-id": w.call_id },
      el("th", { scope: "row", "data-testid": "waiting-call-number" }),
      el("td", { "data-testid": "waiting-call-country" }),
      el("td", { "data-testid": "waiting-call-language" }),
      el("td", { "data-testid": "waiting-call-topic" }),
      el("td", { "data-testid": "waiting-call-status" }),
      clock("waiting-call-wait", w.enqueued_at)), (tr, w) => {
      const c = calls.get(w.call_id);
      setText(tr, "waiting-call-number", (c && c.caller && c.caller.number) || "–");
      setText(tr, "waiting-call-country", country(c));
      setText(tr, "waiting-call-language", words("language", w.language));
      setText(tr, "waiting-call-topic", words("topic", w.topic));
      const prio = w.priority > 0 ? ` · priority raised by ${w.priority}` : "";
      setText(tr, "waiting-call-status", (w.status === "offered" && w.advisor
        ? `ringing ${w.advisor}` : `waiting, ${ordinal(w.position)} in line`) + prio);
      setClock(tr.querySelector("[data-testid='waiting-call-wait']"), w.enqueued_at);
    });
    show(T("waiting-calls-empty"), waiting.length === 0);
  }

  function ordinal(n) {
    if (!n) return "next";
    const s = { 1: "st", 2: "nd", 3: "rd" }[n % 100 > 10 && n % 100 < 14 ? 0 : n % 10] || "th";
    return `${n}${s}`;
  }

  return { start, stop, onEvent, refresh, addLiveCallAction };
})();
