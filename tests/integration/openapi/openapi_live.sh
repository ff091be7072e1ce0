#!/usr/bin/env bash
# Real responses against the OpenAPI descriptions: a real hwledger-server and a real agent
# replaying the recorded H100 captures (as deploy/run-local.sh runs them, in a temp dir on free
# loopback ports), every route of both called with curl (GETs, the POSTs and DELETEs that are
# safe to make, and a few refusals), each answer saved as one JSONL record and checked by
# tests/support/openapi_check.py against proto/openapi.yaml and proto/openapi-agent.yaml.
# Usage: openapi_live.sh REPO BUILD_DIR [KEEP_DIR]
#   KEEP_DIR: also copy the records there (they hold fresh tokens of this throwaway ledger).
set -euo pipefail

repo=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
keep=${3:-}
py=/usr/bin/python3
for t in curl openssl; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
"$py" -c 'import yaml, jsonschema' 2>/dev/null || { echo "SKIP: python3-yaml/python3-jsonschema missing"; exit 77; }
server_bin=${build}/server/hwledger-server
agent_bin=${build}/agent/hwledger-agent
check=${repo}/tests/support/openapi_check.py
# shellcheck source=../support/shell_support.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/shell_support.sh"
hwl_init hwl-openapi
data=${work}/data
srv_records=${work}/server.jsonl
agent_records=${work}/agent.jsonl
: >"$srv_records"
: >"$agent_records"

"$server_bin" init --data-dir "$data" --admin-token-file "${work}/admin.token" >/dev/null
token=$(cat "${work}/admin.token")
sport=$(free_port)
"$server_bin" run --data-dir "$data" --listen "127.0.0.1:${sport}" --telemetry-interval-ms 500 \
  --log-level warn >"${work}/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -s ${data}/listen.addr ]] && break; sleep 0.1; done
[[ -s ${data}/listen.addr ]] || fail "server did not start"
srv=https://127.0.0.1:${sport}

