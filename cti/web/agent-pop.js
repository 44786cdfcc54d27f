// The screen pop on the agent desktop's card: who calls, in which language, about
// what, what they went through, their local time, earlier contacts and the topic's
// guide. Only renders: the desktop (agent.js) decides when.
"use strict";

const AgentPop = (() => {
  const { el, show } = CTI;
  const T = (id) => document.querySelector(`[data-testid="${id}"]`);
  let clockTimer = null;

  function render(p) {
    const caller = p.caller || {};
    T("pop-number").textContent = caller.number || "unknown number";
    T("pop-country").textContent = caller.country || "–";
    T("pop-country-name").textContent = CTI.countryName(caller.country);
    // The config's words ("Español"); the English name beside it when it differs.
    const language = CTI.label("language", p.language);
    const english = CTI.languageName(p.language);
    T("pop-language").textContent = language || "–";
    T("pop-language").dataset.code = p.language || "";
    T("pop-language-name").textContent = english && english !== language ? `(${english})` : "";
    T("pop-topic").textContent = CTI.label("topic", p.topic) || "–";
    T("pop-topic").dataset.code = p.topic || "";
    T("pop-ivr-path").replaceChildren(...(p.ivr_path || []).map((s) => el("li", { text: s })));
    T("pop-waited").textContent = p.waited_s === undefined ? "–" : CTI.fmtDuration(p.waited_s);
    T("pop-dialled").textContent = p.dialled || "–";
    renderPriority(p.priority);
    T("pop-flags").textContent = flagText(p.flags);
    renderCrisisTag(p);
    renderLocalTime(caller.local_time, caller.timezone);
    renderEarlier(p.earlier_contacts || []);
    renderGuide((p.plugins || {}).guides);
  }

  // The topic guide (the guides plugin) in the caller's language, beside the card.
  function renderGuide(guide) {
    const panel = T("pop-guide");
    show(panel, Boolean(guide && guide.markdown));
    if (!guide || !guide.markdown) return;
    panel.dataset.topic = guide.topic;
    panel.dataset.language = guide.language;
    T("pop-guide-title").textContent =
      `${CTI.label("topic", guide.topic)} · ${CTI.label("language", guide.language)}`;
    T("pop-guide-body").replaceChildren(Markdown.render(guide.markdown));
  }

  // Only a raised priority is news to the advisor (0 is every ordinary caller).
  function renderPriority(priority) {
    const n = Number(priority) || 0;
    const badge = T("pop-priority");
    badge.textContent = n > 0 ? `Priority caller (raised by ${n})` : "";
    show(badge, n > 0);
  }

  // A call of the crisis line plugin names its crisis; the gateway's own crisis
  // flag (gateway-wide or the call's) only says "crisis".
  function renderCrisisTag(p) {
    const named = ((p.plugins || {}).crisis_line || {}).crisis;
    const tag = T("pop-crisis");
    tag.textContent = named ? `Crisis: ${named}` : "CRISIS";
    show(tag, Boolean(named || p.crisis));
  }

  // The call's flags: {name: value}; the ones switched on are listed.
  function flagText(flags) {
    const on = Object.entries(flags || {}).filter(([, v]) => v).map(([k]) => k);
    return on.length ? on.join(", ") : "–";
  }

  // The caller's wall clock, from the offset in the ISO time the gateway sent.
  function renderLocalTime(iso, tz) {
    clearInterval(clockTimer);
    const node = T("pop-local-time");
    T("pop-timezone").textContent = tz || "";
    const m = typeof iso === "string" && iso.match(/([+-])(\d{2}):?(\d{2})$|Z$/);
    if (!m) { node.textContent = iso ? String(iso) : "unknown"; return; }
    const offsetMin = m[0] === "Z" ? 0 : (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
    const tick = () => {
      const t = new Date(Date.now() + offsetMin * 60000);
      const hh = String(t.getUTCHours()).padStart(2, "0");
      const mm = String(t.getUTCMinutes()).padStart(2, "0");
      const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
      node.textContent = `${days[t.getUTCDay()]} ${hh}:${mm}`;
    };
    tick();
    clockTimer = setInterval(tick, 15000);
  }

  function renderEarlier(list) {
    const ul = T("pop-earlier");
    if (!list.length) {
      ul.replaceChildren(el("li", { class: "muted", text: "none" }));
      return;
    }
    ul.replaceChildren(...list.map((c) => el("li", { "data-testid": "pop-earlier-item" },
      `${CTI.fmtDate(c.started_at)} · ${CTI.label("topic", c.topic) || "?"} `
        + `(${CTI.label("language", c.language) || "?"}) · ${c.advisor || "no advisor"}`,
      c.wrap_up_code ? el("strong", { text: ` · ${CTI.label("wrap_up", c.wrap_up_code)}` })
        : ` · ${CTI.label("end_reason", c.end_reason)}`,
      c.note ? el("span", { class: "muted", text: ` — ${c.note}` }) : null)));
  }

  function stopClock() { clearInterval(clockTimer); }

  return { render, stopClock };
})();
