#!/usr/bin/env python3
"""Read throughput: GET /v1/hosts with 20 simulated hosts of 8 GPUs each, once every host has
telemetry, under `wrk -t2 -c50 -d20s --latency` (TLS 1.3, keep-alive, bearer token), beside two
references measured in the same run: our GET /v1/health, and nginx serving the exact bytes of a
/v1/hosts answer from a file over TLS 1.3 with the same certificate and key.

usage: reads_bench.py BUILD_DIR [--hosts 20] [--seconds 20] [--threads 2] [--connections 50]
"""
import argparse, os, pwd, re, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from simfleet import Fleet, free_port, machine  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("build")
p.add_argument("--hosts", type=int, default=20)
p.add_argument("--seconds", type=int, default=20)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--connections", type=int, default=50)
a = p.parse_args()

for tool in ("wrk", "nginx"):
    if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
        sys.exit(f"reads bench: {tool} is not installed")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNIT[m.group(2)]


def wrk(url, lua, label):
    out = subprocess.run(["wrk", f"-t{a.threads}", f"-c{a.connections}", f"-d{a.seconds}s",
                          "--latency", "-s", lua, url], capture_output=True, text=True, check=True).stdout
    r = {"label": label}
    r["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        r[key] = ms(re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M).group(1))
    r["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(bad.group(1)) if bad else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["sockerr"] = sum(int(x) for x in sock.groups()) if sock else 0
    tr = re.search(r"Transfer/sec:\s+(\S+)", out)
    r["transfer"] = tr.group(1) if tr else "?"
    r["raw"] = out
    return r


with Fleet(a.build, a.hosts, log_name="reads") as f:
    print(f"machine: {machine()}", flush=True)
    t0 = time.time()
    f.wait_for_telemetry(gpus=8)
    print(f"{a.hosts} simulated hosts x 8 GPUs, every one with telemetry after "
          f"{time.time() - t0:.1f} s", flush=True)
    st, body = f.call("GET", "/v1/hosts")
    assert st == 200, st
    page = os.path.join(f.tmp, "hosts.json")
    with open(page, "wb") as out:
        out.write(body)
    lua = os.path.join(f.tmp, "auth.lua")
    with open(lua, "w") as out:
        out.write(f'wrk.headers["Authorization"] = "Bearer {f.token}"\n')

    # nginx: unprivileged, foreground, one worker, TLS 1.3 only, the server's certificate and key,
    # keep-alive with no practical per-connection request limit (ours has none). Run by root, it
    # runs as nobody over copies of the page, certificate and key in a directory of its own.
    ng = tempfile.mkdtemp(prefix="hwl-bench-nginx-")
    f.cleanup_dirs.append(ng)
    for src, name in ((page, "hosts.json"), (f.cert, "server.crt"), (f.key, "server.key")):
        shutil.copyfile(src, os.path.join(ng, name))
    prefix = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for d, _, files in os.walk(ng):
            os.chown(d, nobody.pw_uid, nobody.pw_gid)
            for n in files:
                os.chown(os.path.join(d, n), nobody.pw_uid, nobody.pw_gid)
        prefix = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                  "--clear-groups", "--"]
    ng_port = free_port("127.0.0.1")
    with open(os.path.join(ng, "nginx.conf"), "w") as out:
        out.write(f"""worker_processes 1;
daemon off;
pid {ng}/nginx.pid;
error_log {ng}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {ng}/body;
  proxy_temp_path {ng}/proxy;
  fastcgi_temp_path {ng}/fastcgi;
  uwsgi_temp_path {ng}/uwsgi;
  scgi_temp_path {ng}/scgi;
  keepalive_timeout 30s;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{ng_port} ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate {ng}/server.crt;
    ssl_certificate_key {ng}/server.key;
    location = /v1/hosts {{
      default_type application/json;
      alias {ng}/hosts.json;
    }}
  }}
}}
""")
    nginx = f.spawn(prefix + [NGINX, "-p", ng, "-c", os.path.join(ng, "nginx.conf"), "-e", os.path.join(ng, "error.log")],
                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(ng, "stderr.log"), "w"))
    for _ in range(100):
        if os.path.exists(os.path.join(ng, "nginx.pid")):
            break
        if nginx.poll() is not None:
            sys.exit("nginx did not start: " + open(os.path.join(ng, "stderr.log")).read())
        time.sleep(0.1)
    # The same bytes from both, over TLS 1.3.
    check = subprocess.run(["curl", "-sk", "--tlsv1.3", "--tls-max", "1.3", "-w", "%{http_code}",
                            "-o", os.path.join(f.tmp, "nginx.out"), f"https://127.0.0.1:{ng_port}/v1/hosts"],
                           capture_output=True, text=True)
    same = open(os.path.join(f.tmp, "nginx.out"), "rb").read() == body
    if check.stdout != "200" or not same:
        sys.exit(f"nginx answered {check.stdout} with other bytes than the server's page")
    print(f"page: {len(body)} bytes ({a.hosts} hosts); nginx serves the same bytes", flush=True)

    runs = [wrk(f"{f.url}/v1/hosts", lua, "hwledger GET /v1/hosts"),
            wrk(f"{f.url}/v1/health", lua, "hwledger GET /v1/health"),
            wrk(f"https://127.0.0.1:{ng_port}/v1/hosts", lua, "nginx, the /v1/hosts bytes")]
    if os.environ.get("HWL_BENCH_VERBOSE"):
        for r in runs:
            print(r["raw"])
    hosts, health, ngx = runs
    print(f"\nwrk -t{a.threads} -c{a.connections} -d{a.seconds}s --latency, TLS 1.3 keep-alive, "
          f"loopback; page {len(body) / 1000:.1f} kB")
    print(f"{'':30} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'non-2xx':>8} {'sock err':>8}")
    for r in runs:
        print(f"{r['label']:30} {r['rps']:10.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['requests']:9d} "
              f"{r['non2xx']:8d} {r['sockerr']:8d}")
    if any(r["non2xx"] or r["sockerr"] for r in runs):
        print("WARNING: some answers were not 2xx or some sockets failed: the rates above are not "
              "comparable")
    print(f"\nratios: /v1/hosts / nginx = {hosts['rps'] / ngx['rps']:.1%} of the rate; "
          f"/v1/hosts / /v1/health = {hosts['rps'] / health['rps']:.1%}; "
          f"/v1/health / nginx = {health['rps'] / ngx['rps']:.1%}")
