// "Today's calls" on the agent desktop: GET /agents/me/history, in words; a call
// not wrapped up in time gets a button to wrap it up now.
"use strict";

const AgentHistory = (() => {
  const { el, show, api } = CTI;
  const T = (id) => document.querySelector(`[data-testid="${id}"]`);

  // openWrapUp(callId, number): opens the wrap-up form for a call of the list.
  async function refresh(session, openWrapUp) {
    const empty = T("history-empty");
    let rows;
    try {
      rows = await api(session, "/agents/me/history");
    } catch (err) {
      empty.textContent = `history: ${err.message}`;
      show(empty, true);
      return;
    }
    const list = Array.isArray(rows) ? rows : rows.calls || [];
    T("history-rows").replaceChildren(...list.map((c) => row(c, openWrapUp)));
    empty.textContent = "No calls yet today.";
    show(empty, list.length === 0);
  }

  function row(c, openWrapUp) {
    // A row of GET /api/v1/agents/me/history (a call record with its wrap-up).
    const duration = c.ended_at && c.answered_at ? c.ended_at - c.answered_at : null;
    return el("tr", { "data-testid": "history-row", "data-call-id": c.call_id },
      el("td", { text: CTI.fmtTime(c.started_at) }),
      el("td", { text: c.caller_number || "" }),
      el("td", { text: CTI.label("language", c.language), title: c.language || "" }),
      el("td", { text: CTI.label("topic", c.topic), title: c.topic || "" }),
      el("td", { class: "num", text: CTI.fmtDuration(duration) }),
      el("td", { "data-testid": "history-code", "data-code": c.wrap_up_code || "" },
        outcome(c, openWrapUp)),
      el("td", { "data-testid": "history-note", text: c.wrap_up_note ?? "" }));
  }

  // The wrap-up in words; else a button to wrap up now; else how the call ended.
  function outcome(c, openWrapUp) {
    if (c.wrapped_up === false) {
      return el("span", {},
        el("span", { class: "badge warn", "data-testid": "history-not-wrapped",
          text: "Not wrapped up" }),
        " ",
        el("button", { type: "button", class: "small", "data-testid": "history-wrap-up",
          onclick: () => openWrapUp(c.call_id, c.caller_number) }, "Wrap up"));
    }
    if (c.wrap_up_code) return CTI.label("wrap_up", c.wrap_up_code);
    return el("span", { class: "muted", text: CTI.label("end_reason", c.end_reason) });
  }

  return { refresh };
})();
