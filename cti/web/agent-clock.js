// The call card's clocks on the agent desktop: how long the offer still rings,
// the talk time and the hold time, each second.
"use strict";

const CallClock = (() => {
  const T = (id) => document.querySelector(`[data-testid="${id}"]`);
  // Unix seconds of the offer's end, the answer and the hold (null: none).
  let times = { offerEnds: null, answered: null, held: null };
  let timer = null;

  // Server times (event ts, GET /calls) against this browser's clock: same host or
  // NTP, a second off at worst.
  function nowS() { return Date.now() / 1000; }

  function set(partial) {
    times = { ...times, ...partial };
    render();
    if (timer === null) timer = setInterval(render, 1000);
  }

  // The offer rings until offered + offer_timeout_s (then it goes to someone else).
  function offered(ts, timeoutS) {
    set({ offerEnds: typeof timeoutS === "number" ? (ts || nowS()) + timeoutS : null,
      answered: null, held: null });
  }
  function answered(ts) { set({ offerEnds: null, answered: ts || nowS() }); }
  function held(on, ts) { set({ held: on ? ts || nowS() : null }); }

  // The call is over (or gone): the talk time stays as it ended, nothing counts.
  function stop() {
    clearInterval(timer);
    timer = null;
    show("offer-countdown", false);
    show("hold-time", false);
  }

  function clear() {
    stop();
    times = { offerEnds: null, answered: null, held: null };
    show("talk-time", false);
  }

  function show(id, visible) { T(id).hidden = !visible; }

  function render() {
    const now = nowS();
    const ringing = times.offerEnds !== null && times.answered === null;
    show("offer-countdown", ringing);
    if (ringing) {
      const left = Math.max(0, times.offerEnds - now);
      T("offer-countdown").textContent = left > 0
        ? `Ringing: ${CTI.fmtDuration(left)} left to answer` : "Ringing: passing to a colleague…";
      T("offer-countdown").dataset.seconds = String(Math.ceil(left));
    }
    show("talk-time", times.answered !== null);
    if (times.answered !== null) {
      const talk = Math.max(0, now - times.answered);
      T("talk-time-value").textContent = CTI.fmtDuration(talk);
      T("talk-time").dataset.seconds = String(Math.floor(talk));
    }
    show("hold-time", times.held !== null);
    if (times.held !== null) {
      const hold = Math.max(0, now - times.held);
      T("hold-time-value").textContent = CTI.fmtDuration(hold);
      T("hold-time").dataset.seconds = String(Math.floor(hold));
    }
  }

  return { offered, answered, held, stop, clear };
})();
