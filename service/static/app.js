// Verbatim dashboard: vanilla JS, no dependencies, works offline against the local API.
// Every view has a deep link: the URL hash holds the view and its filters
// (#view=overview, #theme=livraison&start=2026-03-01&end=2026-03-28&channel=review, ...).
"use strict";

const KEY_STORAGE = "verbatim.apiKey";
const SVG_NS = "http://www.w3.org/2000/svg";
const VIEWS = ["overview", "themes", "theme", "journey", "topics", "alerts"];
const STAGES = ["pre-purchase", "purchase", "delivery", "after-sales"];
const state = { view: "overview", theme: null, polarity: "", cursor: null, themes: [], taxonomy: null, resolutions: {}, generation: 0,
  driversGeneration: 0 };
const $ = (sel) => document.querySelector(sel);
const NF = new Intl.NumberFormat("fr-FR");
const NF1 = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 1 });
const fmtNum = (x) => (x == null ? "—" : NF.format(x));
const fmtDec = (x) => (x == null ? "—" : NF1.format(x));
// A count and its noun, singular up to 1 as French has it: "1 réponse", "0 mention négative".
const count = (n, one, many) => `${fmtNum(n)} ${Math.abs(n) < 2 ? one : many}`;
// A share as a whole percentage, a half to even as Python's `round` / `:.0%` (reports, Slack,
// digest): 1 of 8 is 12 % there, and Math.round's 13 % here made the digest's -38 pts -37 here.
const halfEven = (v) => { const r = Math.round(v); return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r; };
const roundPct = (x) => halfEven(x * 100);
// A narrow no-break space before % (French typography, as the Slack messages): a plain one let
// "%" wrap onto the next line ("observé 86\n%, attendu 51 %").
const PCT = "\u202f%";
const fmtPct = (x) => (x == null ? "—" : NF.format(roundPct(x)) + PCT);
// A change of share in points as the difference of the whole percentages fmtPct shows
// ("92 % … 28 %": +64 pts, not the +63 of the unrounded shares).
const sharePoints = (share, previous) => roundPct(share) - roundPct(previous);
// A change's colour from the change as shown: « 0 pts » was red (or green) from the
// unrounded shares (51,4 % after 50,6 %), a rise or a fall the figure beside it did not show.
const trend = (shown) => (shown > 0 ? "up" : shown < 0 ? "down" : "");
// The previous share from the API's share and change (both to 4 decimals), at that precision:
// 0.3333 - 0.0583 is 0.27499999999999997 in floating point, 27 % where 27.5 % rounds to 28 %.
const previousShare = (share, change) => Math.round((share - change) * 1e4) / 1e4;
// A share from the counts it is made of, not the API's 4-decimal share, which rounds twice:
// 344 negatives of 668 (51.497 %) is 0.515 there, "52 %" beside the report's 51 %. None of 0.
const shareOf = (part, whole) => (whole ? part / whole : null);
// Rounded once, by Intl, on the number as written, a half away from zero (the API's 0.35 is
// +0,4 as in `verbatim report`): toFixed first rounded its binary value, 0.34999…, to +0,3.
const fmtSigned = (x, digits = 0) => {
  if (x == null) return "—";
  const text = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: digits }).format(Math.abs(x));
  return (/[1-9]/.test(text) ? (x > 0 ? "+" : "−") : "") + text;
};
// A change of volume in whole percent from the counts, a half to even as `verbatim report` and
// the digest: 8 mentions to 9 is +12 % there, and Math.round's +13 % here. None from 0.
const volumeChange = (volume, previous) => (previous ? (volume - previous) / previous : null);
const fmtChange = (x) => (x == null ? "—" : fmtSigned(roundPct(x)) + PCT);
// ISO day "2026-12-02" -> "02/12/2026" (no Date(): no time-zone shift).
const fmtDay = (iso) => (iso ? iso.slice(0, 10).split("-").reverse().join("/") : "—");
// UTC day and time, as the periods are UTC days: the browser's zone put a verbatim of
// 04/12 23:30 UTC on 05/12 in Paris, outside the period "du 04/12 au 04/12" it was listed for.
const fmtDateTime = (iso) => (iso ? new Date(iso).toLocaleString("fr-FR", { timeZone: "UTC",
  day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit" }) + " UTC" : "—");
const SEVERITY = { low: "faible", medium: "moyenne", high: "haute", critical: "critique" };
const KIND = { volume: "pic de volume", negativity: "hausse de négativité", emerging: "sujet émergent" };
const STAGE = { "pre-purchase": "Avant-achat", purchase: "Achat", delivery: "Livraison",
  "after-sales": "Après-vente", experience: "Expérience produit" };
const CHANNEL = { review: "avis", social: "réseaux sociaux", complaint: "réclamation", survey: "enquête" };
const POLARITY = { negative: "négatif", neutral: "neutre", positive: "positif" };
// The languages the detector names, as jobs/report.py says them: "non comptés : en 12" read
// as "in 12".
const LANGUAGE = { en: "anglais", es: "espagnol", de: "allemand", it: "italien", pt: "portugais",
  nl: "néerlandais", ar: "arabe", ru: "russe", uk: "ukrainien", el: "grec", he: "hébreu",
  ja: "japonais", zh: "chinois", ko: "coréen", th: "thaï", hi: "hindi", und: "indéterminée" };
const otherLanguages = (counts) => counts.map(([l, v]) => `${fmtNum(v)} en ${LANGUAGE[l] || l}`).join(", ");
const SCORE = { nps: "NPS", csat: "CSAT", ces: "CES", rating: "Note" };
// NPS and CSAT (in points) whole, a half to even as the digest's « NPS +12 · CSAT 4 % »: an NPS
// of 12.5 read +13 here, a CSAT of 3.5 % 3 % (3.5 / 100 * 100 is 3.4999…).
const fmtScore = (score, v) => (v == null ? "—" : score === "nps" ? fmtSigned(halfEven(v)) : NF.format(halfEven(v)) + PCT);
const labels = {};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) {
    if (c == null || c === "") continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// --- API ------------------------------------------------------------------------------------

class ApiError extends Error {
  // `field`: the parameter the server refused ("source"), when it names one.
  constructor(status, message, field = null) { super(message); this.status = status; this.field = field; }
}
const MESSAGES = {
  401: "Clé API manquante ou invalide : renseignez une clé (bouton « Clé API »).",
  403: "Cette clé API n'a pas les droits nécessaires (une clé « write » est requise pour modifier).",
  404: "Élément introuvable.",
  413: "Envoi trop volumineux.",
  422: "Paramètres refusés par le serveur.",
};
// The server's reasons are English: the usual ones said in French.
const DETAILS = [
  [/^end must not be before start/, "la date de fin est avant la date de début"],
  [/^a period spans at most (\d+) days/, "une période couvre au plus $1 jours"],
  [/^unknown theme/, "thème inconnu"],
  // The known ones said too: « source inconnue » alone left the analyst guessing the spelling.
  [/^unknown source '(.*)'; known: none yet$/, "source inconnue : « $1 » ; aucune source encore"],
  [/^unknown source '(.*)'; known: (.*)$/, "source inconnue : « $1 » ; sources connues : $2"],
  [/has no 'write' scope/, "clé en lecture seule"],
  // A « Voir plus » cursor of the server before an upgrade (the page left open across it).
  [/^invalid cursor/, "suite de la liste périmée : rechargez la page"],
  [/was (resolved|acknowledged) by/, "déjà traité par un autre analyste"],
];
const UNREACHABLE = "Serveur injoignable : vérifiez que « verbatim serve » tourne.";
const frMessage = (status) => MESSAGES[status] || `Le serveur a répondu par une erreur (code ${status}).`;

function keyHeaders(extra = {}) {
  const headers = { Accept: "application/json", ...extra };
  const key = localStorage.getItem(KEY_STORAGE);
  if (key) headers["X-API-Key"] = key;
  return headers;
}

// The server may answer a view a few seconds behind the scheduled jobs' writes while it
// rebuilds it (stale-while-revalidate); for a while after one of our own writes we ask for
// current data, so a correction or a taxonomy edit shows at once on every API worker.
const READ_YOUR_WRITES_MS = 60000;
let lastWriteAt = -Infinity;

async function api(path, options = {}) {
  let res;
  const extra = { ...(options.headers || {}) };
  if (!options.method && Date.now() - lastWriteAt < READ_YOUR_WRITES_MS) extra["Cache-Control"] = "no-cache";
  try {
    // cache "no-cache": the browser always revalidates (ETag -> cheap 304).
    res = await fetch(path, { cache: "no-cache", ...options, headers: keyHeaders(extra) });
    if (options.method) lastWriteAt = Date.now();
  } catch (e) {
    throw new ApiError(0, UNREACHABLE);
  }
  if (res.status === 401 && !options.method) {
    setStatus(frMessage(401));
    $("#key-dialog").showModal();
    throw new ApiError(401, "auth");
  }
  if (!res.ok) {
    const reply = await serverReply(res);
    throw new ApiError(res.status, frMessage(res.status) + frDetail(reply.detail), reply.field);
  }
  return res.json();
}

// The server's reason and the parameter it names, when it answered JSON.
async function serverReply(res) {
  try {
    const body = await res.json();
    return { detail: typeof body.detail === "string" ? body.detail : "", field: body.field ?? null };
  } catch (e) {
    return { detail: "", field: null };  // not JSON
  }
}

// The server's own reason ("end must not be before start", "incident 3 was resolved by …"):
// the generic French message alone left the analyst guessing what to change.
function frDetail(detail) {
  if (!detail) return "";
  for (const [re, french] of DETAILS) {
    const found = detail.match(re);
    if (found) return ` (${french.replace(/\$(\d)/g, (_, n) => found[n] ?? "").replace(/ in all\)$/, " en tout)")})`;
  }
  return ` (${detail})`;
}

// Authenticated CSV download (a plain link could not send the key header).
async function download(path, filename) {
  let blob;
  try {
    const res = await fetch(path, { headers: keyHeaders({ Accept: "text/csv" }) });
    if (!res.ok) { setStatus("Export impossible : " + frMessage(res.status) + frDetail((await serverReply(res)).detail)); return; }
    blob = await res.blob();
  } catch (e) {
    // The server unreachable (or the answer cut): said, not an uncaught rejection and nothing.
    setStatus("Export impossible : " + UNREACHABLE);
    return;
  }
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function setStatus(text) { $("#status").textContent = text; }

// What the key may do (GET /auth/me, once per key): a read key, or none where reads are open,
// saw « Corriger », « Prendre en charge »… and was refused only once the form was sent.
async function loadScope() {
  if (state.me !== undefined) return;
  try {
    state.me = await api("/auth/me");
  } catch (e) {
    if (e.message === "auth") throw e;
    state.me = null;  // unknown: the actions stay, the server decides as before
  }
}

// A write action's button, unavailable with the reason unless the key may write. Not
// `disabled`: a disabled button takes no focus, so its reason (a tooltip) was out of reach of
// the keyboard and of screen readers. aria-disabled keeps it in the tab order, the reason is
// its description (shown on focus too) and pressing it says the reason instead of acting.
function writeAction(button) {
  if (state.me && state.me.scope !== "write") {
    const reason = state.me.name == null
      ? "Lecture sans clé API : renseignez une clé « write » (bouton « Clé API ») pour modifier."
      : `Clé API « ${state.me.name} » en lecture seule : une clé « write » est requise pour modifier.`;
    $("#readonly-reason").textContent = reason;
    button.setAttribute("aria-disabled", "true");
    button.setAttribute("aria-describedby", "readonly-reason");
    button.title = reason;
    // Registered before the action's own listener (added by the caller): that one never runs.
    button.addEventListener("click", (e) => { e.stopImmediatePropagation(); setStatus(reason); });
  }
  return button;
}

// --- deep links -----------------------------------------------------------------------------

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  state.theme = p.get("theme");
  const view = p.get("view");
  // « view=theme » without its theme (a link cut short): the themes list, not « le thème
  // « null » n'existe pas ».
  const shown = state.theme ? "theme" : view === "theme" ? "themes" : VIEWS.includes(view) ? view : "overview";
  if (shown !== state.view) state.incidentsAll = false;  // the overview's list folds again
  state.view = shown;
  // The link's dates as the date inputs take them: one they refuse (2026-02-30, 2026-2-3)
  // became "" and the page showed the last 7 days under « Dates choisies… », unsaid.
  const start = p.get("start") || "", end = p.get("end") || "";
  $("#start").value = start;
  $("#end").value = end;
  const refused = [[start, $("#start")], [end, $("#end")]].filter(([v, input]) => v && input.value !== v);
  state.linkProblem = refused.length
    ? `Date invalide dans le lien : ${refused.map(([v]) => `« ${v.slice(0, 40)} »`).join(", ")} (attendu AAAA-MM-JJ)`
    : !start !== !end ? "Période incomplète dans le lien : il faut une date de début (start) et de fin (end)" : "";
  if (start && end && !state.linkProblem) {
    $("#days").value = "custom";
  } else {
    // No period in the link: the default one, not whatever the select last held (Back after
    // "90 derniers jours" kept 90 days under a URL that says 7).
    const days = p.get("days");
    $("#days").value = days && [...$("#days").options].some((o) => o.value === days) ? days : "7";
    if (state.linkProblem) state.linkProblem += ` ; période affichée : ${$("#days").selectedOptions[0].textContent}.`;
  }
  $("#channel").value = p.get("channel") || "";
  ensureOption($("#source"), p.get("source"));
  $("#source").value = p.get("source") || "";
  // One the API refuses (a link cut or mistyped) as the selects take an unknown channel or
  // language: ignored; it hid the whole theme page under an English 422 reason.
  const polarity = p.get("polarity") || "";
  state.polarity = Object.hasOwn(POLARITY, polarity) ? polarity : "";
  $("#language").value = p.get("language") || "";
  $("#custom-range").hidden = $("#days").value !== "custom";
}

function ensureOption(select, value) {
  if (value && ![...select.options].some((o) => o.value === value)) select.append(el("option", { value }, value));
}

function hashFor(view, extra = {}) {
  const p = new URLSearchParams();
  if (extra.theme) p.set("theme", extra.theme); else p.set("view", view);
  if ($("#days").value === "custom" && $("#start").value && $("#end").value) {
    p.set("start", $("#start").value); p.set("end", $("#end").value);
  } else if ($("#days").value !== "custom" && $("#days").value !== "7") p.set("days", $("#days").value);
  if ($("#channel").value) p.set("channel", $("#channel").value);
  if ($("#source").value) p.set("source", $("#source").value);
  if (extra.theme && state.polarity) p.set("polarity", state.polarity);
  if (extra.theme && $("#language").value) p.set("language", $("#language").value);
  return "#" + p.toString();
}

function go(view, extra = {}) {
  const hash = hashFor(view, extra);
  if (location.hash === hash) render(); else location.hash = hash;
}

// Period + channel + source as API parameters.
function filters(defaultDays = null) {
  const p = new URLSearchParams();
  if ($("#days").value === "custom" && $("#start").value && $("#end").value) {
    p.set("start", $("#start").value); p.set("end", $("#end").value);
  } else {
    p.set("days", defaultDays && $("#days").value === "7" ? defaultDays : ($("#days").value === "custom" ? "7" : $("#days").value));
  }
  if ($("#channel").value) p.set("channel", $("#channel").value);
  if ($("#source").value) p.set("source", $("#source").value);
  return p;
}

const periodText = (period) => `du ${fmtDay(period.start)} au ${fmtDay(period.end)}`;

// --- small charts (inline SVG) --------------------------------------------------------------

function sparkline(values, width = 110, height = 26) {
  const s = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": "Tendance des mentions : " + values.map(fmtNum).join(", ") });
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`);
  s.append(svg("polyline", { points: pts.join(" "), fill: "none", stroke: "#2e6bd9", "stroke-width": "1.6" }));
  return s;
}

// Daily bars (mentions, negatives overlaid), alert periods shaded, French day labels.
function chart(series, incidents = []) {
  const width = 760, height = 190, pad = 24;
  const s = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Mentions quotidiennes du ${fmtDay(series[0]?.day)} au ${fmtDay(series[series.length - 1]?.day)}` });
  const max = Math.max(1, ...series.map((d) => d.volume));
  const bw = (width - pad) / Math.max(1, series.length);
  const y = (v) => height - pad - (v / max) * (height - 2 * pad);
  for (const a of incidents) {
    const from = series.findIndex((d) => d.day >= a.first_day);
    const to = series.length - 1 - [...series].reverse().findIndex((d) => d.day <= a.last_day);
    if (from < 0 || to < from || to >= series.length) continue;
    const band = svg("rect", { x: (pad + from * bw).toFixed(1), y: 0, width: ((to - from + 1) * bw).toFixed(1),
      height: height - pad, fill: "#fde68a", opacity: "0.55", class: "incident" });
    const t = svg("title");
    t.textContent = `Alerte ${SEVERITY[a.severity] || a.severity} (${KIND[a.kind] || a.kind}) du ${fmtDay(a.first_day)} au ${fmtDay(a.last_day)}`;
    band.append(t);
    s.append(band);
  }
  series.forEach((d, i) => {
    for (const [value, color, op] of [[d.volume, "#2e6bd9", "0.35"], [d.negatives, "#c4320a", "0.9"]]) {
      const r = svg("rect", { x: (pad + i * bw + 1).toFixed(1), width: Math.max(1, bw - 2).toFixed(1),
        y: y(value).toFixed(1), height: (height - pad - y(value)).toFixed(1), fill: color, opacity: op });
      const t = svg("title");
      t.textContent = `${fmtDay(d.day)} : ${count(d.volume, "mention", "mentions")}, ${count(d.negatives, "négative", "négatives")}`;
      r.append(t);
      s.append(r);
    }
  });
  const text = (x, yy, content, anchor = "start") => {
    const t = svg("text", { x, y: yy, "font-size": "11", fill: "#475467", "text-anchor": anchor });
    t.textContent = content;
    s.append(t);
  };
  if (series.length) {
    text(pad, height - 6, fmtDay(series[0].day));
    text(width, height - 6, fmtDay(series[series.length - 1].day), "end");
  }
  text(0, 12, fmtNum(max));
  return s;
}

// Forest plot of key-driver effects with their 95 % interval.
const DRIVER_NAMES_ROOM = 188;
function driverPlot(drivers, unit) {
  const width = 860, row = 26, left = DRIVER_NAMES_ROOM + 12, right = 230;
  const height = drivers.length * row + 30;
  const s = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "Effet de chaque thème sur le score, avec intervalle de confiance à 95 %" });
  const lo = Math.min(0, ...drivers.map((d) => d.ci_low));
  const hi = Math.max(0, ...drivers.map((d) => d.ci_high));
  const span = hi - lo || 1;
  const x = (v) => left + ((v - lo) / span) * (width - left - right);
  s.append(svg("line", { x1: x(0), x2: x(0), y1: 4, y2: height - 22, stroke: "#98a2b3" }));
  drivers.forEach((d, i) => {
    const cy = 16 + i * row;
    const color = d.ci_high < 0 ? "#c4320a" : d.ci_low > 0 ? "#067647" : "#475467";
    const name = svg("text", { x: 0, y: cy + 4, "font-size": "12", fill: "#1d2330", class: "driver-name",
      "data-label": d.label, "data-mentions": fmtNum(d.mentions) });
    name.textContent = `${d.label} (${fmtNum(d.mentions)})`;
    s.append(name);
    s.append(svg("line", { x1: x(d.ci_low), x2: x(d.ci_high), y1: cy, y2: cy, stroke: color, "stroke-width": "2" }));
    const dot = svg("circle", { cx: x(d.effect), cy, r: 5, fill: color, class: "effect" });
    const t = svg("title");
    t.textContent = `${d.label} : ${fmtSigned(d.effect, 1)} ${unit} [${fmtSigned(d.ci_low, 1)} ; ${fmtSigned(d.ci_high, 1)}]`;
    dot.append(t);
    s.append(dot);
    const val = svg("text", { x: width, y: cy + 4, "font-size": "12", fill: color, "text-anchor": "end" });
    val.textContent = `${fmtSigned(d.effect, 1)} [${fmtSigned(d.ci_low, 1)} ; ${fmtSigned(d.ci_high, 1)}]`;
    s.append(val);
  });
  const axis = svg("text", { x: x(0), y: height - 6, "font-size": "11", fill: "#475467", "text-anchor": "middle" });
  axis.textContent = `0 (effet en ${unit})`;
  s.append(axis);
  return s;
}

