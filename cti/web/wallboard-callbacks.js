// The wallboard's calls back panel (the callbacks plugin): how many wait, how many
// were connected and given up today. wallboard.js calls start(session),
// onEvent(ev), refresh() (after a reconnect) and stop().
"use strict";

const CallbacksPanel = (() => {
  const { show, api } = CTI;
  const T = (id) => document.querySelector(`[data-testid="${id}"]`);
  const STATS = "/plugins/callbacks/stats";
  const POLL_MS = 15000;
  const DEBOUNCE_MS = 200;

  const ui = { panel: T("callbacks-panel"), error: T("callbacks-error") };
  let session = null;
  let inFlight = false;
  let again = false;
  // A request made, an attempt's end, a call back connected or given up.
  const refresher = new CTI.Refresher(() => refresh(),
    (ev) => ev.type.startsWith("callback.") || ev.type === "call.ended",
    { pollMs: POLL_MS, debounceMs: DEBOUNCE_MS });

  function start(s) {
    session = s;
    refresher.start();
  }

  function stop() {
    refresher.stop();
    session = null;
  }

  function onEvent(ev) {
    refresher.onEvent(ev);
  }

  // One request at a time; a refresh asked for meanwhile runs right after.
  async function refresh() {
    if (!session) return;
    if (inFlight) { again = true; return; }
    inFlight = true;
    try {
      const stats = await api(session, STATS);
      ui.error.textContent = "";
      show(ui.panel, true);
      render(stats);
    } catch (err) {
      if (err.status === 404) { show(ui.panel, false); stop(); return; } // not enabled
      ui.error.textContent = `calls back: ${err.message}`;
    } finally {
      inFlight = false;
      if (again && session) { again = false; refresh(); }
    }
  }

  // stats: GET /plugins/callbacks/stats (pending, scheduled, queued,
  // connected_today, unreached_today, cancelled_today, next_due_at).
  function render(s) {
    T("callbacks-pending").textContent = String(s.pending);
    T("callbacks-connected").textContent = String(s.connected_today);
    T("callbacks-unreached").textContent = String(s.unreached_today);
    T("callbacks-detail").textContent = `${s.queued} waiting for an advisor, `
      + `${s.scheduled} scheduled`
      + (s.next_due_at !== null ? ` (next ${CTI.fmtDate(s.next_due_at)})` : "")
      + ` · ${s.cancelled_today} cancelled today`;
  }

  return { start, stop, onEvent, refresh };
})();
