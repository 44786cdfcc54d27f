// The wallboard's campaigns panel (the campaigns plugin): upload a CSV as a
// campaign, watch each campaign's progress live, pause, resume, stop, export the
// outcomes. wallboard.js calls start(session), onEvent(ev), refresh() and stop().
"use strict";

const CampaignsPanel = (() => {
  const { el, show, api } = CTI;
  const T = (id) => document.querySelector(`[data-testid="${id}"]`);
  const BASE = "/plugins/campaigns";
  const POLL_MS = 15000;
  const DEBOUNCE_MS = 200;
  const ACTIONS = { running: ["pause", "stop"], paused: ["resume", "stop"] };

  const ui = {
    panel: T("campaigns-panel"), rows: T("campaign-rows"), empty: T("campaigns-empty"),
    form: T("campaign-form"), open: T("campaign-open"), error: T("campaigns-error"),
    topic: T("campaign-form-topic"), language: T("campaign-form-language"),
  };
  let session = null;
  let options = null;
  // A campaign created, paused, resumed, stopped or done; a number's attempt.
  const refresher = new CTI.Refresher(() => refresh(),
    (ev) => ev.type.startsWith("campaign."), { pollMs: POLL_MS, debounceMs: DEBOUNCE_MS });

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
    let campaigns;
    try {
      if (options === null) options = await api(session, `${BASE}/options`);
      campaigns = await api(session, `${BASE}/campaigns`);
    } catch (err) {
      if (err.status === 404) { show(ui.panel, false); stop(); return; } // not enabled
      ui.error.textContent = `campaigns: ${err.message}`;
      return;
    }
    show(ui.panel, true);
    render(campaigns);
  }

  function render(campaigns) {
    show(ui.empty, campaigns.length === 0);
    ui.rows.replaceChildren(...campaigns.map(row));
  }

  // One campaign: name, status, progress, outcomes, actions.
  function row(c) {
    const n = c.counts;
    const finished = n.reached + n.no_answer + n.wrong_number + n.cancelled;
    const bar = el("progress", { max: String(n.total), value: String(finished),
      "aria-label": `${c.name}: ${finished} of ${n.total} numbers done` });
    const actions = (ACTIONS[c.status] || []).map((a) => el("button", {
      type: "button", class: a === "stop" ? "danger" : "secondary",
      "data-testid": `campaign-${a}-${c.campaign_id}`,
      onclick: () => act(c.campaign_id, a) }, a[0].toUpperCase() + a.slice(1)));
    actions.push(el("button", { type: "button", class: "secondary",
      "data-testid": `campaign-export-${c.campaign_id}`,
      onclick: () => exportCsv(c) }, "Export CSV"));
    const cell = (key, value) => el("td", { class: "num",
      "data-testid": `campaign-${key}-${c.campaign_id}` }, String(value));
    return el("tr", { "data-testid": `campaign-${c.campaign_id}` },
      el("td", {}, el("strong", {}, c.name), el("div", { class: "muted" },
        `${CTI.label("topic", c.topic)} · ${c.window_start}–${c.window_end} local`)),
      el("td", { "data-testid": `campaign-status-${c.campaign_id}` }, c.status),
      el("td", {}, bar, el("span", { class: "muted",
        "data-testid": `campaign-done-${c.campaign_id}` }, ` ${finished}/${n.total}`)),
      cell("reached", n.reached), cell("no-answer", n.no_answer),
      cell("wrong", n.wrong_number), cell("waiting", n.scheduled + n.queued),
      cell("calling", n.calling),
      el("td", {}, el("div", { class: "row" }, ...actions)));
  }

  async function act(campaignId, action) {
    ui.error.textContent = "";
    try {
      await api(session, `${BASE}/campaigns/${campaignId}/${action}`, { method: "POST" });
    } catch (err) {
      ui.error.textContent = `Could not ${action} the campaign: ${err.message}`;
    }
    refresh();
  }

  // The export needs the token: fetched, then handed to the browser as a file.
  async function exportCsv(c) {
    ui.error.textContent = "";
    const res = await fetch(`/api/v1${BASE}/campaigns/${c.campaign_id}/export.csv`,
      { headers: { Authorization: "Bearer " + session.token } });
    if (!res.ok) { ui.error.textContent = `Export failed: ${res.status}`; return; }
    const url = URL.createObjectURL(await res.blob());
    const a = el("a", { href: url, download: `campaign-${c.campaign_id}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  // ------------------------------------------------------------------ uploading
  ui.open.addEventListener("click", () => {
    ui.error.textContent = "";
    ui.form.reset();
    fillOptions();
    show(ui.form, true);
    show(ui.open, false);
    T("campaign-form-name").focus();
  });

  T("campaign-cancel").addEventListener("click", closeForm);

  function closeForm() {
    show(ui.form, false);
    show(ui.open, true);
  }

  function fillOptions() {
    if (!options) return;
    const opt = (o, selected) => el("option", { value: o.code, selected },
      `${o.name} (${o.code})`);
    ui.topic.replaceChildren(...options.topics.map((o) => opt(o, false)));
    ui.language.replaceChildren(...options.languages.map(
      (o) => opt(o, o.code === options.default_language)));
    T("campaign-form-start").placeholder = options.window_start;
    T("campaign-form-end").placeholder = options.window_end;
  }

  ui.form.addEventListener("submit", async (e) => {
    e.preventDefault();
    ui.error.textContent = "";
    const data = new FormData(ui.form);
    const file = data.get("file");
    if (!(file instanceof File) || file.size === 0) {
      ui.error.textContent = "Choose a CSV file (number, name, language, note).";
      return;
    }
    const body = { name: String(data.get("name")).trim(), topic: String(data.get("topic")),
      language: String(data.get("language")), csv: await file.text() };
    const from = String(data.get("window_start")).trim();
    const to = String(data.get("window_end")).trim();
    if (from) body.window_start = from;
    if (to) body.window_end = to;
    const button = T("campaign-upload");
    button.disabled = true;
    try {
      await api(session, `${BASE}/campaigns`, { method: "POST", body });
      closeForm();
      refresh();
    } catch (err) {
      ui.error.textContent = `Could not upload the campaign: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });

  return { start, stop, onEvent, refresh };
})();
