// The floor's live calls get Listen / Whisper / Barge / Stop for the supervisor
// (POST|DELETE /api/v1/calls/{id}/monitor): the supervisor's own phone rings and
// joins the call's bridge. The coach page has the same controls (coach-live.js).
"use strict";

(() => {
  const { el } = CTI;
  const MODES = [["listen", "Listen"], ["whisper", "Whisper"], ["barge", "Barge"]];
  let session = null;

  async function act(callId, method, mode) {
    const problem = await CTI.monitorCall(session, callId, method, mode);
    document.querySelector('[data-testid="floor-error"]').textContent =
      problem ? `Monitor: ${problem}` : "";  // e.g. your phone is not registered
  }

  FloorPanel.addLiveCallAction((cell, call) => {
    cell.replaceChildren(...MODES.map(([mode, text]) => el("button", {
      type: "button", class: "small secondary", "data-testid": `floor-monitor-${mode}`,
      onclick: () => act(call.call_id, "POST", mode) }, text)),
    el("button", { type: "button", class: "small secondary", "data-testid": "floor-monitor-stop",
      onclick: () => act(call.call_id, "DELETE") }, "Stop"));
  });

  window.FloorMonitor = { start(s) { session = s; }, stop() { session = null; } };
})();
