#!/usr/bin/env python3
"""Fleet-scale benchmark: hwledger-server against N simulated hosts (8 GPUs each) on loopback
with the default schedule (telemetry every 10 s, outbox every 2 s), for a given duration, while
a client reads GET /v1/hosts at a fixed rate. Prints server CPU and RSS, scrape latency, ledger
and time-series growth per host per day, and REST latency.

usage: fleet_bench.py BUILD_DIR [--hosts 1000] [--seconds 600] [--rest-rps 50]
"""
import argparse, http.client, json, os, shutil, signal, ssl, subprocess, sys, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("build")
p.add_argument("--hosts", type=int, default=1000)
p.add_argument("--seconds", type=int, default=600)
p.add_argument("--rest-rps", type=int, default=50)
p.add_argument("--warmup", type=int, default=30)
a = p.parse_args()

repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
server_bin = os.path.join(a.build, "server/hwledger-server")
agent_bin = os.path.join(a.build, "agent/hwledger-agent")
tmp = tempfile.mkdtemp(prefix="hwl-fleet-bench-")
data = os.path.join(tmp, "server")
procs = []


def cleanup():
    for pr in reversed(procs):
        if pr.poll() is None:
            pr.send_signal(signal.SIGTERM)
            try:
                pr.wait(30)
            except subprocess.TimeoutExpired:
                pr.kill()
    shutil.rmtree(tmp, ignore_errors=True)


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(parts[11]) + int(parts[12])) / ticks
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
    return cpu, rss


