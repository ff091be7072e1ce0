#!/usr/bin/env python3
"""The dashboard's fleet view with N simulated hosts of 8 GPUs each (one `hwledger-agent
simulate` process, every host with telemetry): time from opening the page to the first page of
hosts and their GPUs on screen, and the browser's memory (PSS of every Chromium process, and the
page's JS heap), in Debian's headless chromium driven by playwright-core. Beside it, the
reference measured in the same run by the same browser: a static page holding the same table
rows (no script, no API).

usage: dashboard_bench.py BUILD_DIR [--hosts 1000] [--runs 5]
"""
import argparse, os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from simfleet import Fleet, machine  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
p = argparse.ArgumentParser()
p.add_argument("build")
p.add_argument("--hosts", type=int, default=1000)
p.add_argument("--runs", type=int, default=5)
a = p.parse_args()
if not os.path.exists("/usr/bin/chromium"):
    sys.exit("dashboard bench: /usr/bin/chromium is not installed (deploy/setup.sh bench installs it)")
if not os.path.isdir(os.path.join(REPO, "tests/e2e/node_modules/playwright-core")):
    sys.exit("dashboard bench: run npm ci in tests/e2e (deploy/setup.sh bench does)")

with Fleet(a.build, a.hosts, log_name="dashboard") as f:
    print(f"machine: {machine()}", flush=True)
    t0 = time.time()
    f.wait_for_telemetry(gpus=8, timeout=900)
    print(f"{a.hosts} simulated hosts x 8 GPUs, every one with telemetry after "
          f"{time.time() - t0:.1f} s", flush=True)
    env = dict(os.environ, HWL_URL=f.url, HWL_ADMIN_TOKEN=f.token, HWL_CHROMIUM="/usr/bin/chromium",
               HWL_RUNS=str(a.runs), HWL_HOSTS=str(a.hosts))
    r = subprocess.run(["node", "fleet_bench.mjs"], cwd=os.path.join(REPO, "tests/e2e"), env=env)
    sys.exit(r.returncode)
