// Verbatim dashboard: vanilla JS, no dependencies, works offline against the local API.
"use strict";

const KEY_STORAGE = "verbatim.apiKey";
const SVG_NS = "http://www.w3.org/2000/svg";
const state = { theme: null, polarity: "", cursor: null, start: null, end: null };
const $ = (sel) => document.querySelector(sel);
const fmtPct = (x) => (x * 100).toLocaleString("fr-FR", { maximumFractionDigits: 0 }) + " %";
const fmtNum = (x) => x.toLocaleString("fr-FR");
const SEVERITY = { low: "faible", medium: "moyenne", high: "haute", critical: "critique" };
const KIND = { volume: "pic de volume", negativity: "hausse de négativité", emerging: "sujet émergent" };
const STAGE = { "pre-purchase": "avant-achat", purchase: "achat", delivery: "livraison",
  "after-sales": "après-vente", experience: "expérience" };
const labels = {};
const POLARITY = { negative: "négatif", neutral: "neutre", positive: "positif" };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(path, method = "GET", body = undefined) {
  const headers = { Accept: "application/json" };
  const key = localStorage.getItem(KEY_STORAGE);
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401 || res.status === 403) {
    const body = await res.json().catch(() => ({}));
    setStatus("Accès refusé : " + (body.detail || res.status) + ". Renseignez une clé API.");
    $("#key-dialog").showModal();
    throw new Error("auth");
  }
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(body.detail || "HTTP " + res.status);
  }
  return res.json();
}

function setStatus(text) { $("#status").textContent = text; }

function filters() {
  const p = new URLSearchParams({ days: $("#days").value });
  if ($("#channel").value) p.set("channel", $("#channel").value);
  return p;
}

