#!/usr/bin/env python3
"""Job submission under a stalled agent: 500 POST /v1/jobs from 32 concurrent clients across 50
simulated hosts, pinned round-robin with "host", one host answering dispatches only after 8 s
(`hwledger-agent simulate --slow-dispatch`). Prints submit latency for the jobs that landed on
the other hosts, submissions per second and how many went to the slow host; beside it, GET
/v1/health under the same concurrency in the same run (before the submissions), and a probe of
GET /v1/health every 100 ms while the submissions run.

usage: submit_bench.py BUILD_DIR [--jobs 500] [--clients 32] [--hosts 50] [--slow-host 7]
                       [--slow-ms 8000]
"""
import argparse, os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from simfleet import Fleet, machine  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("build")
p.add_argument("--jobs", type=int, default=500)
p.add_argument("--clients", type=int, default=32)
p.add_argument("--hosts", type=int, default=50)
p.add_argument("--slow-host", type=int, default=7)
p.add_argument("--slow-ms", type=int, default=8000)
p.add_argument("--health-requests", type=int, default=100, help="per client, for the reference")
p.add_argument("--probe-ms", type=int, default=100)
a = p.parse_args()
load_bin = os.path.join(a.build, "tests/bench/submit/submit_load")


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def run_load(f, mode, count, probe_ms=0):
    out = subprocess.run([load_bin, f.url, f.ca, f.token, mode, str(count), str(a.clients),
                          str(a.hosts), str(probe_ms)], capture_output=True, text=True, check=True)
    rows, probes, elapsed = [], [], None
    for line in out.stdout.splitlines():
        parts = line.split()
        if parts[0] == "elapsed":
            elapsed = float(parts[1])
        elif parts[0] == "probe":
            probes.append((int(parts[1]), float(parts[2])))
        else:
            rows.append((int(parts[0]), int(parts[1]), float(parts[2]), parts[3]))
    if out.stderr.strip():
        print(out.stderr.strip()[:2000], file=sys.stderr)
    return rows, probes, elapsed


def line(label, lat, extra=""):
    print(f"{label:44} {len(lat):6d} {pct(lat, 0.5):9.1f} {pct(lat, 0.99):9.1f} "
          f"{max(lat) if lat else float('nan'):9.1f}  {extra}")


slow_name = f"sim-{a.slow_host}"
with Fleet(a.build, a.hosts, slow_dispatch=(a.slow_host, a.slow_ms), log_name="submit") as f:
    print(f"machine: {machine()}", flush=True)
    t0 = time.time()
    f.wait_reachable()
    print(f"{a.hosts} simulated hosts reachable after {time.time() - t0:.1f} s; {slow_name} answers "
          f"POST /v1/jobs after {a.slow_ms} ms", flush=True)

    health, _, h_elapsed = run_load(f, "health", a.clients * a.health_requests)
    sub, probes, s_elapsed = run_load(f, "submit", a.jobs, a.probe_ms)

    h_ok = [r[2] for r in health if r[1] == 200]
    ok = [r for r in sub if r[1] == 201]
    others = [r[2] for r in ok if r[3] != slow_name]
    slow = [r[2] for r in ok if r[3] == slow_name]
    failed = [r for r in sub if r[1] != 201]
    p_ok = [x[1] for x in probes if x[0] == 200]
    print(f"\n{a.jobs} POST /v1/jobs from {a.clients} clients (keep-alive), {a.hosts} hosts pinned "
          f"round-robin, {slow_name} answering dispatches after {a.slow_ms / 1000:g} s; "
          f"job = [\"/bin/true\"], gpus 0")
    print(f"{'':44} {'count':>6} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    line("submit, jobs on the other hosts", others)
    line(f"submit, jobs on the slow host ({slow_name})", slow)
    line(f"reference: GET /v1/health, {a.clients} clients", h_ok,
         f"{len(h_ok) / h_elapsed:.0f} req/s")
    line(f"GET /v1/health every {a.probe_ms} ms during submits", p_ok,
         f"{len(probes) - len(p_ok)} failed")
    print(f"\nsubmissions/s: {len(ok) / s_elapsed:.2f} ({len(ok)} accepted in {s_elapsed:.1f} s); "
          f"to the slow host: {len(slow)} of {len(ok)}; failed: {len(failed)}"
          + (f" (statuses {sorted(set(r[1] for r in failed))})" if failed else ""))
    print(f"the slow host's share of the wall time at one dispatch at a time: "
          f"{len(slow) * a.slow_ms / 1000:.0f} s of {s_elapsed:.1f} s")
