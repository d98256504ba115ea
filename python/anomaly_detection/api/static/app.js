// The live dashboard: sensors, the selected sensor's window with its anomalies, and
// alerts as they arrive over Server-Sent Events. Plain JS, no build step, no CDN.
// URLs are relative so that the page also works under a router prefix.
"use strict";

const state = { sensors: [], selected: null, alerts: [], hot: new Set(), lastId: 0 };
const $ = (id) => document.getElementById(id);
const MAX_ALERTS = 200;
const SVG = "http://www.w3.org/2000/svg";

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

// Local date and time, "2026-12-04 14:57:29": an alert may be days old.
function when(ts) {
  const d = new Date(ts * 1000), p = (n) => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " "
    + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
}

function fmt(x) {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a >= 1e6 || a < 1e-3) ? x.toExponential(2) : x.toFixed(a >= 100 ? 1 : 3);
}

// --- sensors --------------------------------------------------------------------------------
function renderSensors() {
  const filter = $("filter").value.trim().toLowerCase();
  const ul = $("sensors");
  ul.replaceChildren();
  for (const name of state.sensors) {
    if (filter && !name.toLowerCase().includes(filter)) continue;
    const li = document.createElement("li");
    li.textContent = name;
    li.title = name;
    li.dataset.sensor = name;
    if (name === state.selected) li.classList.add("selected");
    if (state.hot.has(name)) li.classList.add("hot");
    li.onclick = () => select(name);
    ul.appendChild(li);
  }
  $("sensor-count").textContent = state.sensors.length;
}

async function refreshSensors() {
  try {
    state.sensors = (await getJSON("api/sensors")).sensors;
    renderSensors();
  } catch (e) { /* the status pill reports outages */ }
}

function select(name) {
  state.selected = name;
  renderSensors();
  refreshChart();
}

// --- the chart ------------------------------------------------------------------------------
async function refreshChart() {
  const name = state.selected;
  if (!name) return;
  let win, page;
  try {
    [win, page] = await Promise.all([
      getJSON("api/sensors/" + encodeURIComponent(name) + "/window"),
      getJSON("api/anomalies?limit=1000&sensor=" + encodeURIComponent(name)),
    ]);
  } catch (e) { return; }
  if (name !== state.selected) return;
  drawChart(name, win, page.items);
}

function drawChart(name, win, anomalies) {
  const svg = $("chart");
  svg.replaceChildren();
  $("chart-title").textContent = name;
  const v = win.values, t = win.timestamps;
  if (!v.length) return;
  const W = 800, H = 320, P = 28;
  const t0 = t[0], t1 = t[t.length - 1] === t0 ? t0 + 1 : t[t.length - 1];
  const shown = anomalies.filter((a) => a.timestamp >= t0 && a.timestamp <= t1);
  const all = v.concat(shown.map((a) => a.value));
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi === lo) { hi += 1; lo -= 1; }
  const x = (ts) => P + ((ts - t0) / (t1 - t0)) * (W - 2 * P);
  const y = (val) => H - P - ((val - lo) / (hi - lo)) * (H - 2 * P);
  const s = win.stats || {};
  if (Number.isFinite(s.mean) && Number.isFinite(s.stddev)) {
    const band = document.createElementNS(SVG, "rect");
    const top = y(Math.min(hi, s.mean + 3 * s.stddev)), bottom = y(Math.max(lo, s.mean - 3 * s.stddev));
    band.setAttribute("class", "band");
    band.setAttribute("x", P); band.setAttribute("width", W - 2 * P);
    band.setAttribute("y", top); band.setAttribute("height", Math.max(0, bottom - top));
    svg.appendChild(band);
  }
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("class", "line");
  line.setAttribute("points", v.map((val, i) => x(t[i]).toFixed(1) + "," + y(val).toFixed(1)).join(" "));
  svg.appendChild(line);
  for (const a of shown) {
    const c = document.createElementNS(SVG, "circle");
    c.setAttribute("class", "anomaly");
    c.setAttribute("cx", x(a.timestamp)); c.setAttribute("cy", y(a.value)); c.setAttribute("r", 5);
    c.dataset.id = a.id;
    const tip = document.createElementNS(SVG, "title");
    tip.textContent = fmt(a.value) + " (score " + fmt(a.score) + ", " + a.method + ")";
    c.appendChild(tip);
    svg.appendChild(c);
  }
  for (const [val, yy] of [[hi, P - 8], [lo, H - P + 16]]) {
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", 4); label.setAttribute("y", yy);
    label.textContent = fmt(val);
    svg.appendChild(label);
  }
  $("chart-stats").textContent = v.length + " points in window · " + shown.length + " anomalies marked"
    + (Number.isFinite(s.mean) ? " · mean " + fmt(s.mean) : "");
}

