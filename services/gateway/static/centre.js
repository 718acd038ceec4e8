// The command centre: the regency's map (its outlines drawn here as SVG, no tiles), the
// queues and counters, an incident's detail and the actions, kept live by server-sent
// events. Everything shown is set as text, never as HTML.
"use strict";
(function () {
  const root = document.getElementById("centre");
  const csrf = root.dataset.csrf;
  const may = new Set(root.dataset.actions.split(" ").filter(Boolean));
  const lang = root.dataset.lang;
  const S = window.SIAGA_STRINGS;
  const SVG = "http://www.w3.org/2000/svg";
  const PRIORITIES = ["P1", "P2", "P3", "P4"];
  const CATEGORIES = Object.keys(S).filter((k) => k.startsWith("cat_")).map((k) => k.slice(4));
  const MOVING = new Set(["dispatched", "acknowledged", "en_route"]);
  const AT_WORK = new Set(["on_scene", "transporting", "at_hospital"]);
  const map = document.getElementById("map");
  let board = null;
  let openId = null;
  let shownDetail = null;
  let projection = null;

  // ------------------------------------------------------------ small helpers

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    return node;
  }

  const locale = lang === "id" ? "id-ID" : "en-GB";
  const clockFormat = new Intl.DateTimeFormat(locale, {
    timeZone: "Asia/Jakarta", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  const timeFormat = new Intl.DateTimeFormat(locale, {
    timeZone: "Asia/Jakarta", hour: "2-digit", minute: "2-digit",
  });
  const dayFormat = new Intl.DateTimeFormat(locale, {
    timeZone: "Asia/Jakarta", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
  const wib = (iso) => (iso ? `${timeFormat.format(new Date(iso))} WIB` : "—");
  const wibSeconds = (iso) => (iso ? clockFormat.format(new Date(iso)) : "—");
  const wibDay = (iso) => (iso ? `${dayFormat.format(new Date(iso))} WIB` : "—");
  const said = (prefix, value) => (value ? S[prefix + value] || value.replace(/_/g, " ") : "—");
  const short = (id) => String(id).slice(0, 8);

  function badge(priority) {
    return el("span", { class: `badge ${priority || "unknown"}`, text: priority || "?" });
  }

  function toast(message, bad) {
    const box = document.getElementById("toast");
    box.textContent = message;
    box.className = bad ? "toast bad" : "toast";
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.hidden = true; }, bad ? 8000 : 3000);
  }

  // ------------------------------------------------------------ the map

  function pathOf(flat) {
    let x = 0, y = 0;
    const parts = [];
    for (let i = 0; i < flat.length; i += 2) {
      x += flat[i];
      y += flat[i + 1];
      parts.push(`${i ? "L" : "M"}${projection.x(x).toFixed(1)} ${projection.y(y).toFixed(1)}`);
    }
    return parts.join("") + "Z";
  }

  async function drawMap() {
    const answer = await fetch("/centre/outlines.json");
    const doc = await answer.json();
    if (!doc.bbox) return;
    const [minx, miny, maxx, maxy] = doc.bbox;
    // Equirectangular, squeezed by the cosine of the middle latitude: true enough for
    // one regency, and nothing to download.
    const kx = Math.cos(((miny + maxy) / 2 / doc.scale) * Math.PI / 180);
    const pad = (maxx - minx) * 0.02;
    const width = (maxx - minx) * kx + 2 * pad;
    const height = maxy - miny + 2 * pad;
    projection = {
      scale: doc.scale, size: width,
      x: (q) => (q - minx) * kx + pad, y: (q) => maxy - q + pad,
    };
    map.setAttribute("viewBox", `0 0 ${width.toFixed(0)} ${height.toFixed(0)}`);
    const layers = {};
    for (const name of ["kabupaten", "desa", "kecamatan", "labels", "units", "incidents"]) {
      layers[name] = map.appendChild(svg("g", { class: `layer-${name}` }));
    }
    for (const area of doc.areas) {
      const level = area.level === "kelurahan" ? "desa" : area.level;
      const shape = svg("path", { d: area.rings.map(pathOf).join(" "), class: `area ${level}` });
      const title = svg("title");
      title.textContent = area.name;
      shape.append(title);
      layers[level].append(shape);
      if (level === "kecamatan" && area.centre) {
        const label = svg("text", {
          x: projection.x(area.centre[0]).toFixed(0), y: projection.y(area.centre[1]).toFixed(0),
          "font-size": (width / 60).toFixed(0), class: "kec-label",
        });
        label.textContent = area.name;
        layers.labels.append(label);
      }
    }
    if (board) drawPoints(board);
  }

  function at(lat, lon) {
    return [projection.x(lon * projection.scale), projection.y(lat * projection.scale)];
  }

  function drawPoints(shown) {
    if (!projection) return;
    const incidents = map.querySelector(".layer-incidents");
    const units = map.querySelector(".layer-units");
    incidents.textContent = "";
    units.textContent = "";
    const side = projection.size / 110;
    const taken = new Map();
    for (const u of shown.units) {
      if (u.lat === null || u.lon === null) continue;
      let [x, y] = at(u.lat, u.lon);
      const spot = `${Math.round(x / side)},${Math.round(y / side)}`;
      const n = taken.get(spot) || 0;  // units at one base side by side, not on top
      taken.set(spot, n + 1);
      x += (n % 4) * side * 1.2;
      y += Math.floor(n / 4) * side * 1.2;
      const square = svg("rect", {
        x: (x - side / 2).toFixed(0), y: (y - side / 2).toFixed(0),
        width: side.toFixed(0), height: side.toFixed(0),
        class: `unit ${unitClass(u.status)}`, "data-unit": u.unit_id,
      });
      const title = svg("title");
      title.textContent = `${u.unit_id} (${said("type_", u.unit_type)}): ${said("status_", u.status)}`;
      square.append(title);
      units.append(square);
    }
    const r = projection.size / 95;
    for (const i of [...shown.incidents].reverse()) {  // the most urgent drawn last, on top
      if (i.lat === null || i.lon === null) continue;
      const [x, y] = at(i.lat, i.lon);
      const group = svg("g", { class: `incident ${i.priority || "unknown"}`, "data-incident": i.incident_id });
      if (i.priority === "P1") group.append(svg("circle", { cx: x, cy: y, r: r * 1.9, class: "halo" }));
      group.append(svg("circle", { cx: x, cy: y, r: r, class: "dot" }));
      const title = svg("title");
      title.textContent = `${i.priority || "?"} ${said("cat_", i.category)} — ${i.desa || ""} ${i.kecamatan || ""}`;
      group.append(title);
      group.addEventListener("click", () => openDetail(i.incident_id));
      incidents.append(group);
    }
  }

  function unitClass(status) {
    if (MOVING.has(status)) return "busy";
    if (AT_WORK.has(status)) return "scene";
    return status || "unknown";
  }

  // ------------------------------------------------------------ the queues and counters

  function fill(id, rows, make) {
    const list = document.getElementById(id);
    if (!list) return;
    list.textContent = "";
    for (const row of rows) list.append(make(row));
    if (!rows.length) list.append(el("li", { class: "none", text: S.centre_none }));
    const count = document.getElementById(`n-${id}`);
    if (count) count.textContent = rows.length ? `(${rows.length})` : "";
  }

  function row(incidentId, ...children) {
    return el("li", { "data-incident": incidentId, onclick: () => openDetail(incidentId) }, ...children);
  }

  function reviewRow(r) {
    const tag = r.needs_confirmation ? S.centre_to_confirm : S.centre_to_review;
    const item = row(
      r.incident_id,
      el("div", { class: "line" }, badge(r.priority),
        el("b", { text: ` ${said("cat_", r.category)}` }),
        el("span", { class: "muted", text: ` · ${r.kecamatan || S.centre_no_place} · ${wib(r.received_at)}` }),
        el("span", { class: "tag", text: tag })),
      el("div", { class: "quote", text: r.text || "" }),
    );
    if (r.questions.length) {
      item.append(el("ul", { class: "questions" }, ...r.questions.slice(0, 3).map((q) => el("li", { text: q }))));
    }
    if (may.has("review")) item.append(reviewButtons(r.incident_id, r.priority, null));
    return item;
  }

  function reviewButtons(incidentId, priority, noteField) {
    const box = el("div", { class: "buttons" });
    const send = (fields) => act("review", {
      incident_id: incidentId, note: noteField ? noteField.value : "", ...fields,
    });
    box.append(el("button", {
      type: "button", class: "confirm", text: S.centre_confirm,
      onclick: (e) => { e.stopPropagation(); send({}); },
    }));
    for (const p of PRIORITIES) {
      if (p === priority) continue;
      box.append(el("button", {
        type: "button", class: `set-priority ${p}`, "data-priority": p, text: `${S.centre_make} ${p}`,
        onclick: (e) => { e.stopPropagation(); send({ priority: p }); },
      }));
    }
    return box;
  }

  function waitingRow(w) {
    return row(
      w.incident_id,
      el("div", { class: "line" }, badge(w.priority),
        el("b", { text: ` ${said("cat_", w.category)}` }),
        el("span", { class: "muted", text: ` · ${w.kecamatan || S.centre_no_place}` })),
      el("div", { class: "muted small", text: `${S.centre_escalated} ${wib(w.escalated_at)} — ${w.reason || ""}` }),
    );
  }

  function orderRow(o) {
    const item = row(
      o.incident_id,
      el("div", { class: "line" }, badge(o.priority),
        el("b", { text: ` ${o.agency}` }),
        el("span", { class: "muted", text: ` · ${said("cat_", o.category)} · ${o.kecamatan || S.centre_no_place}` }),
        o.overdue ? el("span", { class: "tag late", text: S.centre_overdue }) : null,
        o.state === "answered" ? el("span", { class: "tag", text: S.centre_answered }) : null),
      el("div", { class: "muted small", text: `${S.centre_due} ${wibDay(o.due_at)} — ${o.summary}` }),
    );
    item.dataset.workOrder = o.work_order_id;
    return item;
  }

  function activeRow(i) {
    return row(
      i.incident_id,
      el("div", { class: "line" }, badge(i.priority),
        el("b", { text: ` ${said("cat_", i.category)}` }),
        el("span", { class: "muted", text: ` · ${said("status_", i.status)} · ${i.kecamatan || S.centre_no_place} · ${wib(i.received_at)}` })),
      i.units ? el("div", { class: "muted small", text: `${S.centre_units}: ${i.units.replace(/,/g, ", ")}` }) : null,
    );
  }

  function showCounters(c) {
    const text = (id, value) => { document.getElementById(id).textContent = value; };
    const p90 = document.getElementById("c-p1-p90");
    p90.textContent = c.p1_dispatch_p90_s === null ? "—" : `${Math.round(c.p1_dispatch_p90_s)} s`;
    p90.className = c.p1_on_target === null ? "" : c.p1_on_target ? "good" : "bad";
    text("c-p1-target", `(${S.centre_target} ${c.p1_target_s} s)`);
    text("c-p1-count", `${S.centre_p1_count}: ${c.p1}${c.p1_waiting ? `, ${c.p1_waiting} ${S.centre_p1_waiting}` : ""}`);
    const share = document.getElementById("c-complaints");
    share.textContent = c.complaints_in_time_share === null ? "—" : `${Math.round(c.complaints_in_time_share * 100)}%`;
    share.className = c.complaints_in_time_share === null ? "" : c.complaints_in_time_share >= 0.9 ? "good" : "bad";
    text("c-complaints-more", `${c.complaints_in_time}/${c.complaints_decided} ${S.centre_decided}; ${c.complaints_pending} ${S.centre_pending}`);
  }

  function show(shown) {
    board = shown;
    drawPoints(shown);
    fill("review", shown.review, reviewRow);
    fill("waiting", shown.waiting, waitingRow);
    fill("orders", shown.work_orders, orderRow);
    fill("active", shown.incidents, activeRow);
    showCounters(shown.counters);
    root.dataset.version = shown.version;
  }

  // ------------------------------------------------------------ an incident's detail

  async function openDetail(incidentId) {
    if (incidentId !== openId) shownDetail = null;
    openId = incidentId;
    await refreshDetail();
  }

  function closeDetail() {
    openId = null;
    shownDetail = null;
    const panel = document.getElementById("detail");
    panel.hidden = true;
    panel.textContent = "";
  }

  async function refreshDetail() {
    if (!openId) return;
    const wanted = openId;
    const answer = await fetch(`/centre/incidents/${encodeURIComponent(wanted)}`);
    if (wanted !== openId) return;  // another incident was opened meanwhile
    if (!answer.ok) {
      toast(`${S.centre_failed}: ${(await answer.json()).error || answer.status}`, true);
      return;
    }
    const text = await answer.text();
    const panel = document.getElementById("detail");
    if (text === shownDetail && !panel.hidden) return;  // nothing new: leave it as it is
    shownDetail = text;
    const detail = JSON.parse(text);
    // Keep what the person is typing (and where) across a live refresh.
    const typed = {};
    for (const field of panel.querySelectorAll("[data-keep]")) typed[field.dataset.keep] = field.value;
    const focused = panel.contains(document.activeElement) ? document.activeElement : null;
    const caret = focused && focused.dataset.keep && "selectionStart" in focused
      ? [focused.dataset.keep, focused.selectionStart, focused.selectionEnd] : null;
    panel.textContent = "";
    panel.append(...detailView(detail));
    for (const field of panel.querySelectorAll("[data-keep]")) {
      if (typed[field.dataset.keep] !== undefined) field.value = typed[field.dataset.keep];
      if (caret && field.dataset.keep === caret[0]) {
        field.focus();
        if (caret[1] !== null) field.setSelectionRange(caret[1], caret[2]);
      }
    }
    panel.dataset.incident = detail.incident.incident_id;
    panel.hidden = false;
  }

  function part(title, ...children) {
    return el("section", { class: "part" }, el("h3", { text: title }), ...children);
  }

  function detailView(d) {
    const i = d.incident;
    const where = [i.desa, i.kecamatan].filter(Boolean).join(", ") || S.centre_no_place;
    return [
      el("button", { type: "button", class: "close", "aria-label": S.centre_close, text: "×", onclick: closeDetail }),
      el("h2", {}, badge(i.priority), el("span", { text: ` ${said("cat_", i.category)} — ${said("status_", i.status)}` })),
      el("p", { class: "muted", text: `${i.agency || "—"} · ${where} · ${S.centre_received} ${wibDay(i.received_at)} · #${short(i.incident_id)}` }),
      el("p", { class: "quote", text: i.text || "" }),
      i.explanation ? el("p", { class: "muted small", text: i.explanation }) : null,
      ...reviewPart(i),
      ...unitsPart(i),
      ...incidentTools(i),
      ...(d.work_order ? workOrderPart(d.work_order) : []),
      ...callsPart(d.calls),
      part(S.centre_timeline, el("ol", { class: "timeline" },
        ...i.timeline.map((t) => el("li", {}, el("time", { text: wibSeconds(t.at) }), el("span", { text: ` ${t.summary}` }))))),
    ].filter(Boolean);
  }

  function reviewPart(i) {
    const parts = [];
    if (i.review) {
      const note = i.review.note ? ` — ${i.review.note}` : "";
      parts.push(el("p", { class: "small", text: `${S.centre_reviewed}: ${i.review.decision} ${S.centre_by} ${i.review.by}${note}` }));
    }
    if (!(i.needs_review || i.needs_confirmation)) return parts;
    const box = part(i.needs_confirmation ? S.centre_to_confirm : S.centre_to_review);
    if (i.questions.length) box.append(el("ul", { class: "questions" }, ...i.questions.map((q) => el("li", { text: q }))));
    if (may.has("review")) {
      const note = el("input", { name: "note", "data-keep": "note", placeholder: S.centre_note, "aria-label": S.centre_note });
      const category = el("select", { name: "category", "data-keep": "category", "aria-label": S.category });
      for (const c of CATEGORIES) category.append(el("option", { value: c, text: said("cat_", c), selected: c === i.category }));
      box.append(note, reviewButtons(i.incident_id, i.priority, note), el("div", { class: "buttons" }, category,
        el("button", { type: "button", text: S.centre_change_category,
          onclick: () => act("review", { incident_id: i.incident_id, category: category.value, note: note.value }) })));
    }
    parts.push(box);
    return parts;
  }

  function reason() {
    const field = document.getElementById("d-reason");
    return (field && field.value.trim()) || S.centre_default_reason;
  }

  function sure(then) {
    if (window.confirm(S.centre_sure)) then();
  }

  function freeUnits(type) {
    return (board ? board.units : []).filter((u) => u.status === "available" && u.unit_type === type);
  }

  function eta(u) {
    if (!MOVING.has(u.status) || u.eta_seconds === null || !u.dispatched_at) return "—";
    const arrives = new Date(Date.parse(u.dispatched_at) + u.eta_seconds * 1000).toISOString();
    return `${Math.max(1, Math.floor(u.eta_seconds / 60))} ${S.centre_minutes} (${wib(arrives)})`;
  }

  function unitTools(i, u) {
    const tools = el("td", { class: "tools" });
    if (!u.status || ["cancelled", "available", "returning", "out_of_service"].includes(u.status)) return tools;
    if (may.has("cancel-dispatch")) {
      tools.append(el("button", { type: "button", class: "cancel-dispatch", text: S.centre_cancel_dispatch,
        onclick: () => sure(() => act("cancel-dispatch", { incident_id: i.incident_id, unit_id: u.unit_id, reason: reason() })) }));
    }
    if (may.has("reassign")) {
      const to = el("select", { "aria-label": S.centre_reassign }, el("option", { value: "", text: S.centre_next_best }));
      for (const other of freeUnits(u.unit_type)) to.append(el("option", { value: other.unit_id, text: other.unit_id }));
      tools.append(to, el("button", { type: "button", class: "reassign", text: S.centre_reassign,
        onclick: () => act("reassign", { incident_id: i.incident_id, unit_id: u.unit_id, to_unit_id: to.value || null, reason: reason() }) }));
    }
    return tools;
  }

  function unitsPart(i) {
    if (!i.units.length) return [];
    const table = el("table", { class: "units" },
      el("tr", {}, ...[S.centre_units, S.centre_status, S.centre_eta, ""].map((h) => el("th", { text: h }))));
    for (const u of i.units) {
      table.append(el("tr", { "data-unit": u.unit_id },
        el("td", { text: `${u.unit_id} (${said("type_", u.unit_type)})` }),
        el("td", { class: `st ${unitClass(u.status)}`, text: said("status_", u.status) }),
        el("td", { class: "eta", text: eta(u) }),
        unitTools(i, u)));
    }
    return [part(S.centre_units, table)];
  }

  function incidentTools(i) {
    const ended = ["closed", "cancelled", "merged"].includes(i.status);
    const cancel = may.has("cancel-incident") && !ended;
    const close = may.has("close-incident") && i.status === "resolved";
    if (!cancel && !close && !may.has("cancel-dispatch")) return [];
    const field = el("input", { id: "d-reason", "data-keep": "reason", value: S.centre_default_reason, "aria-label": S.centre_reason });
    return [part(S.centre_reason, field, el("div", { class: "buttons" },
      cancel ? el("button", { type: "button", class: "danger", text: S.centre_cancel_incident,
        onclick: () => sure(() => act("cancel-incident", { incident_id: i.incident_id, reason: reason() })) }) : null,
      close ? el("button", { type: "button", text: S.centre_close_incident,
        onclick: () => act("close-incident", { incident_id: i.incident_id, note: reason() }) }) : null))];
  }

  function workOrderPart(o) {
    const box = part(`${S.centre_work_order}: ${o.agency}`,
      el("p", {}, el("span", { text: `${S.centre_due} ${wibDay(o.due_at)} · ${said("status_", o.state)}` }),
        o.overdue ? el("span", { class: "tag late", text: S.centre_overdue }) : null),
      o.response ? el("p", { class: "small", text: `${S.centre_answered}: ${o.response}` }) : null);
    const form = (name, label, action, button) => {
      const text = el("textarea", { name, "data-keep": name, rows: 2, "aria-label": label, placeholder: label });
      box.append(text, el("div", { class: "buttons" }, el("button", { type: "button", class: action, text: button,
        onclick: () => text.value.trim() && act(action, { incident_id: o.incident_id, [name]: text.value.trim() }) })));
    };
    if (o.state === "open" && may.has("answer-work-order")) form("response", S.centre_response, "answer-work-order", S.centre_answer);
    if (o.state !== "closed" && may.has("close-work-order")) form("resolution", S.centre_resolution, "close-work-order", S.centre_close_work_order);
    return [box];
  }

  function callsPart(calls) {
    if (!calls.length) return [];
    return [part(S.centre_calls, el("ol", { class: "calls" }, ...calls.map((c) => el("li", {},
      el("div", {}, el("span", { text: `${wibDay(c.received_at)} · ${c.channel || "—"} · ` }),
        el("span", { class: "phone", text: c.caller_phone || "—" }),
        c.operator_id ? el("span", { class: "muted", text: ` · ${S.centre_operator} ${c.operator_id}` }) : null,
        c.repeat_caller ? el("span", { class: "tag", text: S.centre_repeat_caller }) : null,
        c.prank_flagged ? el("span", { class: "tag late", text: S.centre_prank_flagged }) : null),
      el("div", { class: "quote small", text: c.text || "" })))))];
  }

  // ------------------------------------------------------------ actions

  async function act(action, body) {
    try {
      const answer = await fetch(`/centre/actions/${action}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      });
      const json = await answer.json();
      if (!answer.ok) throw new Error(json.error || answer.status);
      toast(S.centre_sent);
      return true;
    } catch (err) {
      toast(`${S.centre_failed}: ${err.message}`, true);
      return false;
    }
  }

  // ------------------------------------------------------------ live

  let loading = false;
  let again = false;

  async function refresh() {
    if (loading) { again = true; return; }
    loading = true;
    try {
      const answer = await fetch("/centre/board");
      if (answer.status === 401) { location.href = "/login?next=/"; return; }
      if (answer.ok) show(await answer.json());
      await refreshDetail();
    } catch (err) {
      // The stream's state says offline; the next change or tick tries again.
    } finally {
      loading = false;
      if (again) { again = false; refresh(); }
    }
  }

  function setLink(online) {
    const link = document.getElementById("link");
    link.textContent = online ? S.centre_live : S.centre_offline;
    link.className = `link ${online ? "online" : "offline"}`;
    document.body.classList.toggle("is-offline", !online);
  }

  function connect() {
    const source = new EventSource("/centre/events");
    source.addEventListener("open", () => setLink(true));
    source.addEventListener("changed", () => { setLink(true); refresh(); });
    source.addEventListener("error", () => {
      setLink(false);
      // A drop is retried by the browser itself; a refusal (signed out) closes the stream.
      if (source.readyState === EventSource.CLOSED) setTimeout(reconnect, 2000);
    });
  }

  async function reconnect() {
    try {
      const who = await fetch("/whoami");
      if (who.status === 401) { location.href = "/login?next=/"; return; }
    } catch (err) {
      // Still unreachable: try the stream again anyway, it says when it is back.
    }
    connect();
  }

  function tick() {
    document.getElementById("clock").textContent = `${clockFormat.format(new Date())} WIB`;
  }

  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeDetail(); });
  tick();
  setInterval(tick, 1000);
  setInterval(refresh, 30000);  // what time alone changes: overdue flags, the day's counters
  drawMap().catch(() => {});
  refresh();
  connect();
})();