// A theme's name longer than the plot's left margin ran over its interval's line
// (« Choix et présentation des plats (64) » crossed its own effect): cut to fit with « … »,
// whole in its tooltip. Measured once drawn (SVG text does not wrap), in the plot's units.
function fitDriverNames(plot, room = DRIVER_NAMES_ROOM) {
  for (const name of plot.querySelectorAll("text.driver-name")) {
    const { label, mentions } = name.dataset;
    const width = name.getComputedTextLength();
    if (width <= room) continue;
    let n = Math.min(label.length, Math.ceil(label.length * room / width));
    do name.textContent = `${label.slice(0, --n).trimEnd()}… (${mentions})`;
    while (n > 1 && name.getComputedTextLength() > room);
    const title = svg("title");
    title.textContent = `${label} (${mentions})`;
    name.append(title);
  }
}

function kpi(title, value, delta, deltaClass = "") {
  return el("div", { class: "kpi" }, el("div", { class: "kpi-title" }, title),
    el("div", { class: "kpi-value" }, value), el("div", { class: "kpi-delta " + deltaClass }, delta));
}

// --- views ----------------------------------------------------------------------------------

function change(row) {
  if (row.volume_change === null) return el("span", { class: "muted" }, row.volume ? "nouveau" : "—");
  const pct = roundPct(volumeChange(row.volume, row.previous_volume));
  const cls = pct > 0 ? "up" : pct < 0 ? "down" : "muted";
  return el("span", { class: cls }, fmtSigned(pct) + PCT);
}

