#!/usr/bin/env python3
"""Agentless polling benchmark: hwledger-server polling N hosts over SSH (127.0.0.1 … 127.0.0.N, one
port, an sshd per 16 addresses), every --interval-ms, for a given duration. Prints server CPU
and RSS, poll latency p50/p99, polls done against expected and failures; beside it, in the same
run, OpenSSH's own client running the very same probe command over a reused ControlMaster
connection to one of those addresses, and the ratios of the two. Next to each reference run, two
more show where its time goes: `ssh … true` over the same master (a session that runs nothing),
and the script run here by sh without SSH.

The probe command is not rebuilt here: the fake nvidia-smi on the sshd sessions' PATH saves the
command line of its parent (the `sh -c SCRIPT` the server ran) once, and the reference runs
`sh -c 'SCRIPT'`, quoted as the server quotes it (server/ssh/shell_quote.cpp).

Poll latency: the server times each poll (session from the pool, one exec, parse) and feeds it to
the collector's window (GET /v1/collector), which holds every poll since the start, each host's
first poll (which connects) included; the server, run with --log-level debug, also logs one line
per poll, and the figures for the measuring window alone come from those lines.

Nothing here reads or writes the real ~/.ssh: the client runs with -F /dev/null, its own
known_hosts, -i KEY and IdentitiesOnly=yes, without an agent.

usage: agentless_bench.py BUILD_DIR [--hosts 100] [--seconds 120] [--interval-ms 10000]
                          [--warmup 20] [--ssh-runs 50]
"""
import argparse, http.client, json, os, pwd, re, shutil, signal, socket, ssl, subprocess, sys
import tempfile, time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from simfleet import REPO, machine  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("build")
p.add_argument("--hosts", type=int, default=100)
p.add_argument("--seconds", type=int, default=120, help="measuring window")
p.add_argument("--interval-ms", type=int, default=10000, help="ssh_poll_interval_ms")
p.add_argument("--warmup", type=int, default=20, help="after every host is reachable")
p.add_argument("--ssh-runs", type=int, default=50, help="reference runs, spread over the window")
a = p.parse_args()
if not 1 <= a.hosts <= 254:
    sys.exit("--hosts: 1 to 254 (127.0.0.1 … 127.0.0.254)")

SSHD = "/usr/sbin/sshd"
build = os.path.abspath(a.build)
server_bin = os.path.join(build, "server/hwledger-server")
tele = os.path.join(REPO, "tests/fixtures/telemetry")
tmp = tempfile.mkdtemp(prefix="hwl-agentless-bench-")
log_dir = os.environ.get("HWL_BENCH_LOGDIR", tmp)
user = pwd.getpwuid(os.geteuid()).pw_name
procs = []
ctl_path = os.path.join(tmp, "cm")
ssh_base = []  # the reference client's options, once sshd is up


def pct(xs, q):  # as the collector computes it (collect/collector.cpp, Collector::stats)
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def sh_quote(s):  # as server/ssh/shell_quote.cpp
    return "'" + s.replace("'", "'\\''") + "'"


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cleanup():
    if ssh_base and os.path.exists(ctl_path):
        subprocess.run(ssh_base + ["-O", "exit", f"{user}@127.0.0.1"], capture_output=True,
                       timeout=10)
    for pr in reversed(procs):
        if pr.poll() is None:
            pr.send_signal(signal.SIGTERM)
            try:
                pr.wait(30)
            except subprocess.TimeoutExpired:
                pr.kill()
                pr.wait()
    if not os.environ.get("HWL_BENCH_KEEP"):
        shutil.rmtree(tmp, ignore_errors=True)