// Small inline SVG sparkline (polyline), scaled to the series' max.
function sparkline(values, width = 110, height = 26) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Tendance : " + values.join(", "));
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`);
  const line = document.createElementNS(SVG_NS, "polyline");
  line.setAttribute("points", pts.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#2e6bd9");
  line.setAttribute("stroke-width", "1.6");
  svg.append(line);
  return svg;
}

// Daily bars (volume) with negatives overlaid, plus first/last day labels.
function chart(series) {
  const width = 760, height = 180, pad = 22;
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Volume quotidien du thème");
  const max = Math.max(1, ...series.map((d) => d.volume));
  const bw = (width - pad) / series.length;
  const y = (v) => height - pad - (v / max) * (height - 2 * pad);
  series.forEach((d, i) => {
    for (const [value, color] of [[d.volume, "#2e6bd9"], [d.negatives, "#d92d20"]]) {
      const r = document.createElementNS(SVG_NS, "rect");
      r.setAttribute("x", (pad + i * bw + 1).toFixed(1));
      r.setAttribute("width", Math.max(1, bw - 2).toFixed(1));
      r.setAttribute("y", y(value).toFixed(1));
      r.setAttribute("height", (height - pad - y(value)).toFixed(1));
      r.setAttribute("fill", color);
      r.setAttribute("opacity", color === "#2e6bd9" ? "0.35" : "0.85");
      const t = document.createElementNS(SVG_NS, "title");
      t.textContent = `${d.day} : ${d.volume} verbatims, ${d.negatives} négatifs`;
      r.append(t);
      svg.append(r);
    }
  });
  const label = (x, text, anchor) => {
    const t = document.createElementNS(SVG_NS, "text");
    t.setAttribute("x", x); t.setAttribute("y", height - 6);
    t.setAttribute("font-size", "11"); t.setAttribute("fill", "#667085");
    t.setAttribute("text-anchor", anchor);
    t.textContent = text;
    svg.append(t);
  };
  if (series.length) {
    label(pad, series[0].day, "start");
    label(width, series[series.length - 1].day, "end");
  }
  const top = document.createElementNS(SVG_NS, "text");
  top.setAttribute("x", 0); top.setAttribute("y", 12);
  top.setAttribute("font-size", "11"); top.setAttribute("fill", "#667085");
  top.textContent = String(max);
  svg.append(top);
  return svg;
}

function change(row) {
  if (row.volume_change === null) return el("span", { class: "muted" }, row.volume ? "nouveau" : "—");
  const pct = Math.round(row.volume_change * 100);
  const cls = pct > 0 ? "up" : pct < 0 ? "down" : "muted";
  return el("span", { class: cls }, (pct > 0 ? "+" : "") + pct + " %");
}

function spikeBadge(spike) {
  if (!spike) return "";
  return el("span", { class: "badge " + spike.severity, title: KIND[spike.kind] || spike.kind },
    "Pic · " + (SEVERITY[spike.severity] || spike.severity));
}

async function loadThemes() {
  const data = await api("/themes?" + filters());
  $("#period").textContent = `du ${data.period.start} au ${data.period.end} · ${fmtNum(data.total_volume)} verbatims`;
  const body = $("#themes tbody");
  body.replaceChildren();
  for (const row of data.themes) {
    labels[row.id] = row.label;
    const link = el("button", { type: "button", class: "theme-link", "data-theme": row.id }, row.label);
    link.addEventListener("click", () => openTheme(row.id));
    const tr = el("tr", { "data-theme": row.id },
      el("td", {}, link),
      el("td", { class: "num" }, fmtNum(row.volume)),
      el("td", { class: "num" }, change(row)),
      el("td", { class: "num" }, fmtPct(row.negative_share)),
      el("td", { class: "num" }, (row.net_sentiment > 0 ? "+" : "") + row.net_sentiment.toFixed(2)),
      el("td", {}, sparkline(row.trend)),
      el("td", {}, spikeBadge(row.spike)),
      el("td", { class: "kw" }, row.keywords.join(", ")),
      el("td", { class: "muted" }, row.team));
    if (row.id === state.theme) tr.classList.add("selected");
    body.append(tr);
  }
  if (!data.themes.length) body.append(el("tr", {}, el("td", { colSpan: 9, class: "muted" }, "Aucune donnée.")));
}

// Text with the evidence span wrapped in <mark>; built with text nodes (never innerHTML).
function highlighted(text, ev) {
  const p = el("p", { class: "verbatim-text" });
  let start = ev && ev.start != null ? ev.start : -1;
  let end = ev && ev.end != null ? ev.end : -1;
  if (ev && ev.text && text.slice(start, end) !== ev.text) {
    start = text.indexOf(ev.text);
    end = start >= 0 ? start + ev.text.length : -1;
  }
  if (start < 0 || end <= start) { p.textContent = text; return p; }
  p.append(text.slice(0, start), el("mark", {}, text.slice(start, end)), text.slice(end));
  return p;
}

async function loadVerbatims(append) {
  const p = new URLSearchParams({ limit: "20" });
  if (state.polarity) p.set("polarity", state.polarity);
  if ($("#channel").value) p.set("channel", $("#channel").value);
  if (append && state.cursor) p.set("cursor", state.cursor);
  if (state.start) p.set("start", state.start);
  if (state.end) p.set("end", state.end);
  const data = await api(`/themes/${encodeURIComponent(state.theme)}/verbatims?` + p);
  const list = $("#verbatims");
  if (!append) list.replaceChildren();
  for (const v of data.items) {
    const when = new Date(v.created_at).toLocaleDateString("fr-FR");
    list.append(el("li", { class: "verbatim" },
      el("div", { class: "verbatim-meta" },
        el("span", { class: "pol " + v.polarity }, POLARITY[v.polarity] || v.polarity),
        `${when} · ${v.channel} · ${v.source}` + (v.rating != null ? ` · note ${v.rating}` : "")),
      highlighted(v.text, v.evidence)));
  }
  if (!append && !data.items.length) list.append(el("li", { class: "muted" }, "Aucun verbatim."));
  state.cursor = data.next_cursor;
  $("#more").hidden = !data.next_cursor;
}

async function openTheme(id) {
  state.theme = id;
  state.cursor = null;
  document.querySelectorAll("#themes tbody tr").forEach((tr) =>
    tr.classList.toggle("selected", tr.dataset.theme === id));
  const p = new URLSearchParams({ days: "30" });
  if ($("#channel").value) p.set("channel", $("#channel").value);
  if (state.start && state.end) { p.delete("days"); p.set("start", state.start); p.set("end", state.end); }
  const detail = await api(`/themes/${encodeURIComponent(id)}?` + p);
  $("#detail").hidden = false;
  $("#detail-title").textContent = detail.label;
  const s = detail.summary;
  const span = state.start && state.end ? `du ${state.start} au ${state.end}` : "sur 30 jours";
  $("#detail-meta").textContent = `Équipe ${detail.team} · étape ${STAGE[detail.stage] || detail.stage} · ` +
    `${fmtNum(s.volume)} verbatims ${span}, ${fmtPct(s.negative_share)} négatifs`;
  $("#chart").replaceChildren(chart(detail.series));
  await loadVerbatims(false);
  $("#detail").scrollIntoView({ behavior: "smooth", block: "start" });
}

// Incidents (one per theme and period): acknowledge / resolve with a note (write key).
const STATUS = { open: "ouvert", acknowledged: "pris en charge", resolved: "résolu" };

async function incidentAction(id, action) {
  const note = window.prompt(action === "resolve" ? "Note de résolution :" : "Note (facultative) :", "");
  if (note === null) return;
  try {
    await api(`/incidents/${id}/${action}`, "POST", { note });
    await loadAlerts();
  } catch (err) {
    if (err.message !== "auth") setStatus("Erreur : " + err.message);
  }
}

async function loadAlerts() {
  const data = await api("/incidents?historical=false&limit=20");
  const list = $("#alerts");
  list.replaceChildren();
  for (const a of data.items) {
    const who = a.status === "resolved" ? ` par ${a.resolved_by}` : a.acknowledged_by ? ` par ${a.acknowledged_by}` : "";
    const drivers = (a.drivers || []).map((d) => `${Math.round(d.share_of_extra * 100)} % : ${d.field} « ${d.value} »`).join(" ; ");
    const open = el("a", { href: `#theme=${encodeURIComponent(a.theme)}&start=${a.first_day}&end=${a.last_day}` }, "voir");
    const li = el("li", { "data-incident": a.id },
      el("span", { class: "badge " + a.severity }, SEVERITY[a.severity] || a.severity), " ",
      el("strong", {}, labels[a.theme] || a.theme), ` — ${a.kinds.map((k) => KIND[k] || k).join(" + ")}, du ${a.first_day} au ${a.last_day} `,
      el("span", { class: "muted incident-status" }, `· ${STATUS[a.status] || a.status}${who}`), " ", open);
    if (drivers) li.append(el("div", { class: "muted" }, drivers));
    if (a.status !== "resolved") {
      if (a.status === "open") {
        const ack = el("button", { type: "button", class: "ghost ack" }, "Prendre en charge");
        ack.addEventListener("click", () => incidentAction(a.id, "acknowledge"));
        li.append(" ", ack);
      }
      const res = el("button", { type: "button", class: "ghost resolve" }, "Résoudre");
      res.addEventListener("click", () => incidentAction(a.id, "resolve"));
      li.append(" ", res);
    }
    list.append(li);
  }
  if (!data.items.length) list.append(el("li", { class: "muted" }, "Aucun incident."));
}