// The kind (volume, negativity) was only the badge's title, which neither the keyboard nor
// a screen reader reaches: said in hidden text too.
function spikeBadge(spike) {
  if (!spike) return "";
  const kind = KIND[spike.kind] || spike.kind;
  return el("span", {}, el("span", { class: "badge " + spike.severity, title: kind },
    "Pic · " + (SEVERITY[spike.severity] || spike.severity)), el("span", { class: "sr" }, ` (${kind})`));
}

function themeLink(id, label) {
  return el("a", { href: hashFor("theme", { theme: id }), class: "theme-link", "data-theme": id }, label || labels[id] || id);
}

// An emerging topic's alert or incident ("topic:12") has no theme page: named as the digest
// names it and linked to the topics view; it read « topic:12 » and its link opened « le thème
// « topic:12 » n'existe pas ».
const TOPIC_PREFIX = "topic:";
const topicLabels = {};
// /topics was asked again at every render of the overview and the alerts (and each « older
// alerts » page): asked once per page load, again only for a topic discovered since (an id
// past the newest one known) or after a failure; the topics view's pages refresh the labels.
let topicsKnown = null;  // the newest topic id /topics listed, once asked

function rememberTopics(items) {
  for (const t of items) topicLabels[TOPIC_PREFIX + t.id] = t.label;
}

async function loadTopicLabels(items) {
  const ids = items.filter((x) => x.theme.startsWith(TOPIC_PREFIX))
    .map((x) => Number(x.theme.slice(TOPIC_PREFIX.length)));
  if (!ids.length || (topicsKnown !== null && Math.max(...ids) <= topicsKnown)) return;
  try {
    const data = await api("/topics?limit=200&trend_days=0");
    rememberTopics(data.items);
    topicsKnown = Math.max(topicsKnown ?? 0, ...ids, ...data.items.map((t) => t.id));
  } catch (e) { /* the id then, not the alerts unlisted; asked again next time */ }
}

// A retired theme is left out of /themes: its alerts read as the bare id (« emballage »),
// unlinked, while its history page opens under its label. Named from the taxonomy (a retired
// theme stays in it), or, for one a later version removed, from its history page's answer.
async function loadSubjectLabels(items) {
  await loadTopicLabels(items);
  const unnamed = () => [...new Set(items.map((x) => x.theme))]
    .filter((t) => !t.startsWith(TOPIC_PREFIX) && !labels[t]);
  if (!unnamed().length) return;
  try {
    for (const t of (await taxonomy()).themes) labels[t.id] = labels[t.id] || t.label;
  } catch (e) { /* the ids then, not the alerts unlisted */ }
  await Promise.all(unnamed().map(async (id) => {
    try {
      labels[id] = labels[id] || (await api(`/themes/${encodeURIComponent(id)}?days=1`)).label;
    } catch (e) { /* never a theme (404): the bare id, unlinked */ }
  }));
}

function subjectLink(theme) {
  if (!theme.startsWith(TOPIC_PREFIX)) return themeLink(theme);
  const label = topicLabels[theme];
  return el("a", { href: hashFor("topics"), class: "topic-link" },
    label ? `sujet émergent « ${label} »` : `sujet n° ${theme.slice(TOPIC_PREFIX.length)}`);
}

function alertItem(a) {
  const share = a.kind === "negativity";
  const fmt = (v) => (share ? fmtPct(v) : fmtDec(v));
  return el("li", { "data-alert": a.id },
    el("span", { class: "badge " + a.severity }, SEVERITY[a.severity] || a.severity), " ",
    labels[a.theme] || a.theme.startsWith(TOPIC_PREFIX) ? subjectLink(a.theme) : el("strong", {}, a.theme),
    ` — ${KIND[a.kind] || a.kind}, du ${fmtDay(a.first_day)} au ${fmtDay(a.last_day)} `,
    el("span", { class: "muted" }, `(observé ${fmt(a.observed)}, attendu ${fmt(a.expected)}) · ${alertStatus(a)}`),
    ...resolution(a));
}

// An alert whose incident is resolved said only « résolue »: who closed it, when and why
// (« thème retiré de la taxonomie (version 3) ») are stored on the incident. Asked among the
// latest 500 resolved incidents; an older one keeps the bare word. Text, never markup.
async function loadAlertContext(items) {
  const wanted = items.some((a) => a.incident_status === "resolved" && !state.resolutions[a.incident_id]);
  await Promise.all([loadSubjectLabels(items), wanted && api("/incidents?status=resolved&limit=500").then(
    (data) => { for (const i of data.items) state.resolutions[i.id] = i; }, () => { /* the bare word */ })]);
}

function resolution(a) {
  const i = a.incident_status === "resolved" ? state.resolutions[a.incident_id] : null;
  if (!i || !i.resolved_by) return [];
  return [el("span", { class: "muted alert-resolution" }, ` par ${actor(i.resolved_by)}` +
    (i.resolved_at ? ` le ${fmtDateTime(i.resolved_at)}` : "") + (i.resolve_note ? ` — ${i.resolve_note}` : ""))];
}

// An open signal of an incident an analyst resolved is handled: not "ouverte".
const alertStatus = (a) => a.status !== "open" ? "résolue"
  : a.incident_status === "resolved" ? "incident résolu" : "ouverte";

const INCIDENT_STATUS = { open: "ouvert", acknowledged: "pris en charge", resolved: "résolu" };