# rec FILE METHOD TARGET [curl args...]: one request, its answer appended to FILE as a record.
rec() {
  local file=$1 method=$2 target=$3 base=$srv
  shift 3
  [[ $file == "$agent_records" ]] && base=$agent
  local meta
  meta=$(curl -s -X "$method" -o "${work}/body" -w '%{http_code}\n%{content_type}' \
    --cacert "${data}/ca.crt" "$@" "${base}${target}" || true)
  "$py" - "$method" "$target" "$meta" "${work}/body" >>"$file" <<'PY'
import json, sys
method, target, meta, body = sys.argv[1:5]
status, _, ctype = meta.partition("\n")
with open(body, "rb") as f:
    text = f.read().decode("utf-8", "replace")
print(json.dumps({"method": method, "path": target, "status": int(status or 0),
                  "content_type": ctype, "body": text}))
PY
}
s() { rec "$srv_records" "$@" -H "Authorization: Bearer ${token}"; }    # as admin
anon() { rec "$srv_records" "$@"; }
jget() { curl -s --cacert "${data}/ca.crt" -H "Authorization: Bearer ${token}" "$@"; }
field() { "$py" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# An agent, enrolled with a one-time token and scraped over mutual TLS.
aport=$(free_port)
read -r et pin < <(jget -X POST -d '{"host_hint":"openapi-demo"}' "${srv}/v1/enroll-tokens" |
  field 'd["token"] + " " + d["ca_pin"]')
"$agent_bin" enroll --server "$srv" --token "$et" --ca-pin "$pin" --state-dir "${work}/agent" \
  --advertise "127.0.0.1:${aport}" >/dev/null
job_user=()
if [[ $(id -u) -eq 0 ]]; then job_user=(--job-user nobody); fi
"$agent_bin" run --state-dir "${work}/agent" --listen "127.0.0.1:${aport}" \
  --probe "replay:${repo}/tests/fixtures/telemetry/demo-fleet.json" "${job_user[@]}" \
  >"${work}/agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
agent=https://127.0.0.1:${aport}
n=0
for _ in $(seq 1 150); do
  n=$(jget "${srv}/v1/hosts" | field 'sum(1 for h in d["hosts"] if h["state"]=="reachable" and h["gpus"] and all("sample" in g for g in h["gpus"]))')
  [[ $n -eq 1 ]] && break
  sleep 0.2
done
[[ $n -eq 1 ]] || fail "the agent was not scraped (see ${work}/agent.log)"
host=$(jget "${srv}/v1/hosts" | field 'd["hosts"][0]["id"]')
gpu=$(jget "${srv}/v1/gpus" | field 'd["gpus"][0]["uuid"]')
sleep 1.5  # a few telemetry points

# --- the server -----------------------------------------------------------------------------
anon GET /v1/health
anon GET /v1/pki/ca
anon GET /v1/hosts                                        # 401
s GET /v1/tokens
s POST /v1/tokens -d '{"role":"viewer","ttl_s":3600,"note":"openapi check"}'
viewer=$(tail -n1 "$srv_records" | field 'json.loads(d["body"])["token"]')
viewer_id=${viewer%%.*}
rec "$srv_records" POST /v1/tokens -H "Authorization: Bearer ${viewer}" -d '{"role":"admin"}'  # 403
s POST /v1/tokens -d '{"role":"root"}'                    # 400
s POST /v1/enroll-tokens -d '{"ttl_s":600}'
enr_id=$(tail -n1 "$srv_records" | field 'json.loads(d["body"])["id"]')
s GET /v1/tokens
s GET "/v1/events?limit=5"
s GET "/v1/events?after=2&limit=1000"
s GET "/v1/events?limit=x"                                # 400
s GET "/v1/events/stream?after=0" --max-time 1
s GET /v1/ledger/verify
s GET /v1/ledger/checkpoints
model=$(cat "${repo}/tests/fixtures/models/Llama-3.1-8B.config.json")
s POST /v1/plan -d "{\"model\": ${model}, \"context\": 8192, \"gpu_mem\": \"80GiB\", \"per_layer\": true}"
s POST /v1/plan -d "{\"model\": ${model}, \"context\": 4096}"
s POST /v1/plan -d "{\"model\": ${model}, \"context\": 4096, \"gpu\": \"NVIDIA H100 80GB HBM3\", \"batch\": 8}"
s POST /v1/plan -d "{\"model\": ${model}, \"context\": 4096, \"gpu\": \"Z9000\"}"           # 400
s POST /v1/plan -d '{"context": 4096}'                    # 400
s GET /v1/hosts
s GET "/v1/hosts?limit=1"
s GET "/v1/hosts?limit=0"                                 # 400
s GET "/v1/hosts/${host}"
s GET /v1/hosts/host-000000                               # 404
s GET /v1/gpus
s GET "/v1/gpus?host=${host}"
s GET "/v1/telemetry?host=${host}"
s GET "/v1/telemetry?host=${host}&gpu=${gpu}&step=1000"
s GET /v1/telemetry                                       # 400
s GET /v1/usage
s GET "/v1/usage?group_by=gpu"
s GET /v1/collector
s GET /metrics
cfg=$("$py" -c 'import json,sys,urllib.parse; print(urllib.parse.quote(json.dumps(json.load(open(sys.argv[1])))))' \
  "${repo}/tests/fixtures/models/Llama-3.1-8B.config.json")
s GET "/v1/placements?config=${cfg}&context=8192"
s POST /v1/placements -d "{\"model\": ${model}, \"context\": 8192, \"tp\": 2}"
s POST /v1/jobs -d '{"name":"openapi","command":["sleep","60"],"gpus":1}'
job=$(tail -n1 "$srv_records" | field 'json.loads(d["body"])["id"]')
s POST /v1/jobs -d '{"command":["sleep","1"],"gpus":8}'   # 409 no_placement
s POST /v1/jobs -d '{"command":"sleep"}'                  # 400
for _ in $(seq 1 50); do
  st=$(jget "${srv}/v1/jobs/${job}" | field 'd["state"]')
  [[ $st == running ]] && break
  sleep 0.2
done
s GET /v1/jobs
s GET "/v1/jobs?host=${host}"
s GET "/v1/jobs/${job}"
s GET /v1/jobs/job-000000000000                           # 404
s GET "/v1/jobs/${job}/logs?tail=10"
s GET "/v1/jobs/${job}/logs?follow=1" --max-time 1
s GET "/v1/usage?group_by=job"
s DELETE "/v1/jobs/${job}"
s GET "/v1/jobs/${job}"
s DELETE "/v1/tokens/${viewer_id}"
s DELETE "/v1/tokens/${enr_id}"
s DELETE "/v1/tokens/${viewer_id}"                        # 409
s GET /v1/tokens

# --- the agent, as the server (its identity is the one the agent pinned) ----------------------
a() { rec "$agent_records" "$@" --cert "${data}/server.crt" --key "${data}/server.key"; }
a GET /v1/health
a GET /v1/info
a GET /v1/telemetry
a GET /v1/telemetry/history
a GET "/v1/telemetry/history?gpu=${gpu}"
a GET "/v1/telemetry/history?gpu=GPU-none"                # 404
a GET "/v1/outbox?after=0&limit=5"
a GET "/v1/outbox?limit=0"                                # 400
a GET /metrics
a GET /v1/jobs
a GET "/v1/jobs/${job}"
a GET "/v1/jobs/${job}/logs?tail=5"
a POST /v1/jobs -d '{"id":"openapi-direct","command":["sleep","30"],"gpus":[]}'
a POST /v1/jobs -d '{"id":"openapi-direct","command":["sleep","30"],"gpus":[]}'   # 200: the same job
a POST /v1/jobs -d '{"id":"bad id"}'                      # 400
a GET /v1/jobs/openapi-direct
a DELETE /v1/jobs/openapi-direct
a GET /v1/jobs/no-such-job                                # 404
a GET "/v1/jobs/openapi-direct/logs?follow=1&tail=1" --max-time 1

# --- enrollment and renewal ------------------------------------------------------------------
anon POST /v1/enroll -d '{"token":"enr_0000000000000000.nope","csr":"x"}'          # 401
anon POST /v1/pki/renew -d '{"csr":"x"}'                  # 401: no host certificate
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "${work}/renew.key" \
  -subj "/CN=${host}" -out "${work}/renew.csr" 2>/dev/null
csr=$("$py" -c 'import json,sys; print(json.dumps({"csr": open(sys.argv[1]).read()}))' "${work}/renew.csr")
rec "$srv_records" POST /v1/pki/renew --cert "${work}/agent/identity.pem" -d "$csr"
rec "$srv_records" POST /v1/pki/renew --cert "${work}/agent/identity.pem" -d '{"csr":"x"}'  # 400

# --- the agent gone: a running job's host is unreachable -------------------------------------
s POST /v1/jobs -d '{"name":"openapi-2","command":["sleep","20"]}'
job2=$(tail -n1 "$srv_records" | field 'json.loads(d["body"])["id"]')
kill -TERM "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
for _ in $(seq 1 100); do
  st=$(jget "${srv}/v1/hosts/${host}" | field 'd["state"]')
  [[ $st == unreachable ]] && break
  sleep 0.2
done
[[ $st == unreachable ]] || fail "the server did not see the agent go"
s GET "/v1/jobs/${job2}"
s GET "/v1/jobs/${job2}/logs"                             # 503
s DELETE "/v1/jobs/${job2}"                               # 503
s GET "/v1/hosts/${host}"
s GET /v1/collector
s GET /metrics

# --- revocation last -------------------------------------------------------------------------
s POST "/v1/hosts/${host}/revoke" -d '{"reason":"openapi check"}'
s POST "/v1/hosts/${host}/revoke" -d '{}'                 # 409
s GET "/v1/hosts/${host}"
s GET /v1/jobs

if [[ -n $keep ]]; then
  mkdir -p "$keep"
  cp "$srv_records" "${keep}/server.jsonl"
  cp "$agent_records" "${keep}/agent.jsonl"
fi
rc=0
"$py" "$check" validate "${repo}/proto/openapi.yaml" "$srv_records" || rc=1
"$py" "$check" validate "${repo}/proto/openapi-agent.yaml" "$agent_records" || rc=1
[[ $rc -eq 0 ]] || fail "responses that do not match the OpenAPI descriptions (above)"
ok "every response of the server and the agent matches its OpenAPI description"
