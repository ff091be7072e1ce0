// The dashboard in real headless Chromium (Debian's, driven by playwright-core) against a real
// hwledger-server, a real agent replaying GPU captures and a rented SSH host
// (tests/integration/fleet/dashboard_test.cpp starts them and sets the environment). Each step
// asserts what a user would see; a screenshot of each view goes to $HWL_OUT.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (dashboard_test.cpp sets it)`);
  return v;
};
const URL = env("HWL_URL");
const ADMIN = env("HWL_ADMIN_TOKEN");
const VIEWER = env("HWL_VIEWER_TOKEN");
const OPERATOR = env("HWL_OPERATOR_TOKEN");
const OUT = env("HWL_OUT");
const JOB_PORT = env("HWL_JOB_PORT");
const MODEL = readFileSync(env("HWL_MODEL_CONFIG"), "utf8");
const JOB_HOST = env("HWL_JOB_HOST");
// name:kind:gpus of every host the fleet view must list.
const HOSTS = env("HWL_EXPECT_HOSTS").split(",").map((x) => {
  const [name, kind, gpus] = x.split(":");
  return { name, kind, gpus: Number(gpus) };
});
const RENTAL = env("HWL_RENTAL");
const SECRETS = [ADMIN, VIEWER, OPERATOR];

let step = "start";
const t0 = Date.now();
const log = (s) => {
  step = s;
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${s}`);
};

const browser = await chromium.launch({
  executablePath: env("HWL_CHROMIUM"),
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
// The server's certificate is the fleet CA's, which this fresh browser does not trust.
const newPage = async () => {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  const seen = [];
  page.on("console", (m) => seen.push(m.text()));
  page.on("pageerror", (e) => seen.push(`pageerror: ${e.message}`));
  page.on("request", (r) => seen.push(`request ${r.url()}`));
  page.seen = seen;
  return page;
};
const shot = (page, name) => page.screenshot({ path: `${OUT}/${name}.png`, fullPage: true });
const text = (page, sel) => page.locator(sel).innerText();
async function signIn(page, token) {
  await page.goto(`${URL}/`);
  await page.locator("#token").fill(token);
  await page.locator("#signin-form button[type=submit]").click();
}

try {
  // Security headers on the page itself.
  log("security headers");
  {
    const page = await newPage();
    const res = await page.goto(`${URL}/`);
    const hd = res.headers();
    assert.match(hd["content-security-policy"], /script-src 'self'/);
    assert.doesNotMatch(hd["content-security-policy"], /unsafe-inline/);
    assert.match(hd["content-security-policy"], /frame-ancestors 'none'/);
    assert.equal(hd["x-content-type-options"], "nosniff");
    // Keyboard: the token field has the focus, and Tab reaches the button.
    await page.locator("#signin").waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), "token");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "Sign in");
    await page.context().close();
  }

  log("a wrong token is refused");
  {
    const page = await newPage();
    await signIn(page, "hwl_0000000000000000.notatoken");
    await page.locator("#signin-error").filter({ hasText: "refused" }).waitFor({ timeout: 10000 });
    assert.equal(await page.locator("#nav").isVisible(), false);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("hwl.token")), null);
    await shot(page, "signin-refused");
    await page.context().close();
  }

  log("sign in as admin: the fleet lists the hosts, their kinds and their GPUs");
  const admin = await newPage();
  await signIn(admin, ADMIN);
  await admin.locator("#hosts-table").waitFor({ timeout: 15000 });
  for (const hst of HOSTS) {
    const row = admin.locator("#hosts-table tbody tr").filter({ hasText: hst.name });
    assert.equal(await row.count(), 1, `${hst.name} listed once`);
    const cells = await row.locator("td").allInnerTexts();
    assert.equal(cells[1], hst.kind, `${hst.name}'s kind`);
    assert.equal(cells[2], "reachable", `${hst.name}'s state`);
    assert.equal(Number(cells[5]), hst.gpus, `${hst.name}'s GPUs`);
  }
  assert.equal(await admin.locator("#gpus-table tbody tr").count(), HOSTS.reduce((n, x) => n + x.gpus, 0));
  // The token is in this tab's session storage, never in the URL.
  assert.equal(await admin.evaluate(() => sessionStorage.getItem("hwl.token")), ADMIN);
  assert.ok(!admin.url().includes(ADMIN));
  await shot(admin, "fleet");
  // The dark theme follows the system setting.
  await admin.emulateMedia({ colorScheme: "dark" });
  assert.notEqual(await admin.evaluate(() => getComputedStyle(document.body).backgroundColor), "rgb(255, 255, 255)");
  await shot(admin, "fleet-dark");
  await admin.emulateMedia({ colorScheme: "light" });

  log("live numbers change without a reload");
  {
    const before = await text(admin, "#gpus-table tbody");
    const navs = [];
    admin.on("framenavigated", (f) => navs.push(f.url()));
    let changed = false;
    for (let i = 0; i < 60 && !changed; i++) {
      await admin.waitForTimeout(1000);
      changed = (await text(admin, "#gpus-table tbody")) !== before;
    }
    assert.ok(changed, "the GPU figures did not change in 60 s");
    assert.deepEqual(navs, []);
  }

  log("a GPU over time: charts and their numbers");
  await admin.locator("#gpus-table a").first().click();
  await admin.locator(".uplot canvas").first().waitFor({ timeout: 15000 });
  assert.ok((await admin.locator(".uplot").count()) >= 4);
  assert.match(await admin.locator("details summary").innerText(), /The numbers \(\d+ points\)/);
  await shot(admin, "gpu");

  log("a job submitted from the form becomes ready and its log streams");
  await admin.goto(`${URL}/#/jobs`);
  await admin.locator("#job-form").waitFor();
  await admin.locator("#job-name").fill("e2e-web");
  await admin.locator("#job-gpus").fill("1");
  await admin.locator("#job-host").fill(JOB_HOST);
  await admin.locator("#job-port").fill(JOB_PORT);
  await admin.locator("#job-ready").fill("/");
  await admin.locator("#job-cmd").fill(["python3", "-u", "-m", "http.server", JOB_PORT, "--bind", "127.0.0.1"].join("\n"));
  await admin.locator("#job-form button[type=submit]").click();
  await admin.waitForURL(/#\/job\//, { timeout: 15000 });
  const jobUrl = admin.url();
  const jobId = decodeURIComponent(jobUrl.split("#/job/")[1]);
  await admin.locator("#job-state").filter({ hasText: /^ready$/ }).waitFor({ timeout: 60000 });
  // The readiness probe's request, logged by the server the job runs, arrives in the log.
  await admin.locator("#job-log").filter({ hasText: "GET / HTTP" }).waitFor({ timeout: 30000 });
  await shot(admin, "job");

  log("a viewer sees no cancel and no submit, and cannot cancel through the API either");
  {
    const viewer = await newPage();
    await signIn(viewer, VIEWER);
    await viewer.locator("#hosts-table").waitFor({ timeout: 15000 });
    await viewer.goto(jobUrl);
    await viewer.locator("#job-state").filter({ hasText: /^ready$/ }).waitFor({ timeout: 15000 });
    assert.equal(await viewer.locator("#cancel-job").count(), 0);
    await viewer.goto(`${URL}/#/jobs`);
    await viewer.locator("#jobs-table").waitFor();
    assert.equal(await viewer.locator("#job-form").count(), 0);
    const status = await viewer.evaluate(async (id) => {
      const r = await fetch(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE", headers: { Authorization: `Bearer ${sessionStorage.getItem("hwl.token")}` } });
      return r.status;
    }, jobId);
    assert.equal(status, 403);
    await shot(viewer, "jobs-viewer");
    await viewer.context().close();
  }

  log("an operator cancels the job");
  {
    const op = await newPage();
    await signIn(op, OPERATOR);
    await op.locator("#hosts-table").waitFor({ timeout: 15000 });
    await op.goto(jobUrl);
    await op.locator("#cancel-job").click();
    await op.locator("#job-state").filter({ hasText: /^cancelled$/ }).waitFor({ timeout: 30000 });
    await op.context().close();
  }

  log("the ledger view: verify ok, and a new event appears live");
  await admin.goto(`${URL}/#/ledger`);
  await admin.locator("#verify-status").filter({ hasText: "verify ok" }).waitFor({ timeout: 30000 });
  await admin.locator("#events-table").waitFor();
  const made = await admin.evaluate(async () => {
    const r = await fetch("/v1/tokens", {
      method: "POST",
      headers: { Authorization: `Bearer ${sessionStorage.getItem("hwl.token")}`, "Content-Type": "application/json" },
      body: JSON.stringify({ role: "viewer", note: "made while the ledger view was open" }),
    });
    return r.json();
  });
  await admin.locator("#events-table").filter({ hasText: "token.created" }).filter({ hasText: made.id }).waitFor({ timeout: 15000 });
  await admin.locator("#verify-button").click();
  await admin.locator("#verify-status").filter({ hasText: "verify ok" }).waitFor({ timeout: 30000 });
  await shot(admin, "ledger");

  log("the planner: breakdown and where it fits");
  await admin.goto(`${URL}/#/planner`);
  await admin.locator("#plan-config").fill(MODEL);
  await admin.locator("#plan-form button[type=submit]").click();
  await admin.locator("#plan-table").waitFor({ timeout: 15000 });
  assert.match(await text(admin, "#plan-table"), /KV cache/);
  assert.match(await text(admin, "#plan-table"), /8,030,261,248/);
  assert.match(await text(admin, "#placements-table"), /gpu-agent/);
  // A config the server holds, picked by name.
  await admin.locator("#plan-config").fill("");
  await admin.locator("#plan-server").selectOption("Qwen3-30B-A3B.json");
  await admin.locator("#plan-form button[type=submit]").click();
  await admin.locator("#plan-table").filter({ hasText: "qwen3_moe" }).waitFor({ timeout: 15000 });
  await shot(admin, "planner");

  log("rentals and costs, evidence");
  await admin.goto(`${URL}/#/rentals`);
  await admin.locator("#rentals-table").waitFor({ timeout: 15000 });
  {
    const row = admin.locator("#rentals-table tbody tr").filter({ hasText: RENTAL });
    const cells = await row.locator("td").allInnerTexts();
    assert.equal(cells[1], "lambda");
    assert.equal(cells[2], "running");
    assert.ok(Number(cells[5]) > 0, `a price per hour: ${cells[5]}`);
    assert.match(await text(admin, "#budget-total"), /^\$[\d.]+, no cap$/);
  }
  await shot(admin, "rentals");
  await admin.goto(`${URL}/#/evidence`);
  await admin.locator("#report-table").waitFor({ timeout: 15000 });
  // A fresh ledger has no closed hour or settled job yet: the report is there, with no rows.
  await admin.locator("#report-group").selectOption("host");
  await admin.locator("#report-table caption").filter({ hasText: "Report by host" }).waitFor({ timeout: 15000 });
  await shot(admin, "evidence");

  log("no token in any URL or console line");
  for (const line of admin.seen) for (const s of SECRETS) assert.ok(!line.includes(s), `a secret in: ${line.slice(0, 80)}`);
  const errors = admin.seen.filter((l) => l.startsWith("pageerror"));
  assert.deepEqual(errors, []);
  log("all passed");
} catch (e) {
  console.error(`FAILED at "${step}": ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
