// The fleet view's first render and the browser's memory (see tests/bench/dashboard). Each run
// is a fresh browser context: open the page, sign in, wait until the first page of hosts and all
// their GPUs' rows are in the DOM. Memory: the proportional set size (PSS) of every Chromium
// process under this one, and the page's JS heap, once the view has refreshed for 15 s, against
// the same browser with an empty page. The reference: the same browser showing a static page
// with the same rows (no script, no API).
import { readFileSync, readdirSync } from "node:fs";
import { chromium } from "playwright-core";

const URL = process.env.HWL_URL;
const TOKEN = process.env.HWL_ADMIN_TOKEN;
const RUNS = Number(process.env.HWL_RUNS || 5);

function descendants(root) {
  const kids = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch { /* gone */ }
  }
  const out = [];
  const todo = [...(kids.get(root) || [])];
  while (todo.length) {
    const p = todo.pop();
    out.push(p);
    todo.push(...(kids.get(p) || []));
  }
  return out;
}
function browserPssMiB() {
  let kb = 0;
  for (const pid of descendants(process.pid)) {
    try {
      const m = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8").match(/^Pss:\s+(\d+) kB/m);
      if (m) kb += Number(m[1]);
    } catch { /* gone */ }
  }
  return kb / 1024;
}
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const browser = await chromium.launch({
  executablePath: process.env.HWL_CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
// The PSS of every Chromium process with one page showing `open(page)`, after `settle` ms, and
// the page's JS heap; each in a fresh context, with the earlier ones' processes gone.
async function memoryWith(open, settle, https) {
  await new Promise((r) => setTimeout(r, 3000));
  const ctx = await browser.newContext({ ignoreHTTPSErrors: https, viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  await open(page);
  await page.waitForTimeout(settle);
  const cdp = await ctx.newCDPSession(page);
  await cdp.send("Performance.enable");
  const { metrics } = await cdp.send("Performance.getMetrics");
  const heap = (metrics.find((m) => m.name === "JSHeapUsedSize") || { value: 0 }).value / 2 ** 20;
  const pss = browserPssMiB();
  await ctx.close();
  return { pss, heap };
}
async function openDashboard(page) {
  await page.goto(`${URL}/`);
  await page.locator("#token").fill(TOKEN);
  await page.locator("#signin-form button[type=submit]").click();
  await page.waitForFunction(() => document.querySelectorAll("#hosts-table tbody tr").length === 50
    && document.querySelectorAll("#gpus-table tbody tr").length === 400, null, { timeout: 60000, polling: 10 });
}

const times = [];
let rowsHtml = "";
let css = "";
for (let i = 0; i < RUNS; i++) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  const t = performance.now();
  await openDashboard(page);
  times.push(performance.now() - t);
  if (i === RUNS - 1) {
    rowsHtml = await page.evaluate(() => document.querySelector("#hosts-table").outerHTML + document.querySelector("#gpus-table").outerHTML);
    css = await page.evaluate(async () => (await fetch("/ui/style.css")).text());
  }
  await ctx.close();
}
const staticPage = `<!doctype html><html><head><style>${css}</style></head><body>${rowsHtml}</body></html>`;
const refTimes = [];
for (let i = 0; i < RUNS; i++) {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  const t = performance.now();
  await page.setContent(staticPage);
  await page.waitForFunction(() => document.querySelectorAll("tbody tr").length === 450);
  refTimes.push(performance.now() - t);
  await ctx.close();
}
const blank = await memoryWith(async (p) => p.goto("about:blank"), 0, false);
const dash = await memoryWith(openDashboard, 15000, true);  // three refreshes of the live figures
const stat = await memoryWith(async (p) => p.setContent(staticPage), 0, false);
await browser.close();
const tr = median(times);
const rr = median(refTimes);
console.log(`fleet view, first render (open, sign in, 50 hosts and 400 GPU rows on screen): median ${tr.toFixed(0)} ms of ${RUNS} (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)})`);
console.log(`reference, a static page of the same rows: median ${rr.toFixed(0)} ms`);
console.log(`ratio first render / reference: ${(tr / rr).toFixed(1)}`);
console.log(`browser memory (PSS of all Chromium processes): ${dash.pss.toFixed(0)} MiB with the fleet view after 15 s of live refreshes (JS heap ${dash.heap.toFixed(1)} MiB); ${stat.pss.toFixed(0)} MiB with the static page (JS heap ${stat.heap.toFixed(1)} MiB); ${blank.pss.toFixed(0)} MiB with an empty page`);
console.log(`the fleet view's own: ${(dash.pss - blank.pss).toFixed(0)} MiB over the empty page; the static page's: ${(stat.pss - blank.pss).toFixed(0)} MiB; ratio ${((dash.pss - blank.pss) / Math.max(1, stat.pss - blank.pss)).toFixed(1)}`);
