// The wallboard's crisis panel (the crisis_line plugin): start a crisis, watch its
// counts, end it. wallboard.js calls start(session), onEvent(ev), refresh() (after a
// reconnect) and stop().
"use strict";

const CrisisPanel = (() => {
  const { show, api } = CTI;
  const T = (id) => document.querySelector(`[data-testid="${id}"]`);
  const BASE = "/plugins/crisis_line/crises";
  const POLL_MS = 15000;
  const DEBOUNCE_MS = 200;
  // Events that change a crisis's counts (or the crisis itself).
  const REFRESH_ON = ["crisis.started", "crisis.ended", "crisis.overflowed",
    "call.queued", "call.connected", "call.ended"];

  const ui = {
    panel: T("crisis-panel"), banner: T("crisis-banner"), idle: T("crisis-idle"),
    form: T("crisis-form"), open: T("crisis-open"), error: T("crisis-error"),
    end: T("crisis-end"), confirm: T("crisis-end-confirm"),
  };
  let session = null;
  const refresher = new CTI.Refresher(() => refresh(), (ev) => REFRESH_ON.includes(ev.type),
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

  async function refresh() {
    if (!session) return;
    let crisis;
    try {
      crisis = await api(session, `${BASE}/current`);
    } catch (err) {
      if (err.status === 404) { show(ui.panel, false); stop(); return; } // not enabled
      ui.error.textContent = `crisis: ${err.message}`;
      return;
    }
    show(ui.panel, true);
    render(crisis);
  }

  // crisis: GET current's answer (CrisisOut), or null when none is in force.
  function render(crisis) {
    show(ui.banner, crisis !== null);
    show(ui.idle, crisis === null);
    ui.panel.classList.toggle("active", crisis !== null);
    if (crisis === null) {
      show(ui.confirm, false);
      show(ui.end, true);
      return;
    }
    closeForm();  // started here or elsewhere: the form is done with
    T("crisis-name").textContent = crisis.name;
    T("crisis-since").textContent = `since ${CTI.fmtDate(crisis.started_at)}`
      + (crisis.started_by ? ` by ${crisis.started_by}` : "")
      + ` · priority ${crisis.priority}`;
    for (const k of ["waiting", "answered", "overflowed"]) {
      T(`crisis-${k}`).textContent = String(crisis[k]);
    }
  }

  // ------------------------------------------------------------------ starting
  ui.open.addEventListener("click", () => {
    ui.error.textContent = "";
    ui.form.reset();
    show(ui.form, true);
    show(ui.open, false);
    T("crisis-form-name").focus();
  });

  T("crisis-cancel").addEventListener("click", closeForm);

  function closeForm() {
    show(ui.form, false);
    show(ui.open, true);
  }

  ui.form.addEventListener("submit", async (e) => {
    e.preventDefault();
    ui.error.textContent = "";
    const data = new FormData(ui.form);
    const body = { name: String(data.get("name")).trim() };
    // An empty text is left out: the plugin's standard text is spoken instead.
    const announcement = {};
    for (const lang of ["en", "nl"]) {
      const text = String(data.get(lang)).trim();
      if (text) announcement[lang] = text;
    }
    if (Object.keys(announcement).length) body.announcement = announcement;
    const priority = String(data.get("priority")).trim();
    if (priority) body.priority = Number(priority);
    const button = T("crisis-start");
    button.disabled = true;  // speaking the prompts takes a moment
    try {
      render(await api(session, BASE, { method: "POST", body }));
      closeForm();
    } catch (err) {
      ui.error.textContent = `Could not start the crisis: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });

  // ------------------------------------------------------------------ ending
  ui.end.addEventListener("click", () => {
    ui.error.textContent = "";
    show(ui.end, false);
    show(ui.confirm, true);
    T("crisis-end-no").focus();
  });

  T("crisis-end-no").addEventListener("click", () => {
    show(ui.confirm, false);
    show(ui.end, true);
  });

  T("crisis-end-yes").addEventListener("click", async () => {
    try {
      await api(session, `${BASE}/current/end`, { method: "POST" });
      render(null);
    } catch (err) {
      ui.error.textContent = `Could not end the crisis: ${err.message}`;
      refresh();
    }
  });

  return { start, stop, onEvent, refresh };
})();
