// Live calls on the coaches' page (coaches, supervisors): listen to a call, whisper
// to its advisor or barge in. Your phone rings (POST /api/v1/calls/{id}/monitor),
// the mode changes with PATCH, Stop is a DELETE; the gateway audits every use.
"use strict";

const CoachLive = (() => {
  const { el, show, api } = CTI;
  const T = (id) => document.querySelector(`[data-testid="${id}"]`);
  const MODES = [["listen", "Listen"], ["whisper", "Whisper"], ["barge", "Barge"]];
  const STATES = { ringing: "your phone rings", active: "on" };
  let session = null;
  // No events reach a coach for calls they do not monitor: a poll.
  const refresher = new CTI.Refresher(refresh, () => false, { pollMs: 3000, debounceMs: 0 });

  function setError(text) { T("live-error").textContent = text || ""; }

  async function refresh() {
    if (!session) return;
    try {
      const calls = await api(session, "/calls");
      render(calls.filter((c) => c.state === "connected" || mine(c)));
      setError("");
    } catch (err) {
      setError(err.message);
    }
  }

  function mine(c) { return (c.monitors || []).find((m) => m.by === session.user); }

  function render(calls) {
    show(T("live-empty"), calls.length === 0);
    T("live-rows").replaceChildren(...calls.map((c) => {
      const m = mine(c);
      const buttons = MODES.map(([mode, label]) => el("button", {
        type: "button", class: m && m.mode === mode ? null : "secondary",
        "aria-pressed": String(Boolean(m) && m.mode === mode), "data-testid": `monitor-${mode}`,
        onclick: () => act(c.call_id, m ? "PATCH" : "POST", mode),
      }, label));
      if (m) {
        buttons.push(el("button", { type: "button", class: "secondary", "data-testid": "monitor-stop",
          onclick: () => act(c.call_id, "DELETE") }, "Stop"));
      }
      return el("tr", { "data-testid": "live-row", "data-call-id": c.call_id },
        el("td", { "data-testid": "live-advisor", text: c.advisor || "–" }),
        el("td", { text: c.topic || "–" }),
        el("td", { text: c.language || "–", title: CTI.languageName(c.language) }),
        el("td", { "data-testid": "live-monitor",
          text: m ? `${m.mode}: ${STATES[m.state] || m.state}` : "–" }),
        el("td", {}, el("span", { class: "row" }, ...buttons)));
    }));
  }

  async function act(callId, method, mode) {
    setError(await CTI.monitorCall(session, callId, method, mode));
    refresh();
  }

  return {
    start(s) { session = s; show(T("live-panel"), true); refresher.start(); },
    stop() { refresher.stop(); session = null; show(T("live-panel"), false); },
  };
})();
