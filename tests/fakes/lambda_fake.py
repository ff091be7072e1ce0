"""A loopback fake of Lambda Cloud's REST API v1 for the tests, following its reference
(https://docs-api.lambda.ai/api/cloud, "Lambda Cloud API"):

  GET  /api/v1/instance-types               List available instance types (listInstanceTypes)
  GET  /api/v1/instances                    List running instances (listInstances)
  GET  /api/v1/instances/{id}               Retrieve instance details (getInstance)
  POST /api/v1/instance-operations/launch   Launch instances (launchInstance)
  POST /api/v1/instance-operations/terminate  Terminate instances (terminateInstance)
  GET  /api/v1/ssh-keys, POST /api/v1/ssh-keys  List / add SSH keys (listSSHKeys, addSSHKey)

Authentication as the reference describes: HTTP basic with the key as the user name, or a bearer
token; a wrong key gets 401 with error code global/invalid-api-key. Errors are
{"error": {"code", "message", "suggestion"}}. Instance status words: booting, active,
terminating, terminated. Knobs and the control API: fake_common.py.
"""

import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_common import FakeProvider, arg_parser, serve  # noqa: E402

GIB = 1

FIXED = [
    # name, description, gpu_description, cents/h, vcpus, memory_gib, storage_gib, gpus, regions
    ("gpu_1x_a10", "1x A10 (24 GB PCIe)", "A10 (24 GB PCIe)", 75, 30, 200, 1400, 1, ["us-west-1"]),
    ("gpu_1x_h100_pcie", "1x H100 (80 GB PCIe)", "H100 (80 GB PCIe)", 249, 26, 200, 1024, 1,
     ["us-west-1", "us-east-1"]),
    ("gpu_8x_a100_80gb_sxm4", "8x A100 (80 GB SXM4)", "A100 (80 GB SXM4)", 1432, 240, 1800, 20480,
     8, ["us-east-1"]),
    ("gpu_8x_h100_sxm5", "8x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 2392, 208, 1800, 24780, 8,
     []),  # no capacity anywhere: not an offer
]


def err(status, code, message, suggestion=None):
    e = {"code": code, "message": message}
    if suggestion:
        e["suggestion"] = suggestion
    return status, {"error": e}


