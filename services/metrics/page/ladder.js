// The ladder page: public aggregates every 10 s (/v1/kpis, /v1/queues, /v1/trends, /v1/ladder);
// a ticket's state and timeline with the read key typed in (kept in this page only).
"use strict";
const $ = (id) => document.getElementById(id);
const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%");
const dur = (s) => (s === undefined || s === null ? "–" : s < 3600 ? (s / 60).toFixed(1) + " min" : (s / 3600).toFixed(1) + " h");
const el = (tag, attrs, text) => {
  const node = document.createElementNS(tag === "svg" || attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
  for (const [k, v] of Object.entries(attrs)) if (k !== "svg") node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};
async function json(path, key) {
  const response = await fetch(path, key ? { headers: { Authorization: "Bearer " + key } } : {});
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}
function diagram(ladder, window) {
  const svg = $("diagram");
  svg.replaceChildren();
  const tiers = ladder.tiers.map((t) => t.tier);
  const y = (i) => 300 - i * 110;
  tiers.forEach((tier, i) => {
    const k = window.tiers[tier] || {};
    svg.append(el("rect", { svg: 1, class: "rung", x: 150, y: y(i), width: 260, height: 50, rx: 6 }));
    svg.append(el("text", { svg: 1, x: 160, y: y(i) + 20, "data-tier": tier }, `${tier} ${ladder.tiers[i].name}`));
    svg.append(el("text", { svg: 1, x: 160, y: y(i) + 40 }, `arrivals ${k.arrivals ?? 0}`));
    if (i + 1 < tiers.length) {
      const up = (k.escalations_to || {})[tiers[i + 1]] || {};
      const count = Object.values(up).reduce((a, b) => a + b, 0);
      svg.append(el("path", { svg: 1, class: "up", d: `M 200 ${y(i)} L 200 ${y(i + 1) + 50}` }));
      svg.append(el("text", { svg: 1, x: 20, y: y(i) - 25, class: "up-label" }, `↑ ${count} (${pct(k.escalation_ratio)})`));
      const above = window.tiers[tiers[i + 1]] || {};
      const back = (k.bounces || {});
      svg.append(el("path", { svg: 1, class: "down", d: `M 360 ${y(i + 1) + 50} L 360 ${y(i)}` }));
      svg.append(el("text", { svg: 1, x: 420, y: y(i) - 35 }, `↓ fix ${back.returned_with_fix ?? 0}`));
      svg.append(el("text", { svg: 1, x: 420, y: y(i) - 18 }, `↓ incomplete ${back.handoff_incomplete ?? 0}`));
      void above;
    }
  });
  if (ladder.jump) {
    const from = tiers.indexOf(ladder.jump.communication_owner), to = tiers.indexOf(ladder.jump.to);
    const jumps = ((window.tiers[ladder.jump.communication_owner] || {}).escalations_to || {})[ladder.jump.to] || {};
    if (from >= 0 && to >= 0) {
      svg.append(el("path", { svg: 1, class: "jump", d: `M 410 ${y(from) + 25} C 540 ${y(from)}, 540 ${y(to) + 50}, 410 ${y(to) + 25}` }));
      svg.append(el("text", { svg: 1, x: 440, y: (y(from) + y(to)) / 2 + 40 }, `jump ${jumps.jump ?? 0}`));
    }
  }
}
function cards(window, trends) {
  const box = $("cards");
  box.replaceChildren();
  for (const [tier, k] of Object.entries(window.tiers)) {
    const card = el("div", { class: "card", "data-tier": tier });
    card.append(el("h3", {}, tier));
    const dl = el("dl", {});
    const rows = [
      ["FCR", pct(k.first_contact_resolution_ratio), "fcr"],
      ["Escalation", pct(k.escalation_ratio), "escalation"],
      ["Bounce (fix)", pct(k.bounce_back_ratio.returned_with_fix), "bounce"],
      ["Resolution p50", dur(k.resolution_time_seconds["0.5"]), "ttr"],
      ["Reopen", pct(k.reopen_ratio), "reopen"],
      ["Resolutions", String(k.resolutions), "resolutions"],
    ];
    for (const [label, value, name] of rows) {
      dl.append(el("dt", {}, label));
      dl.append(el("dd", { "data-kpi": name }, value));
    }
    card.append(dl);
    const days = Object.keys(trends.series).sort();
    const daily = days.map((d) => ((trends.series[d][tier] || {}).resolution || { n: 0 }).n);
    const max = Math.max(1, ...daily);
    const points = daily.map((n, i) => `${(i * 140) / Math.max(1, daily.length - 1)},${30 - (28 * n) / max}`).join(" ");
    const spark = el("svg", { class: "trend", width: 140, height: 32 });
    spark.append(el("polyline", { svg: 1, points, fill: "none", stroke: "#1d3557" }));
    card.append(spark, el("small", {}, `resolutions per day, last ${trends.days} days`));
    box.append(card);
  }
}
function queues(q) {
  const body = $("queues").tBodies[0];
  body.replaceChildren();
  for (const row of q.queues) {
    const tr = el("tr", {});
    for (const cell of [row.tier, row.queue, String(row.backlog), dur(row.oldest_age_seconds)]) tr.append(el("td", {}, cell));
    body.append(tr);
  }
  $("duty").textContent = "On duty: " + Object.entries(q.on_duty).map(([t, a]) => `${t} ${a.join(", ") || "nobody"}`).join(" · ");
}
function breaches(window) {
  const body = $("breaches").tBodies[0];
  body.replaceChildren();
  for (const [tier, k] of Object.entries(window.tiers)) {
    const tr = el("tr", {});
    for (const cell of [tier, String(k.sla_breaches.first_response ?? 0), String(k.sla_breaches.time_in_tier ?? 0)]) tr.append(el("td", {}, cell));
    body.append(tr);
  }
}
async function refresh() {
  try {
    const [kpis, q, trends, ladder] = await Promise.all([json("/v1/kpis"), json("/v1/queues"), json("/v1/trends?days=14"), json("/v1/ladder")]);
    const window = kpis.windows[$("window").value];
    diagram(ladder, window);
    cards(window, trends);
    queues(q);
    breaches(window);
    $("updated").textContent = "updated " + kpis.computed_at;
    document.body.dataset.loaded = "true";
    if (!performance.getEntriesByName("ladder-loaded").length) performance.mark("ladder-loaded"); // bench/ladder_page.py
  } catch (error) {
    $("updated").textContent = "not updated: " + error.message;
  }
}
async function open(event) {
  event.preventDefault();
  const key = $("key").value, id = $("ticket").value.trim();
  const list = $("timeline");
  list.replaceChildren();
  try {
    const found = await json("/v1/tickets?q=" + encodeURIComponent(id), key);
    const ticket = found.tickets.includes(id) ? id : found.tickets[0];
    if (!ticket) { $("found").textContent = "no ticket starts with " + id; return; }
    const [state, timeline] = await Promise.all([json("/v1/tickets/" + ticket, key), json(`/v1/tickets/${ticket}/timeline`, key)]);
    const deadlines = state.open_deadlines.map((d) => `${d.tier} ${d.kind} ${d.due_at}`).join("; ") || "none";
    $("found").textContent = `${ticket}: ${state.status}, owner ${state.owner.tier}/${state.owner.queue}/${state.owner.agent ?? "unassigned"}` +
      (state.communication_owner ? `, updates by ${state.communication_owner}` : "") + `; open deadlines: ${deadlines}`;
    for (const e of timeline.events) {
      list.append(el("li", { "data-type": e.type }, `${e.at} ${e.type} by ${e.who ?? e.source}${e.why ? " — " + e.why : ""}`));
    }
  } catch (error) {
    $("found").textContent = "cannot open: " + error.message;
  }
}
$("search").addEventListener("submit", open);
$("window").addEventListener("change", refresh);
refresh();
setInterval(refresh, 10000);
