"""A loopback fake of RunPod's GraphQL API for the tests, following its specification
(https://graphql-spec.runpod.io) and "Manage pods" (https://docs.runpod.io/sdks/graphql/manage-pods):

  POST /graphql  {query, variables}
    gpuTypes { id displayName memoryInGb secureCloud communityCloud
               lowestPrice(input) { minimumBidPrice uninterruptablePrice minVcpu minMemory } }
    podFindAndDeployOnDemand(input: {cloudType, gpuCount, gpuTypeId, name, imageName, env, ...})
    podRentInterruptable(input: {..., bidPerGpu})
    pod(input: {podId}) { id name desiredStatus costPerHr gpuCount runtime { ports {...} } }
    myself { pods { ... } }
    podTerminate(input: {podId})

Like RunPod, errors come back with HTTP 200 and an "errors" array (a wrong key too:
"Unauthorized"), which is what the adapter must treat as errors. The operation is recognised by
the root field named in the query text; the values come only from the variables. The knob
graphql_error (a message) makes the next GraphQL request answer HTTP 200 with that error and no
data. Other knobs and the control API: fake_common.py.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_common import FakeProvider, arg_parser, serve  # noqa: E402

FIXED = [
    # id, displayName, memoryInGb, secure, community, uninterruptablePrice, minimumBidPrice,
    # minVcpu, minMemory
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 80, True, False, 2.99, 1.75, 16, 125),
    ("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, True, True, 1.64, 0.82, 8, 117),
    ("NVIDIA GeForce RTX 4090", "RTX 4090", 24, False, True, 0.44, 0.22, 6, 41),
]


def gql_error(message):
    return 200, {"errors": [{"message": message, "path": [], "extensions": {"code": "BAD_REQUEST"}}],
                 "data": None}


class RunpodFake(FakeProvider):
    name = "runpod"

    def __init__(self, args):
        super().__init__(args)
        self.knobs["graphql_error"] = ""
        self.types = list(FIXED)
        # Each generated type is offered on one cloud at 1, 2, 4 and 8 GPUs: 4 offers a type.
        for i in range(self.offer_count // 4):
            mem = [24, 48, 80, 141][i % 4]
            price = round(0.2 + (i * 37 % 3000) / 1000.0, 3)
            self.types.append(("SYNTH-%05d" % i, "Synth %d" % i, mem, i % 2 == 0, i % 2 == 1,
                               price, round(price / 2, 3), 4, 30))

    def pod_json(self, inst):
        state = self.state_of(inst)
        desired = {"provisioning": "RUNNING", "running": "RUNNING", "outbid": "EXITED",
                   "terminated": "TERMINATED"}[state]
        runtime = None
        if state == "running":
            runtime = {"uptimeInSeconds": 5, "ports": [
                {"ip": self.knobs["ssh_host"], "isIpPublic": True, "privatePort": 22,
                 "publicPort": self.knobs["ssh_port"], "type": "tcp"}]}
        return {"id": "pod%d" % inst.id, "name": inst.label, "desiredStatus": desired,
                "costPerHr": inst.price, "gpuCount": inst.offer.get("gpu_count", 1),
                "machine": {"gpuDisplayName": inst.offer.get("gpu_model", "")}, "runtime": runtime}

    def find_pod(self, pod_id):
        if not isinstance(pod_id, str) or not pod_id.startswith("pod"):
            return None
        return self.find(pod_id[3:])

    def handle(self, method, path, query, body, headers):
        if method != "POST" or path != "/graphql":
            return 404, {"errors": [{"message": "not found"}]}
        if not self.auth_ok(headers):
            # RunPod answers a bad key with HTTP 200 and an error.
            return gql_error("Unauthorized request, please check your API key")
        if self.knobs["graphql_error"]:
            msg = self.knobs["graphql_error"]
            self.knobs["graphql_error"] = ""
            return gql_error(msg)
        b = body or {}
        q = b.get("query", "")
        v = b.get("variables") or {}
        if not isinstance(q, str):
            return gql_error("query must be a string")
        fields = re.findall(r"\b(gpuTypes|podFindAndDeployOnDemand|podRentInterruptable|podTerminate|pod|myself)\b", q)
        if not fields:
            return gql_error("Cannot query this field")
        op = fields[0]
        inp = v.get("input") or {}
        if op == "gpuTypes":
            count = int(inp.get("gpuCount", 1) or 1)
            return 200, {"data": {"gpuTypes": [
                {"id": t[0], "displayName": t[1], "memoryInGb": t[2], "secureCloud": t[3],
                 "communityCloud": t[4],
                 "lowestPrice": {"uninterruptablePrice": t[5], "minimumBidPrice": t[6],
                                 "minVcpu": t[7], "minMemory": t[8], "gpuCount": count}}
                for t in self.types]}}
        if op in ("podFindAndDeployOnDemand", "podRentInterruptable"):
            t = next((t for t in self.types if t[0] == inp.get("gpuTypeId")), None)
            count = inp.get("gpuCount")
            if t is None or not isinstance(count, int) or count < 1:
                return gql_error("There are no longer any instances available with the requested specifications.")
            if inp.get("cloudType") not in ("SECURE", "COMMUNITY", "ALL"):
                return gql_error("cloudType must be SECURE, COMMUNITY or ALL")
            if not inp.get("imageName"):
                return gql_error("imageName is required")
            if self.knobs["launch_error"]:
                return gql_error(self.knobs["launch_error"])
            spot = op == "podRentInterruptable"
            if spot:
                bid = inp.get("bidPerGpu")
                if not isinstance(bid, (int, float)) or bid < t[6]:
                    return gql_error("bidPerGpu is below the minimum bid of %.3f" % t[6])
                price = round(bid * count, 6)
            else:
                price = round(t[5] * count, 6)
            keys = []
            for e in inp.get("env") or []:
                if isinstance(e, dict) and e.get("key") == "PUBLIC_KEY":
                    keys = [k for k in str(e.get("value", "")).splitlines() if k.strip()]
            inst = self.new_instance(inp.get("name", ""), {"gpu_model": t[1], "gpu_count": count},
                                     price, spot, keys)
            return 200, {"data": {op: {"id": "pod%d" % inst.id, "costPerHr": price,
                                       "imageName": inp["imageName"], "machineId": "m%d" % inst.id}}}
        if op == "pod":
            inst = self.find_pod(inp.get("podId"))
            return 200, {"data": {"pod": self.pod_json(inst) if inst else None}}
        if op == "myself":
            return 200, {"data": {"myself": {"pods": [self.pod_json(i) for i in self.live_instances()]}}}
        if op == "podTerminate":
            inst = self.find_pod(inp.get("podId"))
            if inst is None:
                return gql_error("pod not found")
            self.terminate(inst)
            return 200, {"data": {"podTerminate": None}}
        return gql_error("Cannot query this field")


if __name__ == "__main__":
    a = arg_parser("fake RunPod GraphQL API").parse_args()
    serve(RunpodFake(a), a)