class LambdaFake(FakeProvider):
    name = "lambda"

    def __init__(self, args):
        super().__init__(args)
        self.ssh_keys = []
        self.types = {}
        for (n, d, g, c, v, m, s, gpus, regions) in FIXED:
            self.types[n] = (d, g, c, v, m, s, gpus, regions)
        for i in range(self.offer_count):
            gpus = [1, 2, 4, 8][i % 4]
            mem = [24, 48, 80, 141][(i // 4) % 4]
            self.types["gpu_%dx_synth_%05d" % (gpus, i)] = (
                "%dx Synth%d (%d GB PCIe)" % (gpus, i % 97, mem), "Synth%d (%d GB PCIe)" % (i % 97, mem),
                50 + (i * 37) % 3000, 8 * gpus, 64 * gpus, 512 * gpus, gpus, ["us-south-%d" % (i % 3 + 1)])

    def auth_ok(self, headers):
        return self.bearer(headers) == self.api_key or self.basic_user(headers) == self.api_key

    def type_json(self, name):
        d, g, c, v, m, s, gpus, _ = self.types[name]
        return {"name": name, "description": d, "gpu_description": g, "price_cents_per_hour": c,
                "specs": {"vcpus": v, "memory_gib": m, "storage_gib": s, "gpus": gpus}}

    def instance_json(self, inst):
        state = self.state_of(inst)
        status = {"provisioning": "booting", "running": "active", "outbid": "terminating",
                  "terminated": "terminated"}[state]
        out = {"id": str(inst.id), "name": inst.label, "status": status,
               "ssh_key_names": inst.offer.get("ssh_key_names", []),
               "file_system_names": [],
               "region": {"name": inst.offer.get("region", "us-west-1"), "description": "test"},
               "instance_type": self.type_json(inst.offer["type"]) if "type" in inst.offer else {
                   "name": "unknown", "description": inst.offer.get("gpu_model", ""),
                   "gpu_description": inst.offer.get("gpu_model", ""),
                   "price_cents_per_hour": int(round(inst.price * 100)),
                   "specs": {"vcpus": 8, "memory_gib": 64, "storage_gib": 512,
                             "gpus": inst.offer.get("gpu_count", 1)}},
               "hostname": "host-%d" % inst.id, "is_reserved": False}
        if status == "active":
            out["ip"] = self.knobs["ssh_host"]
        return out

    def handle(self, method, path, query, body, headers):
        if not self.auth_ok(headers):
            return err(401, "global/invalid-api-key", "API key was invalid, expired, or deleted.",
                       "Check your API key or create a new one, then try again.")
        if not path.startswith("/api/v1/"):
            return err(404, "global/not-found", "Not found")
        p = path[len("/api/v1"):]
        if method == "GET" and p == "/instance-types":
            data = {}
            for n, t in self.types.items():
                data[n] = {"instance_type": self.type_json(n),
                           "regions_with_capacity_available":
                               [{"name": r, "description": r} for r in t[7]]}
            return 200, {"data": data}
        if method == "GET" and p == "/ssh-keys":
            return 200, {"data": self.ssh_keys}
        if method == "POST" and p == "/ssh-keys":
            b = body or {}
            if not isinstance(b.get("name"), str) or not b["name"]:
                return err(400, "global/invalid-parameters", "name is required")
            if any(k["name"] == b["name"] for k in self.ssh_keys):
                return err(400, "ssh-keys/key-in-use", "An SSH key with this name already exists")
            key = {"id": "key-%d" % (len(self.ssh_keys) + 1), "name": b["name"],
                   "public_key": b.get("public_key", "")}
            self.ssh_keys.append(key)
            return 200, {"data": key}
        if method == "POST" and p == "/instance-operations/launch":
            b = body or {}
            t = b.get("instance_type_name")
            region = b.get("region_name")
            names = b.get("ssh_key_names")
            if t not in self.types or not isinstance(names, list) or len(names) != 1:
                return err(400, "global/invalid-parameters",
                           "instance_type_name, region_name and exactly one ssh_key_names are required")
            if region not in self.types[t][7]:
                return err(400, "instance-operations/launch/insufficient-capacity",
                           "Not enough capacity to fulfill launch request.")
            if self.knobs["launch_error"]:
                return err(400, "instance-operations/launch/insufficient-capacity",
                           self.knobs["launch_error"])
            keys = [k["public_key"] for k in self.ssh_keys if k["name"] in names]
            if len(keys) != 1:
                return err(400, "global/invalid-parameters", "SSH key not found")
            ud = b.get("user_data", "")
            if isinstance(ud, str):
                keys += [line.strip()[3:-1] for line in ud.splitlines() if line.strip().startswith("- '")]
            name = b.get("name") or ""
            if len(name) > 64:
                return err(400, "global/invalid-parameters", "name is longer than 64 characters")
            inst = self.new_instance(name, {"type": t, "region": region, "ssh_key_names": names},
                                     self.types[t][2] / 100.0, False, keys)
            return 200, {"data": {"instance_ids": [str(inst.id)]}}
        if method == "POST" and p == "/instance-operations/terminate":
            ids = (body or {}).get("instance_ids")
            if not isinstance(ids, list) or not ids:
                return err(400, "global/invalid-parameters", "instance_ids is required")
            done = []
            for i in ids:
                inst = self.find(i)
                if inst is None:
                    return err(404, "global/object-does-not-exist", "Instance %s not found" % i)
                self.terminate(inst)
                done.append(self.instance_json(inst))
            return 200, {"data": {"terminated_instances": done}}
        if method == "GET" and p == "/instances":
            return 200, {"data": [self.instance_json(i) for i in self.live_instances()]}
        if method == "GET" and p.startswith("/instances/"):
            inst = self.find(p[len("/instances/"):])
            if inst is None:
                return err(404, "global/object-does-not-exist", "Specified instance does not exist.")
            return 200, {"data": self.instance_json(inst)}
        return err(404, "global/not-found", "Not found")


if __name__ == "__main__":
    a = arg_parser("fake Lambda Cloud API").parse_args()
    serve(LambdaFake(a), a)