def proc_stat(pid):
    """(utime + stime, cutime + cstime) in seconds, and the ppid."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    t = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / t, (int(parts[13]) + int(parts[14])) / t, int(parts[1])


def rss_of(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))


def tree_cpu(root):
    """CPU of `root` and its live descendants, each with its reaped children's (the probe scripts
    that sshd's session processes ran and waited for)."""
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stats[int(name)] = proc_stat(int(name))
            except (OSError, IndexError):
                pass
    kids = {}
    for pid, (_, _, ppid) in stats.items():
        kids.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][0] + stats[pid][1]
        todo += kids.get(pid, [])
    return total


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def start_sshd():
    d = os.path.join(tmp, "sshd")
    bin_dir = os.path.join(tmp, "bin")
    os.makedirs(d)
    os.makedirs(bin_dir)
    home = os.path.join(tmp, "home")
    os.makedirs(home)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hwl-bench-host", "-f",
         os.path.join(d, "host_key")])
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hwl-bench", "-f",
         os.path.join(tmp, "id")])
    shutil.copy(os.path.join(tmp, "id.pub"), os.path.join(d, "authorized_keys"))
    # The fake nvidia-smi answers both queries with the H100 captures, and saves once the command
    # line of its parent: the `sh -c SCRIPT` of a poll.
    write(os.path.join(bin_dir, "nvidia-smi"),
          "#!/bin/sh\n"
          f"s={tmp}/probe-script\n"
          "if [ ! -s \"$s\" ]; then cat /proc/$PPID/cmdline > \"$s.$$\" && mv \"$s.$$\" \"$s\"; fi\n"
          "case \"$*\" in\n"
          f"  *--query-compute-apps*) cat '{tele}/nvidia-h100-compute-apps.csv' ;;\n"
          f"  *) cat '{tele}/nvidia-h100-query-gpu.csv' ;;\n"
          "esac\n", 0o755)
    if os.geteuid() == 0:  # privilege separation wants its empty directory
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    # sshd listens on at most 16 addresses (MAX_LISTEN_SOCKS): one sshd per 16 hosts, all on the
    # same port with the same host key.
    groups = [list(range(i, min(i + 16, a.hosts + 1))) for i in range(1, a.hosts + 1, 16)]
    log = os.path.join(log_dir, "agentless-bench-sshd.log")
    for attempt in range(5):
        port = free_port()
        started = []
        for g, addrs in enumerate(groups):
            conf = [f"Port {port}"] + [f"ListenAddress 127.0.0.{i}" for i in addrs] + [
                f"HostKey {d}/host_key",
                f"PidFile {d}/sshd.{g}.pid",
                f"AuthorizedKeysFile {d}/authorized_keys",
                # HOME too: Debian's bash sources ~/.bashrc when sshd runs it, even for `bash -c`;
                # the remote sessions see an empty home, not the real user's startup files.
                f"SetEnv PATH={bin_dir}:/usr/bin:/bin HOME={home}",
                "StrictModes no", "UsePAM no", "PubkeyAuthentication yes",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                "AllowAgentForwarding no", "AllowTcpForwarding no", "X11Forwarding no",
                "PermitUserRC no", "PermitUserEnvironment no", f"AllowUsers {user}",
                "UseDNS no", "PrintMotd no", "PrintLastLog no", "LoginGraceTime 30",
                # Every host connects at once after a start; a ControlMaster multiplexes.
                "MaxStartups 100", "MaxSessions 50", "LogLevel ERROR"]
            if os.geteuid() == 0:
                conf.append("PermitRootLogin prohibit-password")
            config = os.path.join(d, f"sshd_config.{g}")
            write(config, "\n".join(conf) + "\n")
            started.append(subprocess.Popen([SSHD, "-D", "-E", log, "-f", config],
                                             stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL))
        deadline = time.time() + 10
        waiting = [(sd, (addrs[0], addrs[-1])) for sd, addrs in zip(started, groups)]
        while waiting and time.time() < deadline and all(sd.poll() is None for sd in started):
            try:
                for i in waiting[0][1]:
                    socket.create_connection((f"127.0.0.{i}", port), timeout=1).close()
                waiting.pop(0)
            except OSError:
                time.sleep(0.05)
        if not waiting and all(sd.poll() is None for sd in started):
            procs.extend(started)
            return started, port
        for sd in started:
            if sd.poll() is None:
                sd.kill()
            sd.wait()
        print(f"sshd did not listen on port {port} (attempt {attempt + 1}): "
              f"{open(log).read().strip()[-500:]}", file=sys.stderr)
    raise RuntimeError("sshd did not start")