// Who acted: `verbatim incidents ack` records the OS user as « cli:<user> ».
// The jobs that close incidents by themselves: named, not « par detector » (« erasure »: an
// erasure that left an emerging topic without a verbatim, core.erasure).
const ACTORS = { detector: "le détecteur", topics: "la découverte des sujets", erasure: "un effacement" };
const actor = (who) => ACTORS[who] || (who.startsWith("cli:") ? `${who.slice(4)} (en ligne de commande)` : who);

function incidentItem(i) {
  // Who took it in charge, when, and their note (`verbatim incidents ack 3 --note …`): only
  // « (par cli:marie) » was shown, the on-call's note for the analysts nowhere.
  const li = el("li", { "data-incident": i.id },
    el("span", { class: "badge " + i.severity }, SEVERITY[i.severity] || i.severity), " ",
    subjectLink(i.theme), ` — du ${fmtDay(i.first_day)} au ${fmtDay(i.last_day)} · ${INCIDENT_STATUS[i.status] || i.status}`,
    i.acknowledged_by ? el("span", { class: "muted incident-status" },
      ` par ${actor(i.acknowledged_by)}` + (i.acknowledged_at ? ` le ${fmtDateTime(i.acknowledged_at)}` : "")) : "");
  if (i.ack_note) li.append(el("div", { class: "muted incident-note" }, `Note : « ${i.ack_note} »`));
  // What moved (observed vs expected per signal) and where (drivers), as in the Slack message.
  const signals = Object.entries(i.signals || {}).map(([kind, v]) => {
    // A share, or a count observed against an expected mean (7,5: as the Alertes view says).
    const [obs, exp] = kind === "negativity" ? [fmtPct, fmtPct] : [(x) => fmtNum(Math.round(x)), fmtDec];
    return `${KIND[kind] || kind} : observé ${obs(v.observed)}, attendu ${exp(v.expected)}`;
  });
  if (signals.length) li.append(el("div", { class: "muted" }, signals.join(" ; ")));
  // A half to even as the Slack message (« 12 % des mentions en plus » for 0.125, not 13 %).
  const drivers = (i.drivers || []).map((d) =>
    `${fmtPct(d.share_of_extra)} des mentions en plus : ${d.field} « ${d.value} »`);
  if (drivers.length) li.append(el("div", { class: "drivers" }, drivers.join(" ; ")));
  const act = (action, label) => {
    const b = writeAction(el("button", { type: "button", class: "ghost small" }, label));
    b.addEventListener("click", async () => {
      const note = action === "resolve" ? (prompt("Note de résolution (facultative) :") ?? null) : "";
      if (note === null) return;
      try {
        await api(`/incidents/${i.id}/${action}`, { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ note }) });
      } catch (e) { setStatus("Action refusée : " + e.message); return; }
      // The list is drawn again as it was, and the focus stays on this incident, or the one
      // now in its place once resolved: the list folded back to 8 (an incident past them,
      // just taken in charge, out of sight) and the focus fell to the page's top.
      const place = [...li.parentNode.children].indexOf(li);
      await render();
      const items = $("#overview-alerts").children;
      const here = $(`#overview-alerts li[data-incident="${i.id}"]`) || items[Math.min(place, items.length - 1)];
      if (here && state.view === "overview") focusIn(here, "button");
      announce(action === "resolve" ? "Incident résolu." : "Incident pris en charge.");
    });
    return b;
  };
  if (i.status === "open") li.append(" ", act("acknowledge", "Prendre en charge"));
  li.append(" ", act("resolve", "Résoudre"));
  return li;
}

async function loadThemes() {
  const data = await api("/themes?" + filters());
  state.themes = data.themes;
  state.themesData = data;
  for (const t of data.themes) labels[t.id] = t.label;
  return data;
}

async function renderOverview() {
  const generation = state.generation;
  const [ov] = await Promise.all([api("/overview?" + filters()), loadThemes()]);
  if (generation !== state.generation) return;  // another view or filter meanwhile: it draws
  for (const s of ov.sources) ensureOption($("#source"), s);
  // The verbatims and the NPS / CSAT / CES below count French verbatims; the others apart.
  const others = Object.entries(ov.other_languages || {});
  document.querySelectorAll("#view-overview .period").forEach((n) => {
    n.textContent = periodText(ov.period) +
      (others.length ? ` (hors français, non comptés : ${otherLanguages(others)})` : "");
  });
  const volChange = volumeChange(ov.verbatims, ov.previous_verbatims);
  const negPoints = ov.verbatims && ov.previous_verbatims
    ? sharePoints(ov.negatives / ov.verbatims, ov.previous_negative_share) : null;
  const cards = [
    kpi("Verbatims", fmtNum(ov.verbatims), volChange == null ? "pas de période précédente" : `${fmtChange(volChange)} vs période précédente`),
    kpi("Part négative", fmtPct(shareOf(ov.negatives, ov.verbatims)),
      negPoints == null ? "pas de période précédente" : `${fmtSigned(negPoints)} pts`, trend(negPoints)),
  ];
  for (const s of ov.scores) {
    // CES: a mean on the 1-7 agreement scale (7 = easiest), not a share.
    const value = s.score === "nps" ? fmtScore("nps", s.value) : s.score === "ces" ? (s.value == null ? "—" : fmtDec(s.value) + " / 7")
      : fmtScore("csat", s.value);
    const unit = s.score === "ces" ? "" : " pts";
    const moved = s.value != null && s.previous_value != null ? fmtSigned(s.value - s.previous_value, 1) : null;
    const delta = moved == null ? count(s.answers, "réponse", "réponses") : `${moved}${unit} · ${count(s.answers, "réponse", "réponses")}`;
    // Red for a fall as shown: a change that reads « 0 » is no fall.
    cards.push(kpi(SCORE[s.score], value, delta, moved?.startsWith("−") ? "up" : ""));
  }
  cards.push(kpi("Alertes ouvertes", fmtNum(ov.open_alerts), ov.open_alerts ? "à traiter" : "rien à signaler", ov.open_alerts ? "up" : ""));
  $("#kpis").replaceChildren(...cards);

  const body = $("#movers tbody");
  body.replaceChildren();
  for (const m of ov.top_movers) {
    labels[m.id] = m.label;
    body.append(el("tr", { "data-theme": m.id }, el("td", {}, themeLink(m.id, m.label)),
      el("td", { class: "num" }, fmtNum(m.volume)), el("td", { class: "num" }, fmtNum(m.previous_volume)),
      el("td", { class: "num" }, fmtPct(shareOf(m.negatives, m.volume)))));
  }
  if (!ov.top_movers.length) body.append(el("tr", {}, el("td", { colSpan: 4, class: "muted" }, "Aucun thème en hausse.")));

  // Incidents (grouped alerts with acknowledge / resolve) when the server has them, else alerts.
  let incidents = null, capped = [];
  try {
    // The unresolved ones asked for by status: among the latest 50 of every status, one left
    // open while newer ones were resolved fell out of the list ("Aucun incident ouvert").
    // One more than listed: whether a state has more than INCIDENTS_LISTED (the API has no cursor).
    const statuses = ["open", "acknowledged"];
    const lists = await Promise.all(statuses.map((status) =>
      api(`/incidents?historical=false&status=${status}&limit=${INCIDENTS_LISTED + 1}`)));
    incidents = lists.flatMap((l) => l.items.slice(0, INCIDENTS_LISTED))
      .sort((a, b) => b.last_day.localeCompare(a.last_day) || b.id - a.id);
    capped = statuses.filter((_, i) => lists[i].items.length > INCIDENTS_LISTED);
    await loadSubjectLabels(incidents);
  } catch (e) {
    if (e.status !== 404) throw e;
  }
  if (generation !== state.generation) return;
  if (incidents) {
    // All of them once « Voir … » was pressed, till the dashboard shows another view.
    const live = state.incidentsAll ? incidents : incidents.slice(0, INCIDENTS_SHOWN);
    $("#overview-alerts-title").textContent = "Incidents ouverts";
    $("#overview-alerts").replaceChildren(...live.map(incidentItem));
    if (!live.length) $("#overview-alerts").append(el("li", { class: "muted" }, "Aucun incident ouvert."));
    moreIncidents(incidents.slice(live.length), capped);
  } else {
    const alerts = await api("/alerts?status=open&limit=5");
    await loadSubjectLabels(alerts.items);
    if (generation !== state.generation) return;
    $("#overview-alerts").replaceChildren(...alerts.items.map(alertItem));
    if (!alerts.items.length) $("#overview-alerts").append(el("li", { class: "muted" }, "Aucune alerte ouverte."));
  }

  const available = new Set(ov.scores.map((s) => s.score));
  for (const o of $("#driver-score").options) o.disabled = o.value !== "rating" && !available.has(o.value);
  if ($("#driver-score").selectedOptions[0]?.disabled) $("#driver-score").value = "rating";
  await renderDrivers();
}

// The first 8 unresolved incidents, then the others on demand: the ninth and later were not
// listed, nothing said so, and they could not be taken in charge or resolved from here.
const INCIDENTS_SHOWN = 8, INCIDENTS_LISTED = 100;
const INCIDENT_STATES = { open: "ouverts", acknowledged: "pris en charge" };

