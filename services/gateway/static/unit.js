// The field unit's page: asks the gateway for the unit's state every two seconds (the
// server renders it; this script only swaps it in), sends the crew's status reports with
// the phone's position when the browser may tell it, and keeps trying through a dropped
// connection, saying so.
"use strict";

(function () {
  const POLL_MS = 2000;
  const HIDDEN_MS = 10000; // a phone in a pocket: poll less, save the battery
  const REQUEST_MS = 8000; // a request on a bad network gives up after this
  const CONFIRM_MS = 15000; // a report not seen on the board by then is said so
  const POSITION_MS = 120000; // a position older than this is not sent

  const unit = document.getElementById("unit");
  const offline = document.getElementById("offline");
  const message = document.getElementById("message");
  const checked = document.getElementById("checked");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const said = JSON.parse(document.getElementById("unit-strings").textContent);
  const unitId = unit.dataset.unit;

  let shown = null; // the server's html now on the page
  const head = unit.querySelector(".unit-head");
  let status = head ? head.dataset.status : "";
  let incident = null;
  let pending = null; // {from, since}: a report sent, not yet on the board
  let position = null;
  let timer = null;
  let stopped = false;

  function say(text, problem) {
    message.textContent = text || "";
    message.classList.toggle("problem", Boolean(problem));
  }

  function signedOut() {
    stopped = true;
    clearTimeout(timer);
    message.classList.add("problem");
    message.textContent = said.session_ended + " ";
    const link = document.createElement("a");
    link.href = "/login?next=/unit";
    link.textContent = said.sign_in;
    message.appendChild(link);
    unit.querySelectorAll("button[data-status]").forEach((b) => { b.disabled = true; });
  }

  function connected(yes) {
    offline.hidden = yes;
    document.body.classList.toggle("is-offline", !yes);
  }

  async function call(url, options) {
    const abort = new AbortController();
    const give_up = setTimeout(() => abort.abort(), REQUEST_MS);
    try {
      return await fetch(url, Object.assign({
        credentials: "same-origin",
        cache: "no-store",
        signal: abort.signal,
      }, options));
    } finally {
      clearTimeout(give_up);
    }
  }

  function busy(yes) {
    if (yes) {
      unit.querySelectorAll("button[data-status]").forEach((b) => { b.disabled = true; });
    }
  }

  function show(state) {
    if (pending && state.status !== pending.from) {
      pending = null;
      say(said.unit_confirmed);
      shown = null; // draw the buttons as the server says, enabled again
    } else if (pending && Date.now() - pending.since > CONFIRM_MS) {
      pending = null;
      say(said.unit_unconfirmed, true);
      shown = null;
    }
    if (state.html !== shown) {
      unit.innerHTML = state.html;
      shown = state.html;
      busy(pending !== null);
    }
    if (state.incident_id && state.incident_id !== incident && incident !== null
        && navigator.vibrate) {
      navigator.vibrate([300, 150, 300]); // a new order
    }
    incident = state.incident_id || "";
    status = state.status;
    checked.textContent = state.checked;
  }

  function next(ms) {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(poll, ms);
  }

  async function poll() {
    try {
      const answer = await call("/unit/state", {
        headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
      });
      if (answer.status === 401 || answer.status === 403) {
        signedOut();
        return;
      }
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      show(await answer.json());
      connected(true);
    } catch (err) {
      connected(false);
    }
    next(document.hidden ? HIDDEN_MS : POLL_MS);
  }

  function where() {
    if (!position || Date.now() - position.at > POSITION_MS) return null;
    return { lat: position.lat, lon: position.lon, accuracy_m: position.accuracy_m };
  }

  async function press(step) {
    pending = { from: status, since: Date.now() };
    busy(true);
    say(said.unit_sending);
    const report = { unit_id: unitId, status: step };
    const here = where();
    if (here) report.position = here;
    try {
      const answer = await call("/unit/status", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(report),
      });
      connected(true);
      if (answer.status === 202) {
        say(said.unit_sent);
        next(300);
        return;
      }
      const why = await answer.json().catch(() => ({}));
      pending = null;
      shown = null;
      if (answer.status === 401) {
        signedOut();
        return;
      }
      say(said.unit_refused + " " + (why.error || answer.status), true);
    } catch (err) {
      pending = null;
      shown = null;
      connected(false);
      say(said.unit_not_sent, true);
    }
    next(0);
  }

  unit.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-status]");
    if (button && !button.disabled) press(button.dataset.status);
  });

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) next(0);
  });
  window.addEventListener("online", () => next(0));

  // Only over HTTPS (or on this machine) will a browser tell the position; it is optional.
  if (navigator.geolocation && window.isSecureContext) {
    navigator.geolocation.watchPosition(
      (p) => {
        position = {
          lat: p.coords.latitude,
          lon: p.coords.longitude,
          accuracy_m: p.coords.accuracy,
          at: Date.now(),
        };
      },
      () => { position = null; },
      { enableHighAccuracy: true, maximumAge: 30000, timeout: 30000 },
    );
  }

  poll();
})();
