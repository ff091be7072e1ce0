"""A server and simulated hosts on loopback for the benchmarks (reads/, submit/): a fresh data
directory, the admin token, N hosts enrolled with one-time tokens and served by one
`hwledger-agent simulate` process, each with 8 GPUs replayed from the H100 captures."""
import http.client, json, os, shutil, signal, socket, ssl, subprocess, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Fleet:
    def __init__(self, build, hosts, slow_dispatch=None, sample_interval_ms=1000, log_name="bench"):
        self.build, self.n, self.procs = build, hosts, []
        self.tmp = tempfile.mkdtemp(prefix="hwl-bench-")
        self.data = os.path.join(self.tmp, "server")
        self.log_dir = os.environ.get("HWL_BENCH_LOGDIR", self.tmp)
        self.slow_dispatch = slow_dispatch
        self.sample_interval_ms = sample_interval_ms
        self.log_name = log_name
        self.cleanup_dirs = [self.tmp]

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def close(self):
        for pr in reversed(self.procs):
            if pr.poll() is None:
                pr.send_signal(signal.SIGTERM)
                try:
                    pr.wait(30)
                except subprocess.TimeoutExpired:
                    pr.kill()
                    pr.wait()
        self.procs = []
        if not os.environ.get("HWL_BENCH_KEEP"):
            for d in self.cleanup_dirs:
                shutil.rmtree(d, ignore_errors=True)

    def _start(self):
        server_bin = os.path.join(self.build, "server/hwledger-server")
        agent_bin = os.path.join(self.build, "agent/hwledger-agent")
        subprocess.run([server_bin, "init", "--data-dir", self.data, "--admin-token-file",
                        os.path.join(self.tmp, "admin.token")], check=True, capture_output=True)
        self.token = open(os.path.join(self.tmp, "admin.token")).read().strip()
        self.server = self.spawn(
            [server_bin, "run", "--data-dir", self.data, "--listen", "127.0.0.1:0", "--log-level",
             os.environ.get("HWL_BENCH_LOG", "warn")],
            stderr=open(os.path.join(self.log_dir, self.log_name + "-server.log"), "w"),
            stdout=subprocess.DEVNULL)
        addr_file = os.path.join(self.data, "listen.addr")
        for _ in range(200):
            if os.path.exists(addr_file) and open(addr_file).read().strip():
                break
            if self.server.poll() is not None:
                raise RuntimeError("hwledger-server did not start")
            time.sleep(0.1)
        self.addr = open(addr_file).read().strip()
        self.url = "https://" + self.addr
        self.ca = os.path.join(self.data, "ca.crt")
        self.cert = os.path.join(self.data, "server.crt")
        self.key = os.path.join(self.data, "server.key")
        host, port = self.addr.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = False
        self.conn = http.client.HTTPSConnection(host, int(port), context=ctx)

        tokens, pin = [], None
        for i in range(self.n):
            st, body = self.call("POST", "/v1/enroll-tokens", {"host_hint": f"sim-{i}", "ttl_s": 3600})
            d = json.loads(body)
            tokens.append(d["token"])
            pin = d["ca_pin"]
        with open(os.path.join(self.tmp, "tokens"), "w") as f:
            f.write("\n".join(tokens) + "\n")
        tele = os.path.join(REPO, "tests/fixtures/telemetry")
        spec = os.path.join(self.tmp, "replay.json")
        with open(spec, "w") as f:  # gpu_count: the captured GPUs replicated to 8, distinct uuids
            json.dump({"files": [os.path.join(tele, "nvidia-h100-query-gpu.csv"),
                                 os.path.join(tele, "nvidia-h100-query-gpu-idle.csv")],
                       "gpu_count": 8}, f)
        argv = [agent_bin, "simulate", "--hosts", str(self.n), "--state-dir",
                os.path.join(self.tmp, "sim"), "--probe", "replay:" + spec, "--server", self.url,
                "--ca-pin", pin, "--tokens-file", os.path.join(self.tmp, "tokens"),
                "--port", str(free_port("127.0.1.1")),
                "--sample-interval-ms", str(self.sample_interval_ms)]
        if self.slow_dispatch is not None:
            argv += ["--slow-dispatch", "%d:%d" % self.slow_dispatch]
        self.sim = self.spawn(argv, stdout=subprocess.PIPE, text=True,
                              stderr=open(os.path.join(self.log_dir, self.log_name + "-sim.log"), "w"))
        for line in self.sim.stdout:
            if line.startswith("listening on"):
                break
        else:
            raise RuntimeError("hwledger-agent simulate did not start")

    def call(self, method, path, body=None, retry=True):
        try:
            self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                              headers={"Authorization": "Bearer " + self.token,
                                       "Content-Type": "application/json"})
            r = self.conn.getresponse()
            return r.status, r.read()
        except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest):
            self.conn.close()  # an idle keep-alive connection closed by the server: once more
            if not retry:
                raise
            return self.call(method, path, body, retry=False)

    def wait_for_telemetry(self, gpus=8, timeout=300):
        """Until GET /v1/hosts shows every host with `gpus` GPUs, each with a sample."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, body = self.call("GET", "/v1/hosts?limit=1000")
            if st == 200:
                hosts = json.loads(body)["hosts"]
                ready = [h for h in hosts if len(h.get("gpus", [])) == gpus
                         and all("sample" in g for g in h["gpus"])]
                if len(ready) >= self.n:
                    return
            time.sleep(1)
        raise RuntimeError("not every host had telemetry in time")

    def wait_reachable(self, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, body = self.call("GET", "/v1/collector")
            if st == 200 and json.loads(body)["reachable"] >= self.n:
                return
            time.sleep(0.5)
        raise RuntimeError("not every host was reachable in time")


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), load average {os.getloadavg()[0]:.2f} at the start"
