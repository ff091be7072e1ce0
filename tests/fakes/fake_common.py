"""What the fake cloud providers share: a loopback HTTP server, the account's instances with a
life cycle driven by the clock, the key check, and the failure modes the tests switch on.

A fake is started as `python3 tests/fakes/<provider>_fake.py [options]`; it binds 127.0.0.1 (or
--host, which must be a loopback address) on --port (0: a free one) and prints one line
`LISTENING <port>` on stdout once it accepts connections. It serves the provider's documented
endpoints (see each fake's header for the pages they follow) and, unauthenticated, a control API
for the tests under /_fake/:

  POST /_fake/config     JSON object merged into the knobs below
  POST /_fake/instances  JSON {"label": ..., "gpu_model": ..., "gpu_count": ..., "price": ...,
                         "state": "running"}: an instance the ledger never launched
  GET  /_fake/state      {"instances": [...], "launches": N, "terminates": N, "calls": [...]}

Knobs (POST /_fake/config):
  rate_limit_burst   the next N API requests are answered 429 with Retry-After: retry_after
  retry_after        seconds sent in Retry-After (default 1)
  server_error_burst the next N API requests are answered 500
  provision_delay_s  seconds from launch to running (default 0.3)
  provision_never    launched instances stay provisioning for ever
  launch_error       when set, a launch is refused with this message (the provider's error form)
  launch_answer_delay_s  the instance exists at once but the launch answer comes this much later
                     (a client killed meanwhile never learns its id)
  outbid_spot        spot/interruptible launches are outbid at once (stopped, never running)
  terminate_sticky   after a terminate is acknowledged the instance stays listed running for N
                     more reads (-1: for ever)
  billed_factor      the provider's reported charge = price * hours * billed_factor (default 1)
  ssh_host/ssh_port  the SSH address running instances report (default 127.0.0.1:22)
  ssh_user           the SSH user running instances report (default root)

With --authorized-keys FILE, the SSH public keys of every launch are appended to FILE, so that a
test's sshd (AuthorizedKeysFile FILE) lets the server in as it would on a real instance.
"""

import argparse
import base64
import ipaddress
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Instance:
    def __init__(self, iid, label, offer, price, spot, ssh_keys, now):
        self.id = iid
        self.label = label
        self.offer = offer or {}
        self.price = price
        self.spot = spot
        self.ssh_keys = list(ssh_keys or [])
        self.created = now
        self.terminate_requested = None  # time of the acknowledged terminate
        self.sticky_reads_left = 0
        self.gone = False  # terminated and no longer listed
        self.forced_state = None  # "running" for injected instances, "outbid" for lost spots
        self.message = ""


