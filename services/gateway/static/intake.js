// The call-taker's form: triage's preview as they type, and the intake sent on submit.
"use strict";
(function () {
  const form = document.getElementById("intake");
  const csrf = form.dataset.csrf;
  const text = (id, value) => { document.getElementById(id).textContent = value; };
  const strings = window.SIAGA_STRINGS;
  let timer = null;
  let asked = 0;

  function fields() {
    const data = Object.fromEntries(new FormData(form).entries());
    return data;
  }

  async function post(path, body) {
    const answer = await fetch(path, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify(body),
    });
    const json = await answer.json();
    if (!answer.ok) throw new Error(json.error || answer.status);
    return json;
  }

  async function refresh() {
    const mine = ++asked;
    const draft = fields();
    const shown = await post("/intake/preview", {
      channel: draft.channel, text: draft.text, place_hint: draft.place_hint || null,
    });
    if (mine !== asked) return;  // a newer keystroke's preview is on its way
    const priority = document.getElementById("p-priority");
    priority.textContent = shown.priority;
    priority.className = shown.priority;
    text("p-category", shown.category);
    text("p-agency", shown.agency || "—");
    const place = shown.place;
    const named = [place && place.desa, place && place.kecamatan && `Kec. ${place.kecamatan}`]
      .filter(Boolean).join(", ");
    text("p-place", place ? `${named} (${place.lat.toFixed(4)}, ${place.lon.toFixed(4)})` : strings.none);
    const list = document.getElementById("p-questions");
    list.textContent = "";
    for (const q of shown.questions) {
      const item = document.createElement("li");
      item.textContent = q;
      list.appendChild(item);
    }
  }

  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch(() => {}), 250);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = fields();
    try {
      const done = await post("/intake", {
        channel: data.channel, text: data.text, place_hint: data.place_hint || null,
        phone: data.phone || null, name: data.name || null,
      });
      text("sent", `${strings.sent} ${done.intake_id}`);
      document.getElementById("sent").dataset.intake = done.intake_id;
      form.reset();
    } catch (err) {
      text("sent", `${strings.failed}: ${err.message}`);
    }
  });
})();
