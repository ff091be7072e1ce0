"""A loopback fake of Vast.ai's REST API v0 for the tests, following its reference
(https://docs.vast.ai/api-reference):

  POST   /api/v0/bundles/               Search offers ("search offers": a JSON query body)
  PUT    /api/v0/asks/{id}/             Create instance ("create instance": accept an offer)
  POST   /api/v0/instances/{id}/ssh/    Attach SSH key ("attach ssh-key")
  GET    /api/v0/instances/             Show instances ("show instances")
  GET    /api/v0/instances/{id}/        Show instance ("show instance")
  DELETE /api/v0/instances/{id}/        Destroy instance ("destroy instance")

Authentication: Authorization: Bearer KEY; a wrong key gets 401 {"success": false, "error":
"invalid_user_key", "msg": ...}. Instance fields: id, label, actual_status (loading, running,
exited), intended_status, status_msg, ssh_host, ssh_port, dph_total, num_gpus, gpu_name, is_bid.
An interruptible instance outbid at once is exited with status_msg saying so. Knobs and the
control API: fake_common.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_common import FakeProvider, arg_parser, serve  # noqa: E402

FIXED = [
    # id, gpu_name, num_gpus, gpu_ram MB, cpu_cores_effective, cpu_ram MB, disk GB, dph_total,
    # min_bid, reliability2, geolocation
    (5001, "RTX 4090", 1, 24564, 16.0, 64000, 200.0, 0.35, 0.18, 0.995, "US, California"),
    (5002, "H100 SXM", 1, 81559, 26.0, 193000, 500.0, 2.10, 1.40, 0.999, "Sweden, SE"),
    (5003, "A100 SXM4", 8, 81920, 128.0, 1031000, 2000.0, 9.60, 6.00, 0.990, "US, Texas"),
    (5004, "L40S", 2, 46068, 32.0, 257000, 800.0, 1.44, 0.90, 0.980, "Germany, DE"),
]


class VastFake(FakeProvider):
    name = "vast"

    def __init__(self, args):
        super().__init__(args)
        self.asks = {}
        for row in FIXED:
            self.asks[row[0]] = row
        for i in range(self.offer_count):
            gpus = [1, 2, 4, 8][i % 4]
            ram = [24564, 49140, 81559, 143771][(i // 4) % 4]
            self.asks[100000 + i] = (100000 + i, "Synth %d" % (i % 97), gpus, ram, 8.0 * gpus,
                                     64000 * gpus, 100.0 * gpus, round(0.2 + (i * 37 % 3000) / 1000.0, 3),
                                     round(0.1 + (i * 37 % 3000) / 2000.0, 3), 0.9 + (i % 10) / 100.0,
                                     "US, Region %d" % (i % 5))

    def offer_json(self, row):
        return {"id": row[0], "ask_contract_id": row[0], "gpu_name": row[1], "num_gpus": row[2],
                "gpu_ram": row[3], "cpu_cores_effective": row[4], "cpu_ram": row[5],
                "disk_space": row[6], "dph_total": row[7], "min_bid": row[8],
                "reliability2": row[9], "geolocation": row[10], "rentable": True,
                "verified": True}

    def instance_json(self, inst):
        state = self.state_of(inst)
        actual = {"provisioning": "loading", "running": "running", "outbid": "exited",
                  "terminated": "exited"}[state]
        intended = "stopped" if state == "outbid" else "running"
        out = {"id": inst.id, "label": inst.label, "actual_status": actual,
               "intended_status": intended, "cur_state": actual,
               "status_msg": inst.message or ("success, running" if actual == "running" else ""),
               "dph_total": inst.price, "num_gpus": inst.offer.get("gpu_count", 1),
               "gpu_name": inst.offer.get("gpu_model", ""), "is_bid": inst.spot,
               "image_uuid": inst.offer.get("image", ""), "ssh_host": None, "ssh_port": None}
        if actual == "running":
            out["ssh_host"] = self.knobs["ssh_host"]
            out["ssh_port"] = self.knobs["ssh_port"]
        return out

    def handle(self, method, path, query, body, headers):
        if not self.auth_ok(headers):
            return 401, {"success": False, "error": "invalid_user_key",
                         "msg": "Invalid user key or no such user."}
        if not path.startswith("/api/v0/"):
            return 404, {"success": False, "error": "not_found", "msg": "no such endpoint"}
        p = path[len("/api/v0"):]
        parts = [x for x in p.split("/") if x]
        if method == "POST" and parts == ["bundles"]:
            return 200, {"offers": [self.offer_json(r) for r in self.asks.values()]}
        if method == "PUT" and len(parts) == 2 and parts[0] == "asks":
            try:
                row = self.asks[int(parts[1])]
            except (ValueError, KeyError):
                return 404, {"success": False, "error": "no_such_ask", "msg": "Offer not found"}
            b = body or {}
            if not isinstance(b.get("image"), str) or not b["image"]:
                return 400, {"success": False, "error": "invalid_args", "msg": "image is required"}
            if self.knobs["launch_error"]:
                return 400, {"success": False, "error": "invalid_args", "msg": self.knobs["launch_error"]}
            spot = "price" in b
            price = float(b["price"]) if spot else row[7]
            if spot and price < row[8]:
                return 400, {"success": False, "error": "invalid_price",
                             "msg": "bid below the minimum of %.3f" % row[8]}
            inst = self.new_instance(b.get("label", ""), {"gpu_model": row[1], "gpu_count": row[2],
                                                         "image": b["image"]}, price, spot, [])
            return 200, {"success": True, "new_contract": inst.id}
        if len(parts) >= 2 and parts[0] == "instances":
            inst = self.find(parts[1])
            if method == "POST" and len(parts) == 3 and parts[2] == "ssh":
                if inst is None:
                    return 404, {"success": False, "error": "no_such_instance", "msg": "Instance not found"}
                key = (body or {}).get("ssh_key", "")
                if not isinstance(key, str) or not key.startswith("ssh-"):
                    return 400, {"success": False, "error": "invalid_args", "msg": "bad ssh_key"}
                inst.ssh_keys.append(key)
                if self.authorized_keys:
                    with open(self.authorized_keys, "a", encoding="utf-8") as f:
                        f.write(key.strip() + "\n")
                return 200, {"success": True}
            if method == "GET" and len(parts) == 2:
                if inst is None:
                    return 200, {"instances": None}
                return 200, {"instances": self.instance_json(inst)}
            if method == "DELETE" and len(parts) == 2:
                if inst is None:
                    return 404, {"success": False, "error": "no_such_instance", "msg": "Instance not found"}
                self.terminate(inst)
                return 200, {"success": True}
        if method == "GET" and parts == ["instances"]:
            return 200, {"instances": [self.instance_json(i) for i in self.live_instances()]}
        return 404, {"success": False, "error": "not_found", "msg": "no such endpoint"}


if __name__ == "__main__":
    a = arg_parser("fake Vast.ai API").parse_args()
    serve(VastFake(a), a)
