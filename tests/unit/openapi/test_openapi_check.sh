#!/usr/bin/env bash
# The OpenAPI checker itself (tests/support/openapi_check.py), against proto/openapi.yaml: a good
# record passes; a wrong type, a missing required field, an undocumented status, an unlisted
# content type and an unknown path each fail with a message naming the problem; a routes list
# equal to the spec passes, one with a route missing, one extra, and a wrong role or body limit
# each fail and say which.
# Usage: test_openapi_check.sh REPO
set -euo pipefail

repo=$(cd "$1" && pwd)
py=/usr/bin/python3
"$py" -c 'import yaml, jsonschema' 2>/dev/null || { echo "SKIP: python3-yaml/python3-jsonschema missing"; exit 77; }
check=${repo}/tests/support/openapi_check.py
spec=${repo}/proto/openapi.yaml
work=$(mktemp -d /tmp/hwl-openapi-unit-XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
ok() { echo "ok: $*"; passed=$((passed + 1)); }

# expect NAME WANT_RC PATTERN -- CMD...: CMD exits WANT_RC and its output matches PATTERN.
expect() {
  local name=$1 want=$2 pattern=$3 rc=0
  shift 4
  "$@" >"${work}/out" 2>&1 || rc=$?
  if [[ $rc -ne $want ]]; then
    fail "${name}: exit ${rc}, wanted ${want}"; sed 's/^/    /' "${work}/out"; return
  fi
  if ! grep -Eq -- "$pattern" "${work}/out"; then
    fail "${name}: output lacks /${pattern}/"; sed 's/^/    /' "${work}/out"; return
  fi
  ok "$name"
}

# record FILE METHOD PATH STATUS CONTENT_TYPE BODY
record() {
  "$py" -c 'import json,sys; print(json.dumps({"method": sys.argv[1], "path": sys.argv[2], "status": int(sys.argv[3]), "content_type": sys.argv[4], "body": sys.argv[5]}))' \
    "$2" "$3" "$4" "$5" "$6" >"$1"
}

health='{"status":"ok","version":"0.1.0","uptime_s":3,"events":6}'
record "${work}/good.jsonl" GET /v1/health 200 application/json "$health"
record "${work}/type.jsonl" GET /v1/health 200 application/json '{"status":"ok","version":"0.1.0","uptime_s":"3","events":6}'
record "${work}/missing.jsonl" GET /v1/health 200 application/json '{"status":"ok","uptime_s":3,"events":6}'
record "${work}/status.jsonl" GET /v1/health 418 application/json "$health"
record "${work}/ctype.jsonl" GET /metrics 200 application/json '{}'
record "${work}/nopath.jsonl" GET /v1/nothing-here 200 application/json '{}'
record "${work}/notjson.jsonl" GET /v1/health 200 application/json 'status: ok'
# Nested, through $ref and allOf: a host whose GPU index is a string, and a page whose
# next_after is a number.
host='{"id":"host-1","name":"a","kind":"agent","address":"127.0.0.1:1","state":"reachable","enrolled_ms":1,"state_changed_ms":1,"cert_serial":"ab","cert_not_after_ms":2,"platform":{},"revoked_ms":null,"last_seen_ms":5,"connected":true,"gpus":[{"uuid":"GPU-1","index":0,"name":"H100","driver_version":"550","memory_total_bytes":null}]}'
record "${work}/host.jsonl" GET /v1/hosts/host-1 200 application/json "$host"
record "${work}/nested.jsonl" GET /v1/hosts/host-1 200 application/json "${host/\"index\":0/\"index\":\"0\"}"
record "${work}/nullable.jsonl" GET "/v1/hosts?limit=1" 200 application/json "{\"hosts\":[${host}],\"next_after\":7}"
record "${work}/error.jsonl" GET /v1/hosts/host-1 404 application/json '{"error":{"code":"not_found","message":"no host"}}'
record "${work}/badError.jsonl" GET /v1/hosts/host-1 404 application/json '{"code":"not_found"}'
record "${work}/pem.jsonl" GET /v1/pki/ca 200 application/x-pem-file '-----BEGIN CERTIFICATE-----'
record "${work}/prom.jsonl" GET /metrics 200 'text/plain; version=0.0.4; charset=utf-8' '# HELP x y'
cat "${work}/good.jsonl" "${work}/host.jsonl" "${work}/error.jsonl" "${work}/pem.jsonl" \
  "${work}/prom.jsonl" >"${work}/all-good.jsonl"
cat "${work}/good.jsonl" "${work}/type.jsonl" "${work}/status.jsonl" >"${work}/mixed.jsonl"

v() { "$py" "$check" validate "$spec" "$1"; }
expect "validate: good records pass" 0 "^openapi: 5 responses checked against .*openapi.yaml$" -- v "${work}/all-good.jsonl"
expect "validate: a wrong type fails" 1 "\['uptime_s'\]: '3' is not of type 'integer'" -- v "${work}/type.jsonl"
expect "validate: a missing required field fails" 1 "'version' is a required property" -- v "${work}/missing.jsonl"
expect "validate: an undocumented status fails" 1 "status 418 is not described for GET /v1/health" -- v "${work}/status.jsonl"
expect "validate: an unlisted content type fails" 1 "content type 'application/json' is not listed for GET /metrics" -- v "${work}/ctype.jsonl"
expect "validate: an unknown path fails" 1 "no path in the spec matches /v1/nothing-here" -- v "${work}/nopath.jsonl"
expect "validate: a body that is not JSON fails" 1 "body is not JSON" -- v "${work}/notjson.jsonl"
expect "validate: a wrong type inside a \$ref'd array fails" 1 "\['gpus'\]\[0\]\['index'\]: '0' is not of type 'integer'" -- v "${work}/nested.jsonl"
expect "validate: a nullable string given a number fails" 1 "\['next_after'\]: 7 is not of type 'string', 'null'" -- v "${work}/nullable.jsonl"
expect "validate: an error not in the error shape fails" 1 "'error' is a required property" -- v "${work}/badError.jsonl"
expect "validate: every failure listed, with its record and the count" 1 "openapi: 3 responses checked against .*, 2 failed" -- v "${work}/mixed.jsonl"
expect "validate: the failing record is shown" 1 '  record: \{"method": "GET", "path": "/v1/health", "status": 418' -- v "${work}/mixed.jsonl"
expect "validate: records from stdin" 0 "openapi: 1 responses checked" -- bash -c "'$py' '$check' validate '$spec' - <'${work}/good.jsonl'"

# Routes: the spec's own operations as the code would print them.
"$py" - "$spec" >"${work}/routes.json" <<'PY'
import json, sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
out = []
for path, item in spec["paths"].items():
    for m, op in item.items():
        if m in ("get", "post", "delete", "put", "patch"):
            out.append({"method": m.upper(), "path": path, "role": op["x-hwl-role"],
                        "body_limit": op["x-hwl-body-limit"]})
print(json.dumps(out))
PY
edit() {  # OUT PYTHON-EXPRESSION-ON-r (the list)
  "$py" -c "import json,sys; r=json.load(open(sys.argv[1])); $2; print(json.dumps(r))" "${work}/routes.json" >"$1"
}
edit "${work}/missing.json" 'r[:] = [x for x in r if not (x["method"] == "GET" and x["path"] == "/v1/collector")]'
edit "${work}/extra.json" 'r.append({"method": "GET", "path": "/v1/secret/{name}", "role": "admin", "body_limit": 0})'
edit "${work}/role.json" '[x.update(role="viewer") for x in r if x["path"] == "/v1/tokens" and x["method"] == "POST"]'
edit "${work}/limit.json" '[x.update(body_limit=4096) for x in r if x["path"] == "/v1/plan"]'
edit "${work}/zero.json" '[x.update(body_limit=0) for x in r if x["body_limit"] == 1048576]'
edit "${work}/bare.json" 'r[:] = [{"method": x["method"], "path": x["path"].replace("{id}", "{job_id}")} for x in r]'

rt() { "$py" "$check" routes "$spec" "$1"; }
expect "routes: the spec's own list matches" 0 "^openapi routes: 41 routes match " -- rt "${work}/routes.json"
expect "routes: a route missing from the code fails" 1 "in the spec, not in the code: GET /v1/collector" -- rt "${work}/missing.json"
expect "routes: an extra route in the code fails" 1 "in the code, not in the spec: GET /v1/secret/\{name\}" -- rt "${work}/extra.json"
expect "routes: a different role fails" 1 "POST /v1/tokens: role 'viewer' in the code, x-hwl-role 'admin' in the spec" -- rt "${work}/role.json"
expect "routes: a different body limit fails" 1 "POST /v1/plan: body_limit 4096 in the code, x-hwl-body-limit 262144 in the spec" -- rt "${work}/limit.json"
expect "routes: body_limit 0 is the default (1048576)" 0 "routes match" -- rt "${work}/zero.json"
expect "routes: without role/body_limit only the routes are compared" 0 "routes match" -- rt "${work}/bare.json"
expect "routes: from stdin" 0 "routes match" -- bash -c "'$py' '$check' routes '$spec' - <'${work}/routes.json'"
expect "routes: not a list is a usage error" 2 "expected a JSON array" -- bash -c "echo '{}' | '$py' '$check' routes '$spec' -"

# lint catches a dangling $ref and an operation without x-hwl-role.
"$py" - "$spec" "${work}/broken.yaml" <<'PY'
import sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
del spec["paths"]["/v1/health"]["get"]["x-hwl-role"]
spec["paths"]["/v1/collector"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {"$ref": "#/components/schemas/Nope"}
yaml.safe_dump(spec, open(sys.argv[2], "w"))
PY
expect "lint: the real specs pass" 0 "openapi-agent.yaml: 11 operations" -- "$py" "$check" lint "$spec" "${repo}/proto/openapi-agent.yaml"
expect "lint: a dangling \$ref fails" 1 "does not resolve" -- "$py" "$check" lint "${work}/broken.yaml"
expect "lint: an operation without x-hwl-role fails" 1 "GET /v1/health: x-hwl-role None" -- "$py" "$check" lint "${work}/broken.yaml"

echo "${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]]