class FakeProvider:
    """Subclasses implement handle(method, path, query, body, headers) -> (status, obj[, headers])
    and auth_ok(headers)."""

    name = "fake"

    def __init__(self, args):
        self.lock = threading.RLock()
        self.api_key = args.api_key
        self.offer_count = args.offers
        self.authorized_keys = args.authorized_keys
        self.knobs = {
            "rate_limit_burst": 0,
            "retry_after": 1,
            "server_error_burst": 0,
            "provision_delay_s": 0.3,
            "provision_never": False,
            "launch_error": "",
            "launch_answer_delay_s": 0,
            "outbid_spot": False,
            "terminate_sticky": 0,
            "billed_factor": 1.0,
            "ssh_host": "127.0.0.1",
            "ssh_port": 22,
            "ssh_user": "root",
        }
        self.instances = {}
        self.next_id = 1000
        self.launches = 0
        self.terminates = 0
        self.calls = []

    # --- the instance life cycle, as every provider sees it -------------------------------
    def new_instance(self, label, offer, price, spot, ssh_keys):
        with self.lock:
            self.next_id += 1
            iid = self.next_id
            inst = Instance(iid, label, offer, price, spot, ssh_keys, time.time())
            if spot and self.knobs["outbid_spot"]:
                inst.forced_state = "outbid"
                inst.message = "outbid: a higher bid took the machine"
            self.instances[iid] = inst
            self.launches += 1
            if self.authorized_keys and ssh_keys:
                with open(self.authorized_keys, "a", encoding="utf-8") as f:
                    for k in ssh_keys:
                        f.write(k.strip() + "\n")
            delay = float(self.knobs["launch_answer_delay_s"])
        if delay > 0:
            time.sleep(delay)
        return inst

    def state_of(self, inst, read=True):
        """One of provisioning, running, outbid, terminating, terminated. A read of a sticky
        terminated instance uses up one of its sticky reads."""
        with self.lock:
            if inst.gone:
                return "terminated"
            if inst.terminate_requested is not None:
                if inst.sticky_reads_left != 0:
                    if read and inst.sticky_reads_left > 0:
                        inst.sticky_reads_left -= 1
                    return "running"
                inst.gone = True
                return "terminated"
            if inst.forced_state:
                return inst.forced_state
            if self.knobs["provision_never"]:
                return "provisioning"
            if time.time() - inst.created < float(self.knobs["provision_delay_s"]):
                return "provisioning"
            return "running"

    def terminate(self, inst):
        with self.lock:
            self.terminates += 1
            if inst.terminate_requested is None:
                inst.terminate_requested = time.time()
            # A terminate asked again is honoured as the knob says now.
            inst.sticky_reads_left = int(self.knobs["terminate_sticky"])

    def billed(self, inst):
        end = inst.terminate_requested or time.time()
        hours = max(0.0, end - inst.created) / 3600.0
        return round(inst.price * hours * float(self.knobs["billed_factor"]), 6)

    def live_instances(self):
        with self.lock:
            return [i for i in self.instances.values() if self.state_of(i, read=False) != "terminated"]

    def find(self, iid):
        with self.lock:
            try:
                inst = self.instances.get(int(iid))
            except (TypeError, ValueError):
                return None
            if inst is None or self.state_of(inst, read=False) == "terminated":
                return None
            return inst

    # --- control API -----------------------------------------------------------------------
    def control(self, method, path, body):
        with self.lock:
            if method == "POST" and path == "/_fake/config":
                self.knobs.update(body or {})
                return 200, {"knobs": self.knobs}
            if method == "POST" and path == "/_fake/instances":
                b = body or {}
                offer = {"gpu_model": b.get("gpu_model", "H100 PCIe"), "gpu_count": b.get("gpu_count", 1)}
                inst = self.new_instance(b.get("label", "hwledger-rental-unknown"), offer,
                                         float(b.get("price", 2.0)), False, [])
                self.launches -= 1  # not launched through the API
                inst.forced_state = b.get("state", "running")
                return 201, {"id": inst.id}
            if method == "GET" and path == "/_fake/state":
                out = []
                for i in self.instances.values():
                    out.append({"id": i.id, "label": i.label, "state": self.state_of(i, read=False),
                                "price": i.price, "spot": i.spot, "ssh_keys": i.ssh_keys,
                                "terminate_requested": i.terminate_requested is not None})
                return 200, {"instances": out, "launches": self.launches,
                             "terminates": self.terminates, "calls": self.calls[-500:]}
        return 404, {"error": "no such control endpoint"}

    def failure_injected(self):
        """(status, obj, headers) when a knob fails this request, else None."""
        with self.lock:
            if self.knobs["rate_limit_burst"] > 0:
                self.knobs["rate_limit_burst"] -= 1
                return 429, {"error": "rate limited"}, {"Retry-After": str(self.knobs["retry_after"])}
            if self.knobs["server_error_burst"] > 0:
                self.knobs["server_error_burst"] -= 1
                return 500, {"error": "internal server error"}, {}
        return None

    # --- helpers for subclasses ------------------------------------------------------------
    @staticmethod
    def bearer(headers):
        v = headers.get("Authorization", "")
        return v[7:] if v.startswith("Bearer ") else None

    @staticmethod
    def basic_user(headers):
        v = headers.get("Authorization", "")
        if not v.startswith("Basic "):
            return None
        try:
            user, _, _ = base64.b64decode(v[6:]).decode().partition(":")
            return user
        except (ValueError, UnicodeDecodeError):
            return None

    def auth_ok(self, headers):
        return self.bearer(headers) == self.api_key

    def handle(self, method, path, query, body, headers):
        raise NotImplementedError


def make_handler(fake):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet
            pass

        def reply(self, status, obj, extra=None):
            data = b"" if obj is None else json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def dispatch(self, method):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return self.reply(400, {"error": "malformed JSON"})
            parts = urlsplit(self.path)
            path = parts.path
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            if path.startswith("/_fake/"):
                status, obj = fake.control(method, path, body)
                return self.reply(status, obj)
            with fake.lock:
                fake.calls.append([method, path])
            injected = fake.failure_injected()
            if injected:
                return self.reply(*injected)
            res = fake.handle(method, path, query, body, self.headers)
            return self.reply(*res)

        def do_GET(self):
            self.dispatch("GET")

        def do_POST(self):
            self.dispatch("POST")

        def do_PUT(self):
            self.dispatch("PUT")

        def do_DELETE(self):
            self.dispatch("DELETE")

    return Handler


def arg_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--api-key", default="test-key")
    p.add_argument("--offers", type=int, default=0,
                   help="serve this many generated offers besides the fixed ones")
    p.add_argument("--authorized-keys", default="")
    return p


def serve(fake, args):
    if not ipaddress.ip_address(args.host).is_loopback:
        sys.exit("fake providers listen on loopback addresses only")
    httpd = ThreadingHTTPServer((args.host, args.port), make_handler(fake))
    httpd.daemon_threads = True
    print("LISTENING %d" % httpd.server_address[1], flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