function moreIncidents(rest, capped) {
  // Past the 100 latest of a state, the others are not listed: once all shown, nothing said so.
  const note = () => capped.length ? [el("li", { class: "muted", id: "incidents-capped" },
    `Plus de ${INCIDENTS_LISTED} incidents ${capped.map((s) => INCIDENT_STATES[s]).join(" et plus de " + INCIDENTS_LISTED + " ")} : ` +
    `seuls les ${INCIDENTS_LISTED} plus récents de chaque état sont listés ici ; les autres : API /incidents.`)] : [];
  if (!rest.length) { $("#overview-alerts").append(...note()); return; }
  const button = el("button", { type: "button", class: "ghost small", id: "more-incidents" },
    `Voir ${capped.length ? "au moins " : ""}${count(rest.length, "autre incident non résolu", "autres incidents non résolus")}`);
  const item = el("li", {}, button);
  button.addEventListener("click", () => {
    const shown = rest.map(incidentItem);
    item.replaceWith(...shown, ...note());
    state.incidentsAll = true;
    focusIn(shown[0]);  // not lost with the removed button
  });
  $("#overview-alerts").append(item);
}

async function renderDrivers() {
  const p = filters("90");
  if ($("#days").value !== "custom") p.set("days", "90");
  p.set("score", $("#driver-score").value);
  const generation = ++state.driversGeneration;  // another score picked meanwhile
  const d = await api("/drivers?" + p);
  if (generation !== state.driversGeneration) return;
  const block = $("#drivers");
  if (!d.drivers.length) {
    $("#drivers-note").textContent = d.answers
      ? `${count(d.answers, "réponse", "réponses")} : pas assez de mentions par thème pour estimer un effet.`
      : `Aucune réponse ${SCORE[d.score]} sur la période ${periodText(d.period)}.`;
    block.replaceChildren();
    return;
  }
  const mean = ["nps", "csat"].includes(d.score) ? fmtScore(d.score, d.coded_mean) : fmtDec(d.coded_mean);
  $("#drivers-note").textContent = `${SCORE[d.score]} ${mean} sur ${count(d.answers, "réponse", "réponses")}, ${periodText(d.period)}. ` +
    `Effet de la mention d'un thème (${d.unit}, autres thèmes égaux), intervalle de confiance à 95${PCT}.`;
  block.replaceChildren(driverPlot(d.drivers, d.unit));
  fitDriverNames(block);
}

async function renderThemes() {
  const generation = state.generation;
  const data = await loadThemes();
  if (generation !== state.generation) return;  // another view or filter meanwhile: it draws
  const others = Object.entries(data.other_languages || {});
  document.querySelectorAll("#view-themes .period").forEach((n) => {
    n.textContent = `${periodText(data.period)} · ${count(data.total_volume, "verbatim", "verbatims")}` +
      (others.length ? ` (hors français, non comptés : ${otherLanguages(others)})` : "");
  });
  const body = $("#themes tbody");
  body.replaceChildren();
  for (const row of data.themes) {
    const tr = el("tr", { "data-theme": row.id },
      el("td", {}, themeLink(row.id, row.label)),
      el("td", { class: "muted extra" }, STAGE[row.stage] || row.stage),
      el("td", { class: "num" }, fmtNum(row.volume)),
      el("td", { class: "num" }, change(row)),
      el("td", { class: "num" }, fmtNum(row.negatives)),
      el("td", { class: "num extra" }, fmtNum(row.neutrals)),
      el("td", { class: "num" }, fmtPct(shareOf(row.negatives, row.volume))),
      el("td", { class: "num spare" }, row.volume ? fmtSigned(row.net_sentiment, 2) : "—"),
      el("td", { class: "spare" }, sparkline(row.trend)),
      el("td", {}, spikeBadge(row.spike)),
      el("td", { class: "kw" }, row.keywords.join(", ")),
      el("td", { class: "muted extra" }, row.team));
    body.append(tr);
  }
  if (!data.themes.length) body.append(el("tr", {}, el("td", { colSpan: 12, class: "muted" }, "Aucune donnée.")));
  $("#themes tfoot").replaceChildren(el("tr", { class: "total" },
    // The stage's cell apart: the total stays under « Mentions » when that column is hidden.
    el("th", { scope: "row" }, "Total (verbatims)"), el("td", { class: "extra" }),
    el("td", { class: "num" }, fmtNum(data.total_volume)),
    el("td", { colSpan: 9, class: "muted" }, "verbatims distincts ; un verbatim peut citer plusieurs thèmes")));
}

function breakdownTable(table, rows, name) {
  const head = el("thead", {}, el("tr", {}, el("th", { scope: "col" }, name),
    el("th", { scope: "col", class: "num" }, "Mentions"), el("th", { scope: "col", class: "num" }, "Part négative")));
  const body = el("tbody");
  for (const r of rows) {
    body.append(el("tr", {}, el("td", {}, name === "Canal" ? CHANNEL[r.key] || r.key : r.key),
      el("td", { class: "num" }, fmtNum(r.mentions)), el("td", { class: "num" }, fmtPct(shareOf(r.negatives, r.mentions)))));
  }
  if (!rows.length) body.append(el("tr", {}, el("td", { colSpan: 3, class: "muted" }, "Aucune mention.")));
  table.replaceChildren(head, body);
}

function severityMix(rows) {
  const total = rows.reduce((a, r) => a + r.mentions, 0) || 1;
  const colors = { faible: "#98a2b3", moyenne: "#b54708", haute: "#c4320a", critique: "#7a271a" };
  const list = el("ul", { class: "plain sev" });
  for (const r of rows) {
    list.append(el("li", { "data-band": r.key },
      el("span", { class: "sev-label" }, r.key),
      el("span", { class: "bar", role: "img", "aria-label": `${r.key} : ${fmtPct(r.mentions / total)}` },
        el("span", { class: "fill", style: `width:${(100 * r.mentions / total).toFixed(1)}%;background:${colors[r.key] || "#667085"}` })),
      el("span", { class: "num" }, `${fmtNum(r.mentions)} (${fmtPct(r.mentions / total)})`)));
  }
  if (!rows.length) list.append(el("li", { class: "muted" }, "Aucune mention."));
  return list;
}

// Severe and repeat-complainer mentions per day (two lines).
function gravityChart(days) {
  const width = 360, height = 90, pad = 14;
  const s = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "gravity",
    "aria-label": "Mentions graves et de clients récurrents par jour" });
  const max = Math.max(1, ...days.map((d) => Math.max(d.severe, d.recurrent)));
  const step = days.length > 1 ? (width - 2 * pad) / (days.length - 1) : 0;
  const line = (key, color, dash) => {
    const pts = days.map((d, i) => `${(pad + i * step).toFixed(1)},${(height - pad - (d[key] / max) * (height - 2 * pad)).toFixed(1)}`);
    s.append(svg("polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": "2", "stroke-dasharray": dash, class: key }));
  };
  line("severe", "#c4320a", "");
  line("recurrent", "#6941c6", "4 3");
  const t = svg("text", { x: 0, y: 10, "font-size": "10", fill: "#475467" });
  t.textContent = `${fmtNum(max)} / jour — graves (trait plein), récurrents (pointillés)`;
  s.append(t);
  return s;
}