def table_bytes(db):
    out = subprocess.run(["sqlite3", "-readonly", db,
                          "SELECT name, sum(pgsize) FROM dbstat GROUP BY name;"],
                         capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        name, size = line.split("|")
        sizes[name] = int(size)
    return sizes


def group(sizes):
    ledger = sum(v for k, v in sizes.items() if k in ("events", "events_type", "checkpoints")
                 or k.startswith("sqlite_autoindex_events"))
    ts = sum(v for k, v in sizes.items() if k.startswith("ts_") or k.startswith("sqlite_autoindex_ts_"))
    return ledger, ts


try:
    subprocess.run([server_bin, "init", "--data-dir", data, "--admin-token-file",
                    os.path.join(tmp, "admin.token")], check=True, capture_output=True)
    token = open(os.path.join(tmp, "admin.token")).read().strip()
    srv = subprocess.Popen([server_bin, "run", "--data-dir", data, "--listen", "127.0.0.1:0",
                            "--log-level", os.environ.get("HWL_BENCH_LOG", "warn")], stderr=open(os.path.join(os.environ.get("HWL_BENCH_LOGDIR", "/tmp"), "fleet-bench-server.log"), "w"), stdout=subprocess.DEVNULL)
    procs.append(srv)
    for _ in range(100):
        if os.path.exists(os.path.join(data, "listen.addr")):
            break
        time.sleep(0.1)
    addr = open(os.path.join(data, "listen.addr")).read().strip()
    host, port = addr.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=os.path.join(data, "ca.crt"))
    ctx.check_hostname = False

    def call(conn, method, path, body=None, retry=True):
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Authorization": "Bearer " + token,
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            return r.status, r.read()
        except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest):
            conn.close()  # the server closed an idle keep-alive connection: reconnect once
            if not retry:
                raise
            return call(conn, method, path, body, retry=False)

    conn = http.client.HTTPSConnection(host, int(port), context=ctx)
    tokens, pin = [], None
    for i in range(a.hosts):
        st, body = call(conn, "POST", "/v1/enroll-tokens", {"host_hint": f"sim-{i}", "ttl_s": 3600})
        d = json.loads(body)
        tokens.append(d["token"])
        pin = d["ca_pin"]
    with open(os.path.join(tmp, "tokens"), "w") as f:
        f.write("\n".join(tokens) + "\n")
    spec = os.path.join(tmp, "replay.json")
    tele = os.path.join(repo, "tests/fixtures/telemetry")
    with open(spec, "w") as f:
        json.dump({"files": [os.path.join(tele, "nvidia-h100-query-gpu.csv"),
                             os.path.join(tele, "nvidia-h100-query-gpu-idle.csv")], "gpu_count": 8}, f)
    t0 = time.time()
    sim = subprocess.Popen([agent_bin, "simulate", "--hosts", str(a.hosts), "--state-dir",
                            os.path.join(tmp, "sim"), "--probe", "replay:" + spec, "--server",
                            "https://" + addr, "--ca-pin", pin, "--tokens-file",
                            os.path.join(tmp, "tokens"), "--sample-interval-ms", "1000"],
                           stdout=subprocess.PIPE, text=True)
    procs.append(sim)
    for line in sim.stdout:
        if line.startswith("listening on"):
            break
    print(f"enrolled and started {a.hosts} simulated hosts in {time.time() - t0:.1f} s", flush=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        st, body = call(conn, "GET", "/v1/collector")
        c = json.loads(body)
        if c["reachable"] >= a.hosts:
            break
        time.sleep(2)
    print(f"all {c['reachable']} hosts reachable after {time.time() - t0:.1f} s; warming up {a.warmup} s",
          flush=True)
    time.sleep(a.warmup)

    db = os.path.join(data, "ledger.db")
    sizes0 = table_bytes(db)
    st, body = call(conn, "GET", "/v1/collector")
    c0 = json.loads(body)
    cpu0, _ = proc_stat(srv.pid)
    w0 = time.time()
    rss_max = 0
    # The REST load comes from a small C++ client (tests/bench/fleet/rest_load.cpp): keep-alive
    # connections, a fixed schedule, latency counted from when each request was due.
    rest = subprocess.Popen([os.path.join(a.build, "tests/bench/fleet/rest_load"),
                             "https://" + addr + "/v1/hosts", os.path.join(data, "ca.crt"), token,
                             str(a.rest_rps), str(a.seconds), "8"],
                            stdout=subprocess.PIPE, text=True)
    while rest.poll() is None:
        time.sleep(5)
        _, rss = proc_stat(srv.pid)
        rss_max = max(rss_max, rss)
    rest_result = json.loads(rest.stdout.read())
    elapsed = time.time() - w0
    cpu1, rss1 = proc_stat(srv.pid)
    sizes1 = table_bytes(db)
    st, body = call(conn, "GET", "/v1/collector")
    c = json.loads(body)
    l0, t0s = group(sizes0)
    l1, t1s = group(sizes1)
    day = 86400 / elapsed / a.hosts
    print(f"\nhosts {a.hosts} x 8 GPUs, telemetry every 10 s, outbox every 2 s, measured {elapsed:.0f} s")
    print(f"server CPU           {100 * (cpu1 - cpu0) / elapsed:.1f} % of one core")
    print(f"server RSS           {rss1 / 2**20:.1f} MiB at end, {rss_max / 2**20:.1f} MiB max")
    print(f"scrape latency       p50 {c['latency_p50_ms']:.2f} ms, p99 {c['latency_p99_ms']:.2f} ms, "
          f"max {c['latency_max_ms']:.1f} ms (last {c['latency_window']} requests); during the "
          f"measurement {c['requests_ok'] - c0['requests_ok']} answered, "
          f"{c['requests_failed'] - c0['requests_failed']} failed")
    print(f"ledger growth        {(l1 - l0) * day / 1e6:.3f} MB per host per day")
    def grow(prefix):
        keys = [k for k in sizes1 if k == prefix or k.startswith("sqlite_autoindex_" + prefix)]
        return sum(sizes1.get(k, 0) - sizes0.get(k, 0) for k in keys) * day / 1e6
    print(f"time-series growth   {(t1s - t0s) * day / 1e6:.3f} MB per host per day: raw "
          f"{grow('ts_raw'):.3f} (kept 24 h), 1-minute {grow('ts_1m'):.3f} (kept 30 days), "
          f"hourly {grow('ts_1h'):.3f} (kept)")
    hourly_event = 600  # bytes of one telemetry.hourly row with its index entries, measured below
    ev = subprocess.run(["sqlite3", "-readonly", db, "SELECT count(*), coalesce(sum(length(data) + "
                         "length(id) + length(stream) + length(type) + length(actor) + 80), 0) "
                         "FROM events WHERE type = 'telemetry.hourly'"],
                        capture_output=True, text=True).stdout.strip().split("|")
    if int(ev[0]) > 0:
        hourly_event = int(ev[1]) / int(ev[0]) * 2  # the row and its id/type index entries
    print(f"ledger: {int(ev[0])} telemetry.hourly events so far; at 8 GPUs x 24 h that is "
          f"~{8 * 24 * hourly_event / 1e6:.3f} MB per host per day (estimate from row sizes)")
    r = rest_result
    print(f"GET /v1/hosts        {r['answered']} answered at {a.rest_rps}/s (pages of "
          f"{r['mean_bytes'] / 1000:.0f} kB): p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
          f"max {r['max_ms']:.1f} ms; {r['errors']} errors")
finally:
    cleanup()