// --- alerts ---------------------------------------------------------------------------------
function alertItem(a, fresh) {
  const li = document.createElement("li");
  li.className = "alert " + a.severity + (fresh ? " fresh" : "");
  li.dataset.sensor = a.sensor_name;
  li.dataset.id = a.id;
  const sensor = document.createElement("div");
  sensor.className = "sensor";
  sensor.textContent = a.sensor_name;
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = a.severity + " · value " + fmt(a.value) + " (expected " + fmt(a.expected) + ") · "
    + a.method + " · " + when(a.timestamp);
  li.append(sensor, meta);
  li.onclick = () => select(a.sensor_name);
  return li;
}

// Alert ids are integers (one process) or Redis stream ids "<ms>-<seq>" (several workers).
function idAfter(a, b) {
  const [am, as = 0] = String(a).split("-").map(Number);
  const [bm, bs = 0] = String(b).split("-").map(Number);
  return am > bm || (am === bm && as > bs);
}

function addAlert(a, fresh) {
  if (!idAfter(a.id, state.lastId)) return;
  state.lastId = a.id;
  state.alerts.unshift(a);
  state.hot.add(a.sensor_name);
  const ul = $("alerts");
  ul.insertBefore(alertItem(a, fresh), ul.firstChild);
  while (ul.children.length > MAX_ALERTS) ul.removeChild(ul.lastChild);
  $("alert-count").textContent = state.alerts.length;
  if (!state.selected && fresh) autoSelect();
  else if (a.sensor_name === state.selected) refreshChart();
  if (!state.sensors.includes(a.sensor_name)) refreshSensors(); else renderSensors();
}

// With nothing selected, show the sensor of the newest alert whose point is still in that
// sensor's window (an alert that has left its window would leave the chart without a marker).
let autoSelecting = false;
async function autoSelect() {
  if (state.selected || autoSelecting) return;
  autoSelecting = true;
  const alerts = state.alerts.slice();  // newest first
  try {
    const tried = new Set();
    for (const a of alerts) {
      if (state.selected || tried.size >= 20) return;
      if (tried.has(a.sensor_name)) continue;  // its newest alert was not in the window
      tried.add(a.sensor_name);
      let win;
      try {
        win = await getJSON("api/sensors/" + encodeURIComponent(a.sensor_name) + "/window");
      } catch (e) { continue; }  // a sensor reset since its alert
      if (win.timestamps.length && a.timestamp >= win.timestamps[0]) {
        if (!state.selected) select(a.sensor_name);
        return;
      }
    }
  } finally {
    autoSelecting = false;
  }
  if (!state.selected && state.alerts.length !== alerts.length) autoSelect();  // alerts came meanwhile
}

async function loadRecentAlerts() {
  try {
    const page = await getJSON("api/anomalies?limit=50");
    for (const a of page.items.slice().reverse()) addAlert(a, false);
    await autoSelect();
  } catch (e) { /* retried by the stream */ }
}

function connectStream() {
  // EventSource reconnects by itself and sends Last-Event-ID, so nothing is missed.
  const es = new EventSource("api/alerts/stream?since=" + state.lastId);
  es.addEventListener("anomaly", (ev) => addAlert(JSON.parse(ev.data), true));
  es.onopen = () => document.body.dataset.stream = "open";
  es.onerror = () => document.body.dataset.stream = "reconnecting";
}

// --- health ---------------------------------------------------------------------------------
async function refreshHealth() {
  const pill = $("status");
  try {
    const h = await getJSON("health");
    pill.textContent = h.status + " · " + h.store.store + " store";
    pill.className = "pill " + h.status;
    $("counts").textContent = (h.store.sensors ?? state.sensors.length) + " sensors · "
      + h.anomalies_count + " anomalies · up " + Math.round(h.uptime_seconds) + " s · v" + h.version;
  } catch (e) {
    pill.textContent = "unreachable";
    pill.className = "pill down";
  }
}

$("filter").addEventListener("input", renderSensors);
(async () => {
  await Promise.all([refreshSensors(), refreshHealth(), loadRecentAlerts()]);
  connectStream();
  setInterval(refreshSensors, 2000);
  setInterval(refreshHealth, 3000);
  setInterval(refreshChart, 1000);
  document.body.dataset.ready = "true";
})();