async function renderTheme() {
  const id = state.theme;
  // The period the select shows (the themes table's): a 30-day default here made the page
  // count 322 mentions under "7 derniers jours" where the table had just said 123.
  const p = filters();
  const themeApi = (path) => api(path).catch((e) => {
    if (e.status === 404) throw new ApiError(404, `le thème « ${id} » n'existe pas (renommé, retiré ou lien erroné).`);
    throw e;
  });
  const generation = state.generation;
  const keep = state.keepShown || 0;  // set by a correction just saved
  state.keepShown = 0;
  // The alerts' error is thrown after the theme's own answers: an unknown theme is a 422
  // « thème inconnu » there, which won the race against the 404 that says so in French.
  const [detail, breakdown, alerts] = await Promise.all([
    themeApi(`/themes/${encodeURIComponent(id)}?` + p),
    themeApi(`/themes/${encodeURIComponent(id)}/breakdown?` + p),
    api(`/alerts?theme=${encodeURIComponent(id)}&limit=50`).catch((e) => e),
  ]);
  if (alerts instanceof Error) throw alerts;
  if (generation !== state.generation) return;  // filters changed meanwhile: a newer render draws
  labels[detail.id] = detail.label;
  state.theme = detail.id;
  const s = detail.summary;
  $("#detail-title").textContent = detail.label;
  $("#detail-meta").textContent = `Équipe ${detail.team} · étape ${STAGE[detail.stage] || detail.stage} · ${periodText(detail.period)}` +
    (detail.retired ? " · thème retiré de la taxonomie (historique seul)" : "");
  const impact = s.rating_impact;
  const negPoints = s.volume && s.previous_volume
    ? sharePoints(shareOf(s.negatives, s.volume), previousShare(s.negative_share, s.negative_share_change)) : null;
  const cards = [
    kpi("Mentions", fmtNum(s.volume), s.previous_volume ? `${fmtNum(s.previous_volume)} la période précédente` : "pas de période précédente"),
    // A change of share needs a share in both periods: a theme gone quiet has none (null).
    negPoints != null
      ? kpi("Part négative", fmtPct(shareOf(s.negatives, s.volume)), `${fmtSigned(negPoints)} pts vs période précédente`, trend(negPoints))
      : kpi("Part négative", fmtPct(shareOf(s.negatives, s.volume)), count(s.negatives, "mention négative", "mentions négatives")),
    kpi("Note moyenne", s.mean_rating == null ? "—" : fmtDec(s.mean_rating) + " / 5",
      impact && impact.difference != null ? `${fmtSigned(impact.difference, 1)} vs les autres verbatims`
        // "pas de note" under "1 / 5": the theme's verbatims are rated, no other one is.
        : s.mean_rating == null ? "pas de note" : "aucun autre verbatim noté pour comparer"),
  ];
  try {
    const dp = filters("90");
    if ($("#days").value !== "custom") dp.set("days", "90");
    dp.set("score", "nps");  // the documented min_mentions (20): fewer answers estimate nothing
    const drivers = await api("/drivers?" + dp);
    const mine = drivers.drivers.find((d) => d.theme === detail.id);
    if (mine) cards.push(kpi("Effet sur le NPS", `${fmtSigned(mine.effect, 1)} pts`,
      // Its own period (90 days unless dates are chosen), said: « 64 réponses » read as the
      // answers of the 7 days the page counts.
      `IC 95${PCT} [${fmtSigned(mine.ci_low, 1)} ; ${fmtSigned(mine.ci_high, 1)}] · ${count(mine.mentions, "réponse", "réponses")} ${periodText(drivers.period)}`,
      mine.ci_high < 0 ? "up" : ""));
  } catch (e) { /* no NPS in this feed */ }
  // Another theme or filter meanwhile: this theme's cards over that one's.
  if (generation !== state.generation) return;
  $("#theme-kpis").replaceChildren(...cards);
  $("#chart").replaceChildren(s.volume ? chart(detail.series, alerts.items)
    : el("p", { class: "muted" }, `Aucune mention de ce thème ${periodText(detail.period)}.`));
  breakdownTable($("#by-channel"), breakdown.by_channel, "Canal");
  breakdownTable($("#by-source"), breakdown.by_source, "Source");
  $("#severity-mix").replaceChildren(severityMix(breakdown.by_severity),
    el("p", { class: "gravity-note" }, `Graves (gravité ≥ 50${PCT}) : ${fmtNum(breakdown.severe)} · ` +
      `clients récurrents : ${fmtNum(breakdown.recurrent)} (${fmtPct(s.volume ? breakdown.recurrent / s.volume : 0)})`),
    s.volume ? gravityChart(breakdown.by_day) : "");
  const counts = { "": s.volume, negative: s.negatives, neutral: s.neutrals, positive: s.positives };
  state.counts = counts;
  // The counts are French verbatims (the aggregates); the list shows every language.
  const foreign = breakdown.by_language.filter((r) => !["fr", "und"].includes(r.key));
  let langNote = $("#lang-note");
  if (!langNote) { langNote = el("p", { id: "lang-note", class: "muted" }); $(".vfilters").after(langNote); }
  langNote.textContent = foreign.length
    ? `Les compteurs ne comptent que le français ; la liste montre aussi : ${foreign.map((r) => `${LANGUAGE[r.key] || r.key} (${fmtNum(r.mentions)})`).join(", ")}.`
    : "";
  document.querySelectorAll("#polarity button").forEach((b) => {
    const name = { "": "Tous", negative: "Négatifs", neutral: "Neutres", positive: "Positifs" }[b.dataset.polarity];
    b.textContent = `${name} (${fmtNum(counts[b.dataset.polarity])})`;
    b.classList.toggle("active", b.dataset.polarity === state.polarity);
    b.setAttribute("aria-pressed", String(b.dataset.polarity === state.polarity));
  });
  state.period = detail.period;
  // Drawn again after a correction: as many verbatims as were shown, not the first 20 (the
  // list folded back, the analyst's place past « Voir plus » lost).
  await loadVerbatims(false, Math.min(VERBATIMS_MAX, Math.max(VERBATIMS_PAGE, keep)));
  while ($("#verbatims").children.length < keep && state.cursor && generation === state.generation) {
    await loadVerbatims(true, Math.min(VERBATIMS_MAX, keep - $("#verbatims").children.length));
  }
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

// A page of verbatims (« Voir plus »), and the most the API gives at once.
const VERBATIMS_PAGE = 20, VERBATIMS_MAX = 200;

function verbatimParams(limit = VERBATIMS_PAGE) {
  const p = new URLSearchParams({ limit: String(limit) });
  if (state.polarity) p.set("polarity", state.polarity);
  if ($("#channel").value) p.set("channel", $("#channel").value);
  if ($("#source").value) p.set("source", $("#source").value);
  if ($("#language").value) p.set("language", $("#language").value);
  if (state.period) { p.set("start", state.period.start); p.set("end", state.period.end); }
  return p;
}

// An empty list under counted (French) mentions: their days were purged (`retention_days`
// keeps the counts, not the verbatims); « Aucun verbatim » under « 63 mentions » read as broken.
function emptyVerbatims() {
  const counted = state.counts?.[state.polarity] || 0;
  return counted && ["", "fr"].includes($("#language").value)
    ? "Aucun verbatim conservé pour ces filtres : ces jours ont été purgés (durée de conservation " +
      "des données personnelles), seuls leurs compteurs restent."
    : "Aucun verbatim pour ces filtres.";
}

async function loadVerbatims(append, limit = VERBATIMS_PAGE) {
  const p = verbatimParams(limit);
  if (append && state.cursor) p.set("cursor", state.cursor);
  if (!append) $("#verbatims-status").textContent = "";
  const generation = state.generation;
  const data = await api(`/themes/${encodeURIComponent(state.theme)}/verbatims?` + p);
  // A filter changed while the page loaded (render() moved the generation on): the page is of
  // the former query; appended, it mixed its verbatims into the new list and kept its cursor.
  if (generation !== state.generation) return null;
  const list = $("#verbatims");
  if (!append) list.replaceChildren();
  const shown = list.children.length;
  for (const v of data.items) {
    const fix = writeAction(el("button", { type: "button", class: "ghost small fix", "aria-label": `Corriger le verbatim ${v.feedback_id}` }, "Corriger"));
    fix.addEventListener("click", () => busy(fix, () => openFix(v.feedback_id, fix), "Impossible d'ouvrir la correction : "));
    list.append(el("li", { class: "verbatim", "data-feedback": v.feedback_id },
      el("div", { class: "verbatim-meta" },
        el("span", { class: "pol " + v.polarity }, POLARITY[v.polarity] || v.polarity),
        `${fmtDateTime(v.created_at)} · ${CHANNEL[v.channel] || v.channel} · ${v.source}` +
          (v.rating != null ? ` · note ${fmtDec(v.rating)}/5` : "") +
          (v.language && v.language !== "fr" ? ` · langue : ${LANGUAGE[v.language] || v.language}` : "") +
          ` · gravité ${fmtPct(v.severity)}`, " ", fix),
      highlighted(v.text, v.evidence)));
  }
  if (!append && !data.items.length) list.append(el("li", { class: "muted" }, emptyVerbatims()));
  state.cursor = data.next_cursor;
  $("#more").hidden = !data.next_cursor;
  return list.children[shown] ?? null;
}

// A list's button ("Voir plus", "Corriger", older alerts): disabled while its request runs,
// then enabled again; a failure (server unreachable, 4xx/5xx) is said in French under the
// list and changes nothing else (the cursor moves only with a page received). Disabling the
// focused button drops its focus to the page's top: a keyboard user pressing « Voir plus »
// again started over from the header. It comes back to the button, or, once the last page
// hid it, to the first item `action` returns (nothing taken from a dialog it opened).
async function busy(button, action, prefix, status = $("#verbatims-status")) {
  if (button.disabled) return;
  const focused = document.activeElement === button;
  button.disabled = true;
  status.textContent = "";
  let added = null;
  try {
    added = await action();
  } catch (e) {
    if (e.message !== "auth") status.textContent = prefix + e.message;
  } finally {
    button.disabled = false;
    if (focused && document.activeElement === document.body) {
      if (!button.hidden) button.focus();
      else if (added instanceof Element) focusIn(added);
    }
  }
}

// The first link or button (or what `within` names) of a list item, else the item itself.
function focusIn(item, within = "a, button") {
  const target = item.querySelector(within) || Object.assign(item, { tabIndex: -1 });
  target.focus();
}

// --- corrections ----------------------------------------------------------------------------

async function taxonomy() {
  if (!state.taxonomy) state.taxonomy = (await api("/taxonomy")).taxonomy;
  return state.taxonomy;
}

async function openFix(feedbackId, opener) {
  const [fb, tax] = await Promise.all([api(`/feedback/${feedbackId}`), taxonomy()]);
  state.fixing = fb;
  $("#fix-text").textContent = fb.text;
  $("#fix-sentiment").value = "";
  $("#fix-note").value = "";
  $("#fix-status").textContent = "";
  const current = Object.fromEntries((fb.current?.themes || []).map((m) => [m.theme, m.polarity]));
  state.fixInitial = current;
  $("#fix-sentiment").options[0].textContent = `(inchangé : ${POLARITY[fb.current?.sentiment] || "—"})`;
  const box = $("#fix-themes");
  box.replaceChildren();
  const offered = new Set(tax.themes.filter((t) => !t.retired).map((t) => t.id));
  for (const [id, pol] of Object.entries(current)) {
    if (!offered.has(id)) box.append(el("p", { class: "muted" }, `${labels[id] || id} : ${POLARITY[pol] || pol} (thème retiré : perdu si vous modifiez les thèmes)`));
  }
  for (const t of tax.themes.filter((t) => !t.retired)) {
    const select = el("select", { "aria-label": `Polarité pour ${t.label}`, "data-theme": t.id },
      el("option", { value: "" }, "non cité"),
      el("option", { value: "negative" }, "négatif"), el("option", { value: "neutral" }, "neutre"),
      el("option", { value: "positive" }, "positif"));
    select.value = current[t.id] || "";
    box.append(el("label", { class: "fix-theme" }, t.label + " ", select));
  }
  state.fixOpener = opener;
  $("#fix-dialog").showModal();
}

// A dialog gives the focus back to what had it when it opened: « Corriger » was disabled then
// (busy, while the verbatim loaded), so the focus fell to the page's top on closing. It goes
// back to that button, or, the list drawn again after a correction, to the corrected verbatim
// (the one in its place if the filters no longer list it).
function refocusFix(feedbackId = null, index = -1) {
  const focused = document.activeElement;
  if (focused && focused !== document.body && !$("#fix-dialog").contains(focused)) return;
  const list = $("#verbatims");
  const item = feedbackId == null ? null
    : list.querySelector(`li[data-feedback="${feedbackId}"]`) ?? list.children[Math.min(index, list.children.length - 1)];
  if (item) focusIn(item, "button.fix");
  else if (state.fixOpener?.isConnected) state.fixOpener.focus();
}

async function saveFix() {
  const fb = state.fixing;
  const selects = [...document.querySelectorAll("#fix-themes select")];
  const themes = selects.filter((s) => s.value).map((s) => ({ theme: s.dataset.theme, polarity: s.value }));
  // Only what the analyst changed: a sentiment-only fix leaves the themes to the model
  // (sending the form's list froze them, and dropped a retired theme the form cannot show).
  const changed = selects.some((s) => s.value !== (state.fixInitial[s.dataset.theme] || ""));
  const body = changed ? { themes } : {};
  if ($("#fix-sentiment").value) body.sentiment = $("#fix-sentiment").value;
  if (!body.themes && !body.sentiment) { $("#fix-status").textContent = "Rien à corriger : changez le sentiment ou un thème."; return; }
  if ($("#fix-note").value.trim()) body.note = $("#fix-note").value.trim();
  const save = $("#fix-save");
  if (save.disabled) return;
  save.disabled = true;
  $("#fix-status").textContent = "";
  try {
    await api(`/feedback/${fb.id}/corrections`, { method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json" } });
  } catch (e) {
    // The dialog stays open with the analyst's choices, to send again.
    $("#fix-status").textContent = "Correction refusée : " + e.message;
    return;
  } finally {
    save.disabled = false;
  }
  const index = [...$("#verbatims").children].indexOf(state.fixOpener?.closest("li"));
  state.keepShown = document.querySelectorAll("#verbatims li.verbatim").length;
  $("#fix-dialog").close();
  await render();
  refocusFix(fb.id, index);
  announce("Correction enregistrée : les chiffres en tiennent compte.");
}

function announce(text) {
  const n = $("#status");
  n.textContent = text;
  n.classList.add("ok");
  setTimeout(() => { if (n.textContent === text) { n.textContent = ""; n.classList.remove("ok"); } }, 6000);
}

// --- journey --------------------------------------------------------------------------------

async function renderJourney() {
  const generation = state.generation;
  const data = await loadThemes();
  if (generation !== state.generation) return;
  document.querySelectorAll("#view-journey .period").forEach((n) => { n.textContent = periodText(data.period); });
  const by = {};
  for (const t of data.themes) {
    const s = (by[t.stage] ||= { mentions: 0, negatives: 0, themes: [] });
    s.mentions += t.volume; s.negatives += t.negatives; s.themes.push(t);
  }
  const max = Math.max(1, ...Object.values(by).map((s) => s.mentions));
  const list = $("#funnel");
  list.replaceChildren();
  for (const stage of [...STAGES, "experience"]) {
    const s = by[stage] || { mentions: 0, negatives: 0, themes: [] };
    const share = s.mentions ? s.negatives / s.mentions : 0;
    const top = [...s.themes].sort((a, b) => b.negatives - a.negatives).filter((t) => t.negatives).slice(0, 3);
    list.append(el("li", { class: "stage" + (stage === "experience" ? " aside" : ""), "data-stage": stage },
      el("div", { class: "stage-name" }, STAGE[stage]),
      el("div", { class: "stage-bar", role: "img",
        "aria-label": `${STAGE[stage]} : ${count(s.mentions, "mention", "mentions")} dont ${count(s.negatives, "négative", "négatives")}` },
        el("span", { class: "fill", style: `width:${(100 * s.mentions / max).toFixed(1)}%` },
          el("span", { class: "neg", style: `width:${(100 * share).toFixed(1)}%` }))),
      el("div", { class: "stage-figures" },
        s.mentions ? el("strong", { class: "friction" }, `Friction ${fmtPct(share)}`) : el("span", { class: "muted" }, "Pas de mention"),
        s.mentions ? ` · ${count(s.mentions, "mention", "mentions")}, ${count(s.negatives, "négative", "négatives")}` : ""),
      el("div", { class: "stage-themes" }, top.length ? "Principaux irritants : " : s.mentions ? "Aucun irritant." : "",
        ...top.flatMap((t, i) => [i ? ", " : "", themeLink(t.id, t.label), ` (${fmtNum(t.negatives)})`]))));
  }
}

// --- topics ---------------------------------------------------------------------------------

const foldAccents = (text) => text.normalize("NFD").replace(/[\u0300-\u036f]/g, "");
const slug = (text) => foldAccents(text).toLowerCase()
  .replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "").replace(/^([^a-z])/, "t_$1").slice(0, 60) || "sujet";

// The first 50, then the next pages on demand (the API's offset): a run finds up to 80 topics
// and the view stopped at 50 with nothing said.
const TOPICS_PAGE = 50;

async function renderTopics() {
  const generation = state.generation;
  const [data, tax] = await Promise.all([api(`/topics?limit=${TOPICS_PAGE}`), taxonomy()]);
  if (generation !== state.generation) return;
  for (const t of tax.themes) labels[t.id] = labels[t.id] || t.label;
  rememberTopics(data.items);  // the alerts' names as this page reads them
  $("#topics-status").textContent = "";
  const list = $("#topics");
  const known = new Set(tax.themes.map((x) => x.id));
  list.replaceChildren(...data.items.map((t) => topicItem(t, known)));
  if (!data.items.length) list.append(el("li", { class: "muted" }, "Aucun sujet : lancez « verbatim topics »."));
  showMoreTopics(data);
}

async function loadMoreTopics() {
  const [data, tax] = await Promise.all([api(`/topics?limit=${TOPICS_PAGE}&offset=${state.topicsShown}`), taxonomy()]);
  const known = new Set(tax.themes.map((x) => x.id));
  rememberTopics(data.items);
  const items = data.items.map((t) => topicItem(t, known));
  $("#topics").append(...items);
  showMoreTopics(data);
  return items[0] ?? null;
}

function showMoreTopics(data) {
  state.topicsShown = data.offset + data.items.length;
  const more = $("#topics-more");
  more.hidden = !data.items.length || state.topicsShown >= data.total;
  more.textContent = `Voir plus de sujets (${fmtNum(state.topicsShown)} sur ${fmtNum(data.total)})`;
}

// `known`: the taxonomy's theme ids (a topic attached to one links to it).
function topicItem(t, known) {
  const examples = (t.representatives || []).map((r) => (typeof r === "object" && r ? r.text : null)).filter(Boolean).slice(0, 3);
  const promote = writeAction(el("button", { type: "button", class: "ghost small" }, "Promouvoir en thème"));
  promote.addEventListener("click", () => openPromote(t));
  return el("li", { class: "topic", "data-topic": t.id },
    el("div", { class: "topic-head" },
      t.is_emerging ? el("span", { class: "badge emerging" }, "Émergent") : "",
      el("strong", {}, t.label), el("span", { class: "muted" }, ` · ${count(t.size, "verbatim", "verbatims")} · vu jusqu'au ${fmtDateTime(t.last_seen)}`)),
    // A topic of stop words only (« Très bien ! ») has no keyword: no empty « Mots-clés : ».
    t.keywords && t.keywords.length ? el("div", { class: "kw" }, "Mots-clés : " + t.keywords.join(", ")) : "",
    examples.length ? el("ul", { class: "examples" }, ...examples.map((x) => el("li", {}, "« " + x + " »"))) : "",
    el("div", {}, t.theme && known.has(t.theme)
      ? el("span", { class: "muted" }, "Rattaché au thème ", themeLink(t.theme))
      : promote));
}

function openPromote(topic) {
  state.promoting = topic;
  $("#promote-id").value = slug(topic.label);
  $("#promote-label").value = topic.label.charAt(0).toUpperCase() + topic.label.slice(1);
  // Seeds are matched on the verbatims' words in order: a keyword phrase lost its stop words
  // ("frais port" for "frais de port") and matches nothing unless an example has it as such;
  // a single word already said by a chosen phrase ("passée" after "commande passée") only
  // widens the theme to every other use of that word.
  const examples = (topic.representatives || []).map((r) => (r && r.text ? r.text.toLowerCase() : ""));
  const seeds = [];
  for (const kw of topic.keywords || []) {
    const phrase = kw.includes(" ");
    if (phrase && !examples.some((x) => x.includes(kw))) continue;
    if (!phrase && seeds.some((s) => s.split(" ").some((w) => foldAccents(w).startsWith(foldAccents(kw))))) continue;
    seeds.push(kw);
    if (seeds.length === 6) break;
  }
  $("#promote-seeds").value = seeds.join(", ");
  $("#promote-stage").value = "experience";
  $("#promote-status").textContent = "";
  $("#promote-dialog").showModal();
}

async function savePromote() {
  const topic = state.promoting;
  const id = $("#promote-id").value.trim();
  if (!/^[a-z][a-z0-9_]*$/.test(id)) {
    $("#promote-status").textContent = "Identifiant invalide : minuscules, chiffres et _ (commence par une lettre).";
    return;
  }
  const examples = (topic.representatives || []).map((r) => (typeof r === "object" && r ? r.text : null)).filter(Boolean).slice(0, 5);
  const theme = { id, label: $("#promote-label").value.trim() || id, stage: $("#promote-stage").value,
    description: `Promu depuis le sujet découvert « ${topic.label} ».`,
    seeds: $("#promote-seeds").value.split(",").map((s) => s.trim()).filter(Boolean), examples };
  try {
    const out = await api("/taxonomy", { method: "PUT", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ operations: [{ op: "add", theme }] }) });
    state.taxonomy = out.taxonomy;
  } catch (e) {
    $("#promote-status").textContent = "Ajout refusé : " + e.message;
    return;
  }
  $("#promote-dialog").close();
  announce(`Thème « ${theme.label} » ajouté à la taxonomie (détecté dès la prochaine analyse).`);
  await renderTopics();
}