// `#theme=emballage&start=2026-01-01&end=2026-01-31` (Slack links) opens that theme and period.
function readHash() {
  const h = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const day = /^\d{4}-\d{2}-\d{2}$/;
  state.theme = h.get("theme") || state.theme;
  state.start = day.test(h.get("start") || "") ? h.get("start") : null;
  state.end = day.test(h.get("end") || "") ? h.get("end") : null;
}

async function refresh() {
  setStatus("");
  try {
    await loadThemes();
    await loadAlerts();
    if (state.theme) await openTheme(state.theme);
  } catch (err) {
    if (err.message !== "auth") setStatus("Erreur : " + err.message);
  }
}

function init() {
  readHash();
  window.addEventListener("hashchange", () => { readHash(); refresh(); });
  $("#days").addEventListener("change", refresh);
  $("#channel").addEventListener("change", refresh);
  $("#more").addEventListener("click", () => loadVerbatims(true));
  document.querySelectorAll("#polarity button").forEach((b) => b.addEventListener("click", () => {
    document.querySelectorAll("#polarity button").forEach((x) => x.classList.toggle("active", x === b));
    state.polarity = b.dataset.polarity;
    state.cursor = null;
    loadVerbatims(false).catch((e) => setStatus("Erreur : " + e.message));
  }));
  $("#key-button").addEventListener("click", () => {
    $("#key-input").value = localStorage.getItem(KEY_STORAGE) || "";
    $("#key-dialog").showModal();
  });
  $("#key-dialog").addEventListener("close", () => {
    const action = $("#key-dialog").returnValue;
    if (action === "save" && $("#key-input").value.trim()) localStorage.setItem(KEY_STORAGE, $("#key-input").value.trim());
    if (action === "clear") localStorage.removeItem(KEY_STORAGE);
    if (action) refresh();
  });
  refresh();
}

document.addEventListener("DOMContentLoaded", init);
