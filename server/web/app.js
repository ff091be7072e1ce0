// hwLedger dashboard: one page, plain DOM, served by hwledger-server. Every figure comes from the
// REST API with the caller's own credentials: a bearer token kept in this tab's sessionStorage
// (never in a URL, never logged) or an admin client certificate the browser presents. Nothing
// here writes HTML from data: every text goes through textContent.

const TOKEN_KEY = "hwl.token";
const PAGE = 50;
const ROLES = { viewer: 1, operator: 2, admin: 3 };

const state = { who: null, stream: null, listeners: new Set(), timers: [], aborts: [] };

// ---- DOM helpers ---------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (id) => document.getElementById(id);

function fmtBytes(b) {
  if (b === null || b === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = Number(b);
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
}
const fmtNum = (v, d = 1, unit = "") => (v === null || v === undefined ? "–" : `${Number(v).toFixed(d)}${unit}`);
function fmtTime(ms) {
  if (!ms) return "–";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}
function fmtAgo(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
function fmtDuration(ms) {
  if (ms === null || ms === undefined || ms < 0) return "–";
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
const can = (role) => state.who && ROLES[state.who.role] >= ROLES[role];
const announce = (text) => { $("status").textContent = text; };

// ---- API -----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function headers(extra) {
  const hd = Object.assign({}, extra || {});
  const t = sessionStorage.getItem(TOKEN_KEY);
  if (t) hd.Authorization = `Bearer ${t}`;
  return hd;
}

async function api(path, opts = {}) {
  const init = { method: opts.method || "GET", headers: headers(opts.body ? { "Content-Type": "application/json" } : {}), signal: opts.signal, cache: "no-store" };
  if (opts.body) init.body = JSON.stringify(opts.body);
  const r = await fetch(path, init);
  const text = await r.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { doc = null; }
  if (!r.ok) {
    const msg = (doc && doc.error && (doc.error.message || doc.error)) || text || r.statusText;
    if (r.status === 401 && !opts.quiet401) signOut("Your credentials were refused: sign in again.");
    throw new ApiError(r.status, typeof msg === "string" ? msg : JSON.stringify(msg));
  }
  return doc;
}

// Reads a streamed response (text/event-stream or plain text) chunk by chunk until aborted.
async function readStream(path, onChunk, signal) {
  const r = await fetch(path, { headers: headers(), signal, cache: "no-store" });
  if (!r.ok) throw new ApiError(r.status, await r.text());
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onChunk(dec.decode(value, { stream: true }));
  }
}

// The ledger's live events, one stream for the whole page; views subscribe while they show.
function startEvents() {
  if (state.stream) return;
  const ctl = new AbortController();
  state.stream = ctl;
  let after = null;
  const run = async () => {
    while (!ctl.signal.aborted) {
      try {
        if (after === null) {
          const head = await api("/v1/health");
          after = head.events;
        }
        let buf = "";
        await readStream(`/v1/events/stream?after=${after}`, (chunk) => {
          buf += chunk;
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
            if (!data) continue;
            try {
              const ev = JSON.parse(data);
              after = Math.max(after, ev.seq);
              for (const fn of state.listeners) fn(ev);
            } catch { /* a partial or foreign block */ }
          }
        }, ctl.signal);
      } catch (e) {
        if (ctl.signal.aborted) return;
        if (e.status === 401) { signOut("Your credentials were refused: sign in again."); return; }
      }
      await new Promise((res) => setTimeout(res, 2000));
    }
  };
  run();
}
function onEvent(fn) {
  state.listeners.add(fn);
  return () => state.listeners.delete(fn);
}

// ---- Session -------------------------------------------------------------------------------

async function whoami() {
  try {
    const w = await api("/v1/whoami", { quiet401: true });
    return w && w.signed_in ? w : null;
  } catch { return null; }
}

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  const who = await whoami();
  if (!who) {
    sessionStorage.removeItem(TOKEN_KEY);
    return false;
  }
  state.who = who;
  return true;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.who = null;
  if (state.stream) { state.stream.abort(); state.stream = null; }
  clearView();
  showSignIn(message || "");
}

function showSignIn(message) {
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  $("view").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  $("token").value = "";
  $("token").focus();
}

function showApp() {
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("signout").hidden = false;
  $("view").hidden = false;
  $("who").textContent = `${state.who.actor} (${state.who.role})`;
  startEvents();
  route();
}

// ---- Router --------------------------------------------------------------------------------

function clearView() {
  for (const t of state.timers) clearInterval(t);
  for (const a of state.aborts) a.abort();
  for (const c of state.cleanups || []) c();
  state.timers = [];
  state.aborts = [];
  state.cleanups = [];
  $("view").replaceChildren();
}
const every = (ms, fn) => state.timers.push(setInterval(fn, ms));
const abortable = () => { const a = new AbortController(); state.aborts.push(a); return a; };
const cleanup = (fn) => (state.cleanups = state.cleanups || []).push(fn);