// --- alerts ---------------------------------------------------------------------------------

// The latest 50, then older pages on demand (the API's cursor): the view stopped at 50 and
// nothing said there were more.
const ALERTS_PAGE = 50;

async function renderAlerts() {
  const generation = state.generation;
  await loadThemes();
  state.resolutions = {};  // asked again: a detector's resolution may have been reopened since
  $("#alerts-status").textContent = "";
  const data = await api(`/alerts?limit=${ALERTS_PAGE}`);
  await loadAlertContext(data.items);
  if (generation !== state.generation) return;
  $("#alerts").replaceChildren(...data.items.map(alertItem));
  if (!data.items.length) $("#alerts").append(el("li", { class: "muted" }, "Aucune alerte."));
  showMoreAlerts(data.next_cursor);
}

async function loadMoreAlerts() {
  const data = await api(`/alerts?limit=${ALERTS_PAGE}&cursor=` + encodeURIComponent(state.alertsCursor));
  await loadAlertContext(data.items);
  const items = data.items.map(alertItem);
  $("#alerts").append(...items);
  showMoreAlerts(data.next_cursor);
  return items[0] ?? null;
}

function showMoreAlerts(cursor) {
  state.alertsCursor = cursor;
  $("#alerts-more").hidden = !cursor;
}