try:
    for tool in (SSHD, shutil.which("ssh"), shutil.which("ssh-keygen")):
        if not tool or not os.access(tool, os.X_OK):
            print("skipped: needs openssh-server and openssh-client (sshd, ssh, ssh-keygen)")
            sys.exit(0)
    print(f"machine: {machine()}", flush=True)
    sshds, port = start_sshd()
    fp = run(["ssh-keygen", "-l", "-E", "sha256", "-f",
              os.path.join(tmp, "sshd/host_key.pub")]).stdout.split()[1]
    versions = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    lib = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libssh2-1"],
                         capture_output=True, text=True).stdout.strip()
    print(f"{len(sshds)} sshd on 127.0.0.1-{a.hosts} port {port}, host key {fp}; {versions}; "
          f"libssh2 {lib or '?'}", flush=True)

    # The server: a fresh data directory, the poll interval, one debug line per poll.
    data = os.path.join(tmp, "server")
    run([server_bin, "init", "--data-dir", data, "--admin-token-file",
         os.path.join(tmp, "admin.token")])
    token = open(os.path.join(tmp, "admin.token")).read().strip()
    write(os.path.join(tmp, "config.json"), json.dumps({"ssh_poll_interval_ms": a.interval_ms}))
    server_log = os.path.join(log_dir, "agentless-bench-server.log")
    srv = subprocess.Popen([server_bin, "run", "--data-dir", data, "--listen", "127.0.0.1:0",
                            "--config", os.path.join(tmp, "config.json"), "--log-level", "debug"],
                           stderr=open(server_log, "w"), stdout=subprocess.DEVNULL)
    procs.append(srv)
    addr_file = os.path.join(data, "listen.addr")
    for _ in range(200):
        if os.path.exists(addr_file) and open(addr_file).read().strip():
            break
        if srv.poll() is not None:
            raise RuntimeError("hwledger-server did not start: " + open(server_log).read()[-2000:])
        time.sleep(0.1)
    addr = open(addr_file).read().strip()
    host, hport = addr.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=os.path.join(data, "ca.crt"))
    ctx.check_hostname = False
    conn = http.client.HTTPSConnection(host, int(hport), context=ctx, timeout=120)

    def call(method, path, body=None, retry=True):
        global conn
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Authorization": "Bearer " + token,
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            return r.status, r.read()
        except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest):
            conn.close()  # the server closed an idle keep-alive connection: once more
            if not retry:
                raise
            return call(method, path, body, retry=False)

    # Enrollment: one connection and one probe each, pinned to the host key.
    t0 = time.time()
    enroll_ms = []
    for i in range(1, a.hosts + 1):
        e0 = time.perf_counter()
        st, body = call("POST", "/v1/hosts/ssh", {"address": f"127.0.0.{i}:{port}", "user": user,
                                                 "key_file": os.path.join(tmp, "id"),
                                                 "fingerprint": fp, "name": f"ssh-{i}"})
        enroll_ms.append((time.perf_counter() - e0) * 1000)
        if st != 201:
            raise RuntimeError(f"enrolling 127.0.0.{i}: {st} {body[:500]!r}")
    print(f"enrolled {a.hosts} hosts in {time.time() - t0:.1f} s (POST /v1/hosts/ssh p50 "
          f"{pct(enroll_ms, 0.5):.0f} ms, max {max(enroll_ms):.0f} ms)", flush=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        c = json.loads(call("GET", "/v1/collector")[1])
        if c["reachable"] >= a.hosts:
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"only {c['reachable']} of {a.hosts} hosts reachable after 120 s")
    print(f"all {c['reachable']} hosts reachable after {time.time() - t0:.1f} s; "
          f"warming up {a.warmup} s", flush=True)
    time.sleep(a.warmup)

    # The reference: OpenSSH's client, its master connection up before the window.
    script_file = os.path.join(tmp, "probe-script")
    argv = open(script_file).read().split("\0")
    if argv[:2] != ["sh", "-c"] or not argv[2].startswith("M=@@hwl-"):
        raise RuntimeError(f"unexpected probe command line: {argv[:2]!r}")
    command = "sh -c " + sh_quote(argv[2])
    nonce = argv[2].split("\n", 1)[0][len("M=@@hwl-"):]
    write(os.path.join(tmp, "known_hosts"),
          f"[127.0.0.1]:{port} " + open(os.path.join(tmp, "sshd/host_key.pub")).read())
    ssh_base = ["ssh", "-F", "/dev/null", "-p", str(port), "-i", os.path.join(tmp, "id"),
                "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
                "-o", "UserKnownHostsFile=" + os.path.join(tmp, "known_hosts"),
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", "ControlMaster=auto", "-o", "ControlPath=" + ctl_path,
                "-o", "ControlPersist=60"]
    ssh_env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    target = f"{user}@127.0.0.1"
    subprocess.run(ssh_base + [target, "true"], check=True, env=ssh_env, capture_output=True,
                   stdin=subprocess.DEVNULL, timeout=30)
    subprocess.run(ssh_base + ["-O", "check", target], check=True, env=ssh_env,
                   capture_output=True, timeout=10)

    def reference_run():
        r0 = time.perf_counter()
        out = subprocess.run(ssh_base + [target, command], env=ssh_env, capture_output=True,
                             stdin=subprocess.DEVNULL, text=True, timeout=60)
        ms = (time.perf_counter() - r0) * 1000
        ends = len(re.findall(rf"^@@hwl-{nonce} end 0$", out.stdout, re.M))
        if out.returncode != 0 or ends != 6:  # arch cpus meminfo stat nvidia nvidia-apps
            raise RuntimeError(f"reference run: exit {out.returncode}, {ends} sections: "
                               f"{out.stderr[:500]}")
        return ms, len(out.stdout)

    # Where a run's time goes, next to each reference run: the same master with `true` (a
    # session with nothing to run), and the script run here by sh without SSH at all.
    def timed(argv, **kw):
        r0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL,
                       timeout=60, **kw)
        return (time.perf_counter() - r0) * 1000

    local_env = dict(ssh_env, PATH=os.path.join(tmp, "bin") + ":/usr/bin:/bin")

    _, ref_bytes = reference_run()  # the master's first session, not counted

    # The measuring window.
    c0 = json.loads(call("GET", "/v1/collector")[1])
    log0 = os.path.getsize(server_log)
    cpu0 = sum(proc_stat(srv.pid)[:2])
    sshd0 = sum(tree_cpu(sd.pid) for sd in sshds)
    w0 = time.time()
    ref_ms, true_ms, local_ms, rss_max = [], [], [], 0
    # At most 50 s apart: the master outlives its last session by 60 s (ControlPersist).
    runs = max(a.ssh_runs, -(-a.seconds // 50))
    step = a.seconds / runs
    for k in range(runs):
        due = w0 + (k + 0.5) * step
        while time.time() < due:
            rss_max = max(rss_max, rss_of(srv.pid))
            time.sleep(min(1.0, max(0.0, due - time.time())))
        ref_ms.append(reference_run()[0])
        true_ms.append(timed(ssh_base + [target, "true"], env=ssh_env))
        local_ms.append(timed(["sh", "-c", argv[2]], env=local_env))
    while time.time() < w0 + a.seconds:
        rss_max = max(rss_max, rss_of(srv.pid))
        time.sleep(min(1.0, max(0.0, w0 + a.seconds - time.time())))
    elapsed = time.time() - w0
    cpu1 = sum(proc_stat(srv.pid)[:2])
    sshd1 = sum(tree_cpu(sd.pid) for sd in sshds)
    rss1 = rss_of(srv.pid)
    log1 = os.path.getsize(server_log)
    c1 = json.loads(call("GET", "/v1/collector")[1])
    with open(server_log, "rb") as f:
        f.seek(log0)
        window_log = f.read(log1 - log0).decode(errors="replace")
    polls, failed = [], 0
    for m in re.finditer(r"ssh host \S+: poll (ok|failed) in ([0-9.]+) ms", window_log):
        if m.group(1) == "ok":
            polls.append(float(m.group(2)))
        else:
            failed += 1
    connects = len(re.findall(r"ssh: \S+ host key \S+ accepted", window_log))
    ok_n = c1["requests_ok"] - c0["requests_ok"]
    fail_n = c1["requests_failed"] - c0["requests_failed"]
    expected = a.hosts * elapsed * 1000 / a.interval_ms

    poll50, poll99 = pct(polls, 0.5), pct(polls, 0.99)
    ref50, ref99 = pct(ref_ms, 0.5), pct(ref_ms, 0.99)
    print(f"\n{a.hosts} agentless hosts on {len(sshds)} sshd, polled every "
          f"{a.interval_ms / 1000:g} s by "
          f"hwledger-server (default 8 poll threads), measured {elapsed:.0f} s; probe "
          f"output {ref_bytes} bytes; load average {os.getloadavg()[0]:.2f} at the end")
    print(f"server CPU           {100 * (cpu1 - cpu0) / elapsed:.1f} % of one core")
    print(f"server RSS           {rss1 / 2**20:.1f} MiB at end, {max(rss_max, rss1) / 2**20:.1f} MiB max")
    print(f"sshd CPU             {100 * (sshd1 - sshd0) / elapsed:.1f} % of one core (all their "
          f"processes, the probe scripts they ran included)")
    print(f"polls                {ok_n} answered, {fail_n} failed (collector); expected about "
          f"{expected:.0f} ({a.hosts} hosts x {elapsed:.0f} s / {a.interval_ms / 1000:g} s; each "
          f"next poll is due one interval after the last one ended); {connects} reconnects")
    print(f"poll latency         p50 {poll50:.1f} ms, p99 {poll99:.1f} ms, max "
          f"{max(polls) if polls else float('nan'):.1f} ms ({len(polls)} polls in the window, "
          f"{failed} failed, from the server's per-poll log lines)")
    print(f"  collector window   p50 {c1['latency_p50_ms']:.1f} ms, p99 {c1['latency_p99_ms']:.1f} "
          f"ms, max {c1['latency_max_ms']:.1f} ms (all {c1['latency_window']} polls since the "
          f"start, each host's first, connecting, poll included)")
    print(f"reference: OpenSSH   p50 {ref50:.1f} ms, p99 {ref99:.1f} ms, max {max(ref_ms):.1f} ms "
          f"({len(ref_ms)} runs of `ssh` with the same command over a ControlMaster connection to "
          f"127.0.0.1, spread over the window; each run is a whole ssh process)")
    print(f"  same, `ssh … true`  p50 {pct(true_ms, 0.5):.1f} ms, p99 {pct(true_ms, 0.99):.1f} ms "
          f"(a session that runs nothing, over the same master)")
    print(f"  script, no SSH     p50 {pct(local_ms, 0.5):.1f} ms, p99 {pct(local_ms, 0.99):.1f} ms "
          f"(`sh -c SCRIPT` run here with the fake nvidia-smi first on PATH)")
    print(f"ratio poll/ssh       p50 {poll50 / ref50:.2f}x, p99 {poll99 / ref99:.2f}x (aim: within 2x)")
finally:
    cleanup()