const routes = [
  [/^#\/fleet$/, viewFleet],
  [/^#\/host\/([^/]+)$/, viewHost],
  [/^#\/gpu\/([^/]+)\/([^/]+)$/, viewGpu],
  [/^#\/jobs$/, viewJobs],
  [/^#\/job\/([^/]+)$/, viewJob],
  [/^#\/planner$/, viewPlanner],
  [/^#\/rentals$/, viewRentals],
  [/^#\/evidence$/, viewEvidence],
  [/^#\/ledger$/, viewLedger],
];

function route() {
  if (!state.who) return;
  const hash = location.hash || "#/fleet";
  clearView();
  for (const a of document.querySelectorAll("nav a")) {
    const here = hash === a.getAttribute("href") || hash.startsWith(a.getAttribute("href").replace(/s$/, "/"));
    if (here) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  for (const [re, fn] of routes) {
    const m = hash.match(re);
    if (m) {
      const view = $("view");
      Promise.resolve(fn(view, ...m.slice(1).map(decodeURIComponent))).catch((e) => {
        view.append(h("p", { class: "error", role: "alert" }, `Could not load this view: ${e.message}`));
      }).finally(() => {
        const h1 = view.querySelector("h1");
        if (h1) { h1.tabIndex = -1; h1.focus({ preventScroll: true }); }
      });
      return;
    }
  }
  location.hash = "#/fleet";
}

// A table with a caption, head and rows; `cols` are [header, (row) => cell, numeric?].
function table(caption, cols, rows, attrs = {}) {
  return h("div", { class: "tablewrap" }, h("table", attrs,
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, cols.map(([t, , num]) => h("th", { scope: "col", class: num ? "num" : null }, t)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, cols.map(([, f, num]) => {
      const v = f(r);
      return h("td", { class: num ? "num" : null }, v instanceof Node ? v : String(v ?? "–"));
    }))))));
}

// Client-side pages of a list: only the current page is in the DOM.
function pager(rows, render, label) {
  let page = 0;
  const holder = h("div");
  const info = h("span", { "aria-live": "polite" });
  const prev = h("button", { type: "button", onclick: () => { page--; draw(); } }, "Previous");
  const next = h("button", { type: "button", onclick: () => { page++; draw(); } }, "Next");
  const draw = () => {
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    page = Math.min(Math.max(0, page), pages - 1);
    holder.replaceChildren(render(rows.slice(page * PAGE, (page + 1) * PAGE)));
    info.textContent = `${label} ${rows.length ? page * PAGE + 1 : 0}–${Math.min(rows.length, (page + 1) * PAGE)} of ${rows.length}`;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  };
  draw();
  return { el: h("div", {}, holder, h("div", { class: "pager" }, prev, info, next)), set(r) { rows = r; draw(); } };
}

function card(k, v, id) { return h("div", { class: "card" }, h("div", { class: "v", id }, v), h("div", { class: "k" }, k)); }
function stateClass(s) {
  if (["reachable", "ready", "running", "enrolled", "exited", "ok"].includes(s)) return "ok";
  if (["unreachable", "revoked", "failed", "lost", "dispatch_failed", "orphan"].includes(s) || String(s).startsWith("host_")) return "bad";
  return "warn";
}
const badge = (s) => h("span", { class: stateClass(s) }, s);

// ---- Fleet ---------------------------------------------------------------------------------

async function viewFleet(view) {
  view.append(h("h1", {}, "Fleet"));
  const cards = h("div", { class: "cards" });
  view.append(cards);
  const hostsBox = h("section", { "aria-labelledby": "hosts-h" }, h("h2", { id: "hosts-h" }, "Hosts"));
  const gpusBox = h("section", { "aria-labelledby": "gpus-h" }, h("h2", { id: "gpus-h" }, "GPUs"), h("p", { class: "muted" }, "Live figures of this page's hosts, refreshed every 5 s."));
  view.append(hostsBox, gpusBox);
  // Server-side pages of hosts (after=<id>&limit): the first page renders before the rest exist.
  const cursors = [""];
  let page = 0;
  let hosts = [];
  const info = h("span", { "aria-live": "polite" });
  const prev = h("button", { type: "button", onclick: () => { page--; load(); } }, "Previous");
  const next = h("button", { type: "button", onclick: () => { page++; load(); } }, "Next");
  const hostTable = h("div");
  const gpuTable = h("div");
  hostsBox.append(hostTable, h("div", { class: "pager" }, prev, info, next));
  gpusBox.append(gpuTable);
  const renderHosts = () => {
    hostTable.replaceChildren(table(`Hosts ${page * PAGE + 1}–${page * PAGE + hosts.length}`, [
      ["Host", (x) => h("a", { href: `#/host/${encodeURIComponent(x.id)}` }, x.name || x.id)],
      ["Kind", (x) => x.kind],
      ["State", (x) => badge(x.state)],
      ["Last seen", (x) => h("span", { title: fmtTime(x.last_seen_ms) }, fmtAgo(x.last_seen_ms))],
      ["Certificate expires", (x) => (x.cert_not_after_ms ? fmtTime(x.cert_not_after_ms) : "–")],
      ["GPUs", (x) => (x.gpus || []).length, true],
    ], hosts, { id: "hosts-table" }));
    const gpus = hosts.flatMap((x) => (x.gpus || []).map((g) => ({ host: x, g })));
    gpuTable.replaceChildren(table(`GPUs of hosts ${page * PAGE + 1}–${page * PAGE + hosts.length}`, [
      ["Host", (r) => r.host.name || r.host.id],
      ["GPU", (r) => h("a", { href: `#/gpu/${encodeURIComponent(r.host.id)}/${encodeURIComponent(r.g.uuid)}` }, `${r.g.index}: ${r.g.name}`)],
      ["Utilisation", (r) => fmtNum(r.g.sample && r.g.sample.utilization_gpu_pct, 0, " %"), true],
      ["Memory used", (r) => `${fmtBytes(r.g.sample && r.g.sample.memory_used_bytes)} / ${fmtBytes(r.g.memory_total_bytes)}`, true],
      ["Power", (r) => fmtNum(r.g.sample && r.g.sample.power_w, 1, " W"), true],
      ["Temperature", (r) => fmtNum(r.g.sample && r.g.sample.temperature_c, 0, " °C"), true],
      ["Sampled", (r) => (r.g.sample ? fmtAgo(r.g.sample.time_ms) : "–")],
    ], gpus, { id: "gpus-table" }));
  };
  const load = async () => {
    const after = cursors[page] || "";
    const doc = await api(`/v1/hosts?limit=${PAGE}${after ? `&after=${encodeURIComponent(after)}` : ""}`);
    hosts = doc.hosts;
    if (doc.next_after) cursors[page + 1] = doc.next_after;
    prev.disabled = page === 0;
    next.disabled = !doc.next_after;
    info.textContent = `Page ${page + 1}`;
    renderHosts();
  };
  const summary = async () => {
    const c = await api("/v1/collector");
    cards.replaceChildren(card("hosts", c.hosts, "n-hosts"), card("reachable", c.reachable, "n-reachable"), card("samples recorded", c.telemetry_samples));
  };
  await Promise.all([load(), summary()]);
  every(5000, () => { load().catch(() => {}); summary().catch(() => {}); });
  cleanup(onEvent((e) => { if (e.type.startsWith("host.")) load().catch(() => {}); }));
}

async function viewHost(view, id) {
  const x = await api(`/v1/hosts/${encodeURIComponent(id)}`);
  view.append(h("h1", {}, `Host ${x.name || x.id}`),
    table("Host", [["Field", (r) => r[0]], ["Value", (r) => r[1]]], [
      ["id", x.id], ["kind", x.kind], ["state", x.state], ["address", x.address],
      ["enrolled", fmtTime(x.enrolled_ms)], ["last seen", fmtAgo(x.last_seen_ms)],
      ["certificate serial", x.cert_serial || "–"], ["certificate expires", fmtTime(x.cert_not_after_ms)],
    ]),
    h("h2", {}, "GPUs"),
    table("GPUs", [
      ["GPU", (g) => h("a", { href: `#/gpu/${encodeURIComponent(x.id)}/${encodeURIComponent(g.uuid)}` }, `${g.index}: ${g.name}`)],
      ["UUID", (g) => h("span", { class: "mono" }, g.uuid)],
      ["Memory", (g) => fmtBytes(g.memory_total_bytes), true],
      ["Utilisation", (g) => fmtNum(g.sample && g.sample.utilization_gpu_pct, 0, " %"), true],
      ["Power", (g) => fmtNum(g.sample && g.sample.power_w, 1, " W"), true],
    ], x.gpus || []));
}

// ---- A GPU over time -----------------------------------------------------------------------

const RANGES = { hour: [3600e3, 15e3], day: [86400e3, 300e3], month: [30 * 86400e3, 3600e3] };
const SERIES = [
  ["util_pct", "Utilisation", "%", "--c1"],
  ["mem_used_bytes", "Memory used", "GiB", "--c4"],
  ["power_w", "Power", "W", "--c2"],
  ["temp_c", "Temperature", "°C", "--c3"],
  ["energy_wh", "Energy per step", "Wh", "--c1"],
];

async function viewGpu(view, host, uuid) {
  view.append(h("h1", {}, `GPU ${uuid} on ${host}`));
  const pick = h("select", { id: "range", "aria-label": "Period" }, Object.keys(RANGES).map((k) => h("option", { value: k }, `Last ${k}`)));
  const body = h("div");
  view.append(h("div", { class: "row" }, h("label", { for: "range" }, "Period"), pick), body);
  const draw = async () => {
    const [span, step] = RANGES[pick.value];
    const to = Date.now();
    const doc = await api(`/v1/telemetry?host=${encodeURIComponent(host)}&gpu=${encodeURIComponent(uuid)}&from=${to - span}&to=${to}&step=${step}`);
    const pts = (doc.series[0] && doc.series[0].points) || [];
    const css = getComputedStyle(document.documentElement);
    const charts = h("div", { class: "charts" });
    for (const [key, title, unit, color] of SERIES) {
      const xs = pts.map((p) => p.t / 1000);
      const ys = pts.map((p) => (p[key] === undefined ? null : key === "mem_used_bytes" ? p[key] / 2 ** 30 : p[key]));
      const fig = h("figure", { class: "chart" }, h("figcaption", {}, `${title} (${unit}), ${doc.source} roll-ups, step ${fmtDuration(doc.step_ms)}`));
      const box = h("div", { role: "img", "aria-label": `${title} chart; the numbers are in the table below` });
      fig.append(box);
      charts.append(fig);
      if (window.uPlot && pts.length) {
        // eslint-disable-next-line no-new
        new window.uPlot({
          width: 420, height: 180, legend: { show: true },
          scales: { x: { time: true, range: [(to - span) / 1000, to / 1000] } },
          series: [{}, { label: `${title} (${unit})`, stroke: css.getPropertyValue(color).trim(), width: 1.5 }],
          axes: [{ stroke: css.getPropertyValue("--muted").trim() }, { stroke: css.getPropertyValue("--muted").trim() }],
        }, [xs, ys], box);
      } else if (!pts.length) {
        box.append(h("p", { class: "muted" }, "No samples in this period."));
      }
    }
    const numbers = h("details", {}, h("summary", {}, `The numbers (${pts.length} points)`),
      table(`${uuid}: every point`, [
        ["Time", (p) => fmtTime(p.t)],
        ["Samples", (p) => p.samples, true],
        ["Utilisation %", (p) => fmtNum(p.util_pct, 1), true],
        ["Memory", (p) => fmtBytes(p.mem_used_bytes), true],
        ["Power W", (p) => fmtNum(p.power_w, 1), true],
        ["Temperature °C", (p) => fmtNum(p.temp_c, 0), true],
        ["Energy Wh", (p) => fmtNum(p.energy_wh, 3), true],
      ], pts.slice(-500)));
    body.replaceChildren(charts, numbers);
  };
  pick.addEventListener("change", () => draw().catch((e) => announce(e.message)));
  await draw();
  every(30000, () => draw().catch(() => {}));
}

// ---- Jobs ----------------------------------------------------------------------------------

async function viewJobs(view) {
  view.append(h("h1", {}, "Jobs"));
  if (can("operator")) view.append(jobForm());
  const list = pager([], (rows) => table("Jobs, newest first", [
    ["Job", (j) => h("a", { href: `#/job/${encodeURIComponent(j.id)}` }, j.id)],
    ["Name", (j) => j.name],
    ["State", (j) => badge(j.state)],
    ["Host", (j) => j.host || "–"],
    ["GPUs", (j) => (Array.isArray(j.gpus) ? j.gpus.length : 0), true],
    ["Started", (j) => fmtTime(j.started_ms)],
    ["Duration", (j) => (j.started_ms ? fmtDuration((j.ended_ms || Date.now()) - j.started_ms) : "–"), true],
  ], rows, { id: "jobs-table" }), "Jobs");
  view.append(h("section", {}, list.el));
  const load = async () => {
    const doc = await api("/v1/jobs");
    list.set(doc.jobs.slice().sort((a, b) => (b.submitted_ms || 0) - (a.submitted_ms || 0)));
  };
  await load();
  cleanup(onEvent((e) => { if (e.type.startsWith("job.")) load().catch(() => {}); }));
}

function jobForm() {
  const err = h("p", { class: "error", role: "alert" });
  const f = h("form", { id: "job-form", "aria-labelledby": "submit-h" },
    h("h2", { id: "submit-h" }, "Submit a job"),
    h("div", { class: "row" },
      h("div", {}, h("label", { for: "job-name" }, "Name"), h("input", { id: "job-name", name: "name", required: true })),
      h("div", {}, h("label", { for: "job-gpus" }, "GPUs"), h("input", { id: "job-gpus", name: "gpus", type: "number", min: 0, max: 64, value: 1 })),
      h("div", {}, h("label", { for: "job-host" }, "Host (optional)"), h("input", { id: "job-host", name: "host", placeholder: "any host that fits" })),
      h("div", {}, h("label", { for: "job-port" }, "Port (readiness)"), h("input", { id: "job-port", name: "port", type: "number", min: 1, max: 65535 })),
      h("div", {}, h("label", { for: "job-ready" }, "Ready path"), h("input", { id: "job-ready", name: "ready_path", placeholder: "/health" })),
      h("div", {}, h("label", { for: "job-max" }, "Max runtime (s)"), h("input", { id: "job-max", name: "max_runtime_s", type: "number", min: 0 }))),
    h("label", { for: "job-cmd" }, "Command, one argument per line"),
    h("textarea", { id: "job-cmd", name: "command", required: true, rows: 3 }),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Submit")),
    err);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    const d = new FormData(f);
    const body = { name: d.get("name"), command: String(d.get("command")).split("\n").map((s) => s.trim()).filter(Boolean), gpus: Number(d.get("gpus") || 0) };
    if (d.get("host")) body.host = String(d.get("host")).trim();
    if (d.get("port")) body.port = Number(d.get("port"));
    if (d.get("ready_path")) body.ready_path = d.get("ready_path");
    if (d.get("max_runtime_s")) body.max_runtime_s = Number(d.get("max_runtime_s"));
    try {
      const r = await api("/v1/jobs", { method: "POST", body });
      location.hash = `#/job/${encodeURIComponent(r.id || r.job_id)}`;
    } catch (e) { err.textContent = e.message; }
  });
  return f;
}

async function viewJob(view, id) {
  const title = h("h1", {}, `Job ${id}`);
  const facts = h("div");
  const actions = h("div", { class: "row" });
  const usage = h("section", { "aria-labelledby": "usage-h" }, h("h2", { id: "usage-h" }, "Usage and evidence"));
  const usageBody = h("div");
  usage.append(usageBody);
  const logs = h("pre", { class: "log", id: "job-log", tabindex: 0, "aria-label": "Job log", "aria-live": "off" });
  const eventsBox = h("div");
  view.append(title, facts, actions, h("h2", {}, "Log (following)"), logs, usage, h("h2", {}, "Events"), eventsBox);
  const load = async () => {
    const j = await api(`/v1/jobs/${encodeURIComponent(id)}`);
    facts.replaceChildren(table("Job", [["Field", (r) => r[0]], ["Value", (r) => (r[1] instanceof Node ? r[1] : String(r[1] ?? "–"))]], [
      ["state", h("span", { id: "job-state", class: stateClass(j.state) }, j.state)], ["name", j.name], ["host", j.host || "–"], ["GPUs", (j.gpus || []).join(", ") || "none"],
      ["submitted by", j.submitted_by], ["started", fmtTime(j.started_ms)], ["ready", fmtTime(j.ready_ms)], ["ended", fmtTime(j.ended_ms)],
      ["exit code", j.exit_code ?? "–"], ["reason", j.reason || "–"],
    ], { id: "job-facts" }));
    const terminal = ["exited", "failed", "cancelled", "lost", "dispatch_failed"].includes(j.state);
    actions.replaceChildren();
    if (can("operator") && !terminal) {
      actions.append(h("button", { type: "button", class: "danger", id: "cancel-job", onclick: async (ev) => {
        ev.target.disabled = true;
        try { await api(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" }); announce("Cancel requested"); } catch (e) { announce(e.message); ev.target.disabled = false; }
      } }, "Cancel job"));
    }
    const u = (j.usage || []).slice(-1)[0];
    usageBody.replaceChildren(u ? table(`Latest usage (event ${u.seq}, ${u.final ? "final" : "so far"})`, [["Figure", (r) => r[0]], ["Value", (r) => r[1]]], [
      ["energy", `${fmtNum(u.energy_wh, 1, " Wh")} (${u.energy_source})`], ["GPU-hours", fmtNum(u.gpu_hours, 3)],
      ["utilisation mean / max", `${fmtNum(u.util_mean_pct, 1, " %")} / ${fmtNum(u.util_max_pct, 1, " %")}`],
      ["memory max", `${fmtBytes(u.mem_used_max_bytes)} (${u.memory_source === "process" ? "the job's processes" : u.memory_source === "mixed" ? "mixed" : "whole GPU"})`],
      ["window", `${fmtTime(u.from_ms)} – ${fmtTime(u.to_ms)}`],
    ]) : h("p", { class: "muted" }, "No usage recorded yet: it is written every full hour and when the job ends."));
    const evs = await api(`/v1/events?stream=${encodeURIComponent(`job/${id}`)}&limit=1000`);
    eventsBox.replaceChildren(eventsTable(evs.events, "The job's events"));
    return terminal;
  };
  await load();
  cleanup(onEvent((e) => { if (e.stream === `job/${id}`) load().catch(() => {}); }));
  const ctl = abortable();
  readStream(`/v1/jobs/${encodeURIComponent(id)}/logs?follow=true&tail=200`, (chunk) => {
    const atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
    logs.append(document.createTextNode(chunk));
    if (logs.textContent.length > 400000) logs.textContent = logs.textContent.slice(-200000);
    if (atEnd) logs.scrollTop = logs.scrollHeight;
  }, ctl.signal).catch((e) => { if (!ctl.signal.aborted) logs.append(document.createTextNode(`\n[log: ${e.message}]`)); });
}

function eventsTable(events, caption) {
  return table(caption, [
    ["Seq", (e) => e.seq, true],
    ["Time", (e) => fmtTime(e.time_ms)],
    ["Type", (e) => e.type],
    ["Stream", (e) => e.stream],
    ["Actor", (e) => e.actor],
    ["Data", (e) => h("span", { class: "mono" }, JSON.stringify(e.data).slice(0, 300))],
  ], events, { class: "events" });
}

// ---- Planner -------------------------------------------------------------------------------

async function viewPlanner(view) {
  view.append(h("h1", {}, "Planner"));
  const err = h("p", { class: "error", role: "alert" });
  const out = h("div");
  const served = (await api("/v1/models")).models;
  const f = h("form", { id: "plan-form" },
    h("div", { class: "row" },
      h("div", {}, h("label", { for: "plan-server" }, "A config on the server"),
        h("select", { id: "plan-server" }, h("option", { value: "" }, served.length ? "(upload or paste one)" : "(none: the server has no model_dir)"),
          served.map((m) => h("option", { value: m.name }, m.name)))),
      h("div", {}, h("label", { for: "plan-file" }, "Or upload a config.json"), h("input", { id: "plan-file", type: "file", accept: ".json,application/json" })),
      h("div", {}, h("label", { for: "plan-context" }, "Context (tokens)"), h("input", { id: "plan-context", type: "number", min: 1, value: 8192, required: true })),
      h("div", {}, h("label", { for: "plan-batch" }, "Batch"), h("input", { id: "plan-batch", type: "number", min: 1, value: 1 })),
      h("div", {}, h("label", { for: "plan-kv" }, "KV format"), h("select", { id: "plan-kv" }, ["auto", "fp16", "bf16", "fp8", "int8", "int4"].map((k) => h("option", { value: k }, k))))),
    h("label", { for: "plan-config" }, "Or paste the config.json"),
    h("textarea", { id: "plan-config", rows: 6, spellcheck: "false" }),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Plan and place")),
    err);
  view.append(f, out);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    out.replaceChildren();
    const body = { context: Number($("plan-context").value), batch: Number($("plan-batch").value || 1) };
    if ($("plan-server").value) {
      body.model_name = $("plan-server").value;
    } else {
      let text = $("plan-config").value;
      const file = $("plan-file").files[0];
      if (file) text = await file.text();
      try { body.model = JSON.parse(text); } catch (e) { err.textContent = `The config is not JSON: ${e.message}`; return; }
    }
    if ($("plan-kv").value !== "auto") body.kv = $("plan-kv").value;
    try {
      const plan = await api("/v1/plan", { method: "POST", body });
      const rows = [
        ["model", plan.model], ["architecture", plan.architecture],
        ["parameters", Number(plan.params_total).toLocaleString("en")],
        ["weights", `${fmtBytes(plan.weights_bytes)} (${plan.weights_format})`], ["KV cache", `${fmtBytes(plan.kv_bytes)} (${plan.kv_format})`],
        ["recurrent state", fmtBytes(plan.state_bytes)], ["activations", fmtBytes(plan.activations_bytes)], ["overhead", fmtBytes(plan.overhead_bytes)],
        ["total per GPU", fmtBytes(plan.total_bytes)], ["max context", plan.max_context ?? "–"],
      ].filter((r) => r[1] !== undefined);
      out.append(h("h2", {}, "Breakdown"), table("Memory plan", [["Part", (r) => r[0]], ["Size", (r) => String(r[1]), true]], rows, { id: "plan-table" }));
      const pl = await api("/v1/placements", { method: "POST", body });
      out.append(h("h2", {}, "Where it fits now"), table("Owned hosts, best first", [
        ["Host", (p) => p.name || p.host],
        ["GPUs needed", (p) => p.gpus_needed, true],
        ["Per GPU", (p) => fmtBytes(p.per_gpu_bytes), true],
        ["Headroom", (p) => fmtBytes(p.headroom_bytes < 0 ? null : p.headroom_bytes), true],
        ["Fits", (p) => (p.fits ? h("span", { class: "ok" }, "yes") : h("span", { class: "bad" }, "no"))],
        ["Why", (p) => p.reason || p.basis || ""],
      ], pl.placements || [], { id: "placements-table" }));
      out.append(table("Rental offers it fits, cheapest first", [
        ["Provider", (o) => o.provider], ["GPU", (o) => o.gpu_model], ["GPUs", (o) => o.gpu_count, true], ["TP", (o) => o.tp, true],
        ["$/hour", (o) => fmtNum(o.price_hour_usd, 3), true], ["Region", (o) => o.region || "–"],
      ], pl.offers || []));
      const errs = Object.entries(pl.offer_errors || {});
      if (errs.length) out.append(h("p", { class: "muted" }, `Offers not listed: ${errs.map(([k, v]) => `${k}: ${v}`).join("; ")}`));
    } catch (e) { err.textContent = e.message; }
  });
}

// ---- Rentals and costs ---------------------------------------------------------------------

async function viewRentals(view) {
  view.append(h("h1", {}, "Rentals and costs"));
  const [r, costs] = await Promise.all([api("/v1/rentals"), api(`/v1/costs?from=${Date.now() - 30 * 86400e3}&group_by=provider`)]);
  const running = r.rentals.filter((x) => !["terminated", "failed"].includes(x.state));
  const orphans = r.rentals.filter((x) => x.state === "orphan");
  view.append(h("div", { class: "cards" },
    card("running rentals", running.length), card("orphans", orphans.length),
    card("cost, last 30 days", `$${fmtNum(costs.total_usd, 2)}`),
    r.budget ? card("spending now", `$${fmtNum(r.budget.hourly_usd, 2)}/h${r.budget.max_hourly_usd ? ` of $${fmtNum(r.budget.max_hourly_usd, 2)}` : ", no cap"}`, "budget-hourly") : null,
    r.budget ? card("spent on rentals", `$${fmtNum(r.budget.total_usd, 2)}${r.budget.max_total_usd ? ` of $${fmtNum(r.budget.max_total_usd, 2)}` : ", no cap"}`, "budget-total") : null));
  view.append(h("h2", {}, "Rentals"), table("Rentals", [
    ["Rental", (x) => x.id], ["Provider", (x) => x.provider], ["State", (x) => badge(x.state)], ["Host", (x) => x.host_id || "–"],
    ["GPUs", (x) => x.gpu_count, true], ["$/hour", (x) => fmtNum(x.price_hour_usd, 3), true], ["Accrued $", (x) => fmtNum(x.cost_to_now_usd ?? x.accrued_usd, 2), true],
    ["Since", (x) => fmtTime(x.requested_ms)],
  ], r.rentals, { id: "rentals-table" }));
  const pick = h("select", { id: "cost-group", "aria-label": "Group costs by" }, ["provider", "host", "job", "rental"].map((g) => h("option", { value: g }, g)));
  const days = h("select", { id: "cost-days", "aria-label": "Period" }, [30, 7, 1, 90].map((d) => h("option", { value: d }, `Last ${d} day${d > 1 ? "s" : ""}`)));
  const box = h("div");
  view.append(h("h2", {}, "Costs"), h("div", { class: "row" }, h("label", { for: "cost-group" }, "By"), pick, h("label", { for: "cost-days" }, "Period"), days), box);
  const draw = async () => {
    const c = await api(`/v1/costs?from=${Date.now() - Number(days.value) * 86400e3}&group_by=${pick.value}`);
    box.replaceChildren(table(`Costs by ${c.group_by}`, [
      [c.group_by, (g) => g[c.group_by] ?? "–"], ["$", (g) => fmtNum(g.amount_usd, 2), true],
      ["Events", (g) => h("span", { class: "mono" }, (g.event_seqs || []).slice(0, 8).join(", ") + ((g.event_seqs || []).length > 8 ? ", …" : ""))],
    ], c.groups || [], { id: "costs-table" }));
  };
  pick.addEventListener("change", () => draw().catch((e) => announce(e.message)));
  days.addEventListener("change", () => draw().catch((e) => announce(e.message)));
  await draw();
}

// ---- Evidence ------------------------------------------------------------------------------

async function viewEvidence(view) {
  view.append(h("h1", {}, "Evidence"));
  const pick = h("select", { id: "report-group", "aria-label": "Group by" }, ["job", "host", "gpu", "rental"].map((g) => h("option", { value: g }, g)));
  const days = h("select", { id: "report-days", "aria-label": "Period" }, [1, 7, 30].map((d) => h("option", { value: d }, `Last ${d} day${d > 1 ? "s" : ""}`)));
  const box = h("div");
  view.append(h("div", { class: "row" }, h("label", { for: "report-group" }, "Group by"), pick, h("label", { for: "report-days" }, "Period"), days), box);
  const draw = async () => {
    const to = Date.now();
    const rep = await api(`/v1/report?from=${to - Number(days.value) * 86400e3}&to=${to}&group_by=${pick.value}`);
    const key = { job: "job_id", host: "host_id", gpu: "gpu_uuid", rental: "rental" }[rep.group_by];
    box.replaceChildren(
      h("p", { class: "muted" }, `From ${rep.basis}. Every row names the ledger events it was computed from.`),
      h("div", { class: "cards" }, card("energy", fmtNum(rep.totals.energy_wh / 1000, 2, " kWh")), card("GPU-hours", fmtNum(rep.totals.gpu_hours, 1)),
        card("cost", rep.totals.cost_usd === null ? "unknown" : `$${fmtNum(rep.totals.cost_usd, 2)}`), card("idle events", rep.totals.idle_events), card("unaccounted use", rep.totals.unaccounted_use_events)),
      table(`Report by ${rep.group_by}`, [
        [rep.group_by, (r) => (rep.group_by === "job" ? h("a", { href: `#/job/${encodeURIComponent(r.job_id)}` }, r.job_id) : r[key])],
        ["Energy Wh", (r) => fmtNum(r.energy_wh, 1), true], ["Source", (r) => r.energy_source], ["GPU-hours", (r) => fmtNum(r.gpu_hours, 2), true],
        ["Util %", (r) => fmtNum(r.util_mean_pct, 1), true], ["Idle", (r) => (r.idle_fraction !== undefined ? fmtNum(r.idle_fraction === null ? null : 100 * r.idle_fraction, 0, " %") : r.idle_events)],
        ["Cost $", (r) => (r.cost_usd === null ? "–" : fmtNum(r.cost_usd, 2)), true], ["Unaccounted", (r) => r.unaccounted_use_events, true],
        ["Events", (r) => h("span", { class: "mono", title: (r.seqs || []).slice(0, 200).join(", ") }, `${(r.seqs || []).length} (${(r.seqs || []).slice(0, 3).join(", ")}${(r.seqs || []).length > 3 ? ", …" : ""})`)],
      ], rep.rows, { id: "report-table" }));
    const acc = await api("/v1/planner/accuracy");
    box.append(h("h2", {}, "Planner accuracy"), table("Observed against planned per-GPU memory", [
      ["Model", (g) => g.model], ["Engine", (g) => g.engine], ["Jobs", (g) => g.jobs, true],
      ["Mean error", (g) => fmtNum(100 * g.mean_relative_error, 1, " %"), true], ["Mean |error|", (g) => fmtNum(100 * g.mean_abs_relative_error, 1, " %"), true],
    ], acc.groups || []));
  };
  pick.addEventListener("change", () => draw().catch((e) => announce(e.message)));
  days.addEventListener("change", () => draw().catch((e) => announce(e.message)));
  await draw();
}

// ---- Ledger --------------------------------------------------------------------------------

async function viewLedger(view) {
  view.append(h("h1", {}, "Ledger"));
  const verifyBox = h("div", { id: "verify", "aria-live": "polite" });
  const run = h("button", { type: "button", id: "verify-button", class: "primary" }, "Verify the ledger now");
  view.append(h("section", { "aria-labelledby": "verify-h" }, h("h2", { id: "verify-h" }, "Integrity"), verifyBox, run));
  const verify = async () => {
    run.disabled = true;
    verifyBox.replaceChildren(h("p", {}, "Verifying every hash from genesis…"));
    try {
      const [v, cps] = await Promise.all([api("/v1/ledger/verify"), api("/v1/ledger/checkpoints?limit=1000")]);
      const last = (cps.checkpoints || []).slice(-1)[0];
      verifyBox.replaceChildren(table("Verification", [["Check", (r) => r[0]], ["Result", (r) => r[1]]], [
        ["status", h("strong", { class: v.ok ? "ok" : "bad", id: "verify-status" }, v.ok ? "verify ok" : `FAILED at seq ${v.first_bad_seq}: ${v.problem}`)],
        ["events", v.events], ["head seq", v.head_seq], ["head hash", h("span", { class: "mono" }, v.head_hash)],
        ["signed checkpoints checked", `${v.checkpoints_checked} (${v.checkpoints_ok ? "ok" : "bad"})`],
        ["last signed checkpoint", last ? `seq ${last.seq} at ${fmtTime(last.time_ms)}` : "none yet"],
      ]));
    } finally { run.disabled = false; }
  };
  run.addEventListener("click", () => verify().catch((e) => announce(e.message)));
  const streamF = h("input", { id: "filter-stream", placeholder: "job/…, host/…" });
  const typeF = h("input", { id: "filter-type", placeholder: "job.ready" });
  const live = h("div");
  view.append(h("h2", {}, "Events (live)"), h("div", { class: "row" },
    h("div", {}, h("label", { for: "filter-stream" }, "Stream starts with"), streamF),
    h("div", {}, h("label", { for: "filter-type" }, "Type"), typeF)), live);
  let events = [];
  const draw = () => {
    const s = streamF.value.trim();
    const t = typeF.value.trim();
    const shown = events.filter((e) => (!s || e.stream.startsWith(s)) && (!t || e.type === t)).slice(-PAGE).reverse();
    live.replaceChildren(eventsTable(shown, `The latest ${shown.length} events, newest first`));
    live.querySelector("table").id = "events-table";
  };
  const head = await api("/v1/health");
  const first = await api(`/v1/events?after=${Math.max(0, head.events - 200)}&limit=200`);
  events = first.events;
  draw();
  streamF.addEventListener("input", draw);
  typeF.addEventListener("input", draw);
  cleanup(onEvent((e) => {
    events.push(e);
    if (events.length > 2000) events = events.slice(-1000);
    draw();
  }));
  await verify();
}

// ---- Start ---------------------------------------------------------------------------------

window.addEventListener("hashchange", route);
$("signout").addEventListener("click", () => signOut("Signed out."));
$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const ok = await signIn($("token").value.trim());
  $("token").value = "";
  if (ok) showApp(); else showSignIn("That token was refused.");
});

(async () => {
  // A token from earlier in this tab, or an admin client certificate, signs in by itself.
  const who = await whoami();
  if (who) { state.who = who; showApp(); } else { sessionStorage.removeItem(TOKEN_KEY); showSignIn(""); }
})();