// --- routing --------------------------------------------------------------------------------

const RENDER = { overview: renderOverview, themes: renderThemes, theme: renderTheme,
  journey: renderJourney, topics: renderTopics, alerts: renderAlerts };

async function render() {
  readHash();
  setStatus(state.linkProblem);
  for (const v of VIEWS) $("#view-" + v).hidden = v !== state.view;
  document.querySelectorAll("nav a").forEach((a) => {
    const current = a.dataset.view === state.view || (state.view === "theme" && a.dataset.view === "themes");
    if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    a.href = hashFor(a.dataset.view);
  });
  $("#back-link").href = hashFor("themes");
  state.cursor = null;
  state.generation += 1;  // a page still loading for the former filters is dropped
  // Sources come with /overview: load them once whatever view the dashboard opens on.
  if (!state.sourcesLoaded && state.view !== "overview") {
    state.sourcesLoaded = true;
    api("/overview?days=1").then((ov) => ov.sources.forEach((s) => ensureOption($("#source"), s))).catch(() => {});
  }
  const generation = state.generation;
  try {
    await loadScope();
    await RENDER[state.view]();
    // A render superseded while it loaded (another view, filter or period since) draws
    // nothing: a slow overview arriving after the themes table was drawn said it was ready,
    // or, failing, hid the newer view under its error.
    if (generation !== state.generation) return;
    document.body.dataset.ready = state.view;
  } catch (err) {
    if (generation !== state.generation) return;
    // No figures of another theme or period left on screen under the error.
    $("#view-" + state.view).hidden = true;
    if (err.message !== "auth") setStatus((state.linkProblem ? state.linkProblem + " " : "") + "Erreur : " + err.message);
    if (err.status === 422 && err.field === "source" && $("#source").value) offerSourceReset();
  }
}

// A source the server does not know (a bookmarked link mistyped, a source since renamed): the
// view stayed hidden under the error, and only editing the URL by hand brought it back.
function offerSourceReset() {
  const unknown = $("#source").value;
  const reset = el("button", { type: "button", class: "ghost small", id: "reset-source" }, "Retirer le filtre de source");
  reset.addEventListener("click", () => {
    // The link's value the select was given (ensureOption): not offered again.
    [...$("#source").options].find((o) => o.value === unknown)?.remove();
    $("#source").value = "";
    go(state.view, state.view === "theme" ? { theme: state.theme } : {});
  });
  $("#status").append(" ", reset);
}

function init() {
  const refilter = () => go(state.view, state.view === "theme" ? { theme: state.theme } : {});
  $("#days").addEventListener("change", () => {
    $("#custom-range").hidden = $("#days").value !== "custom";
    if ($("#days").value !== "custom") refilter();
  });
  for (const id of ["#start", "#end"]) $(id).addEventListener("change", () => {
    if (!$("#start").value || !$("#end").value) return;
    if ($("#start").value > $("#end").value) { setStatus("La date de début est après la date de fin."); return; }
    refilter();
  });
  for (const id of ["#channel", "#source", "#language"]) $(id).addEventListener("change", refilter);
  $("#driver-score").addEventListener("change", () => renderDrivers().catch((e) => setStatus("Erreur : " + e.message)));
  $("#more").addEventListener("click", () => busy($("#more"), () => loadVerbatims(true), "Impossible de charger plus de verbatims : "));
  $("#topics-more").addEventListener("click", () => busy($("#topics-more"), loadMoreTopics,
    "Impossible de charger plus de sujets : ", $("#topics-status")));
  $("#alerts-more").addEventListener("click", () => busy($("#alerts-more"), loadMoreAlerts,
    "Impossible de charger les alertes plus anciennes : ", $("#alerts-status")));
  document.querySelectorAll("#polarity button").forEach((b) => b.addEventListener("click", () => {
    state.polarity = b.dataset.polarity;
    refilter();
  }));
  $("#fix-save").addEventListener("click", saveFix);
  // « Effacer », « Annuler » close their dialog; they were its forms' default button, which
  // Enter in a field presses: a pasted key was erased, a correction closed unsent.
  document.querySelectorAll("dialog button[data-close]").forEach((b) =>
    b.addEventListener("click", () => b.closest("dialog").close(b.value)));
  // Enter in the note: the correction sent (the form has no submit button left to close it).
  $("#fix-form").addEventListener("submit", (e) => { e.preventDefault(); saveFix(); });
  $("#fix-dialog").addEventListener("close", () => refocusFix());
  $("#promote-save").addEventListener("click", savePromote);
  $("#export-themes").addEventListener("click", () => download("/themes?format=csv&" + filters(), "themes.csv"));
  $("#export-alerts").addEventListener("click", () => download("/alerts?format=csv", "alertes.csv"));
  $("#export-verbatims").addEventListener("click", () => {
    const p = verbatimParams(); p.delete("limit"); p.set("format", "csv");
    download(`/themes/${encodeURIComponent(state.theme)}/verbatims?` + p, `verbatims_${state.theme}.csv`);
  });
  $("#key-button").addEventListener("click", () => {
    $("#key-input").value = localStorage.getItem(KEY_STORAGE) || "";
    $("#key-dialog").showModal();
  });
  $("#key-dialog").addEventListener("close", () => {
    const action = $("#key-dialog").returnValue;
    if (action === "save" && $("#key-input").value.trim()) localStorage.setItem(KEY_STORAGE, $("#key-input").value.trim());
    if (action === "clear") localStorage.removeItem(KEY_STORAGE);
    if (action) { state.me = undefined; render(); }
  });
  window.addEventListener("hashchange", render);
  render();
}

document.addEventListener("DOMContentLoaded", init);
