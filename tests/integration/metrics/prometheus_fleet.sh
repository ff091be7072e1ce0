#!/usr/bin/env bash
# Prometheus for the fleet, with the real Prometheus server: a real hwledger-server and a real
# agent replaying recorded H100 captures, a metrics identity from `hwledger-server issue-cert
# --role metrics`, and Prometheus (Debian's package) scraping the server's /metrics and the
# agent's /metrics over mutual TLS with that identity; the values are read back through
# Prometheus's HTTP API. Also the refusals: the metrics identity reads /metrics and nothing else
# (agent and server), a host certificate gets nothing from the server's /metrics, an unrecorded
# metrics certificate is refused by the server, and a hostile host name cannot inject series.
# Usage: prometheus_fleet.sh REPO BUILD_DIR
set -euo pipefail

repo=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
for t in prometheus promtool curl openssl; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
server_bin=${build}/server/hwledger-server
agent_bin=${build}/agent/hwledger-agent
# shellcheck source=../support/shell_support.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/shell_support.sh"
hwl_init hwl-prom
data=${work}/data

"$server_bin" init --data-dir "$data" --admin-token-file "${work}/admin.token" >/dev/null
token=$(cat "${work}/admin.token")
sport=$(free_port)
"$server_bin" run --data-dir "$data" --listen "127.0.0.1:${sport}" --telemetry-interval-ms 500 \
  --log-level warn >"${work}/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -s ${data}/listen.addr ]] && break; sleep 0.1; done
[[ -s ${data}/listen.addr ]] || fail "server did not start"
srv=https://127.0.0.1:${sport}
api() { curl -s --cacert "${data}/ca.crt" -H "Authorization: Bearer ${token}" "$@"; }
events() { api "${srv}/v1/events?limit=1000" | python3 -c 'import json,sys; print(json.dumps([[e["seq"], e["type"]] for e in json.load(sys.stdin)["events"]]))'; }

# Two agents replaying the demo captures; the second enrolled under a hostile name.
start_agent() {  # NAME -> prints its port
  local name=$1 port t pin
  port=$(free_port)
  read -r t pin < <(api -X POST -d '{}' "${srv}/v1/enroll-tokens" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["token"], d["ca_pin"])')
  "$agent_bin" enroll --server "$srv" --token "$t" --ca-pin "$pin" --state-dir "${work}/agent-${port}" \
    --name "$name" --advertise "127.0.0.1:${port}" >/dev/null
  "$agent_bin" run --state-dir "${work}/agent-${port}" --listen "127.0.0.1:${port}" \
    --probe "replay:${repo}/tests/fixtures/telemetry/demo-fleet.json" --job-user nobody \
    >"${work}/agent-${port}.log" 2>&1 &
  pids+=($!)
  echo "$port"
}
aport=$(start_agent gpu-demo)
evil=$'evil"} 7\nhwledger_host_up{host="forged'
eport=$(start_agent "$evil")

# The metrics identity, issued while the server runs.
"$server_bin" issue-cert --role metrics --name prom --data-dir "$data" \
  --cert-out "${work}/prom.crt" --key-out "${work}/prom.key" >/dev/null
[[ $(stat -c %a "${work}/prom.key") == 600 ]] || fail "metrics key not 0600"
openssl x509 -in "${work}/prom.crt" -noout -ext subjectAltName | grep -q 'URI:hwledger://metrics/prom' ||
  fail "metrics certificate lacks its identity"
mcurl() { curl -s -o "${work}/body" -w '%{http_code}' --cacert "${data}/ca.crt" \
  --cert "${work}/prom.crt" --key "${work}/prom.key" "$@"; }

for _ in $(seq 1 100); do
  n=$(api "${srv}/v1/hosts" | python3 -c 'import json,sys; print(sum(1 for h in json.load(sys.stdin)["hosts"] if h["state"]=="reachable" and h["gpus"] and all("sample" in g for g in h["gpus"])))')
  [[ $n -eq 2 ]] && break; sleep 0.2
done
[[ $n -eq 2 ]] || fail "agents not scraped"

# --- what the metrics identity may and may not do ------------------------------------------------
before=$(events)
[[ $(mcurl "https://127.0.0.1:${aport}/metrics") == 200 ]] || fail "agent refused the metrics identity for /metrics"
grep -q '^DCGM_FI_DEV_GPU_UTIL{' "${work}/body" || fail "agent /metrics has no DCGM series"
for req in "GET /v1/jobs" "POST /v1/jobs" "GET /v1/telemetry" "GET /v1/outbox?after=0" "GET /v1/info"; do
  code=$(mcurl -X "${req%% *}" -d '{"id":"pwned","command":["sh","-c","touch /tmp/pwned"]}' \
    "https://127.0.0.1:${aport}${req#* }")
  [[ $code == 403 ]] || fail "agent answered ${req} to the metrics identity with ${code}"
done
[[ ! -e /tmp/pwned ]] || fail "a job ran"
ok "agent: the metrics identity reads /metrics, is refused everything else (403)"
[[ $(mcurl "${srv}/metrics") == 200 ]] || fail "server refused the metrics identity for /metrics"
for req in "GET /v1/hosts" "GET /v1/tokens" "POST /v1/tokens" "GET /v1/events"; do
  code=$(mcurl -X "${req%% *}" -d '{"role":"admin"}' "${srv}${req#* }")
  [[ $code == 401 || $code == 403 ]] || fail "server answered ${req} to the metrics identity with ${code}"
done
# A host's certificate gets nothing from the server's /metrics.
host_pem=${work}/agent-${aport}/identity.pem
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "${data}/ca.crt" --cert "$host_pem" --key "$host_pem" "${srv}/metrics")
[[ $code == 401 ]] || fail "a host certificate read the server's /metrics (${code})"
# A metrics certificate the CA never recorded (signed with the CA key by openssl) is refused.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "${work}/forged.key" \
  -subj "/CN=forged" -out "${work}/forged.csr" 2>/dev/null
printf 'subjectAltName=URI:hwledger://metrics/prom\nextendedKeyUsage=clientAuth\n' >"${work}/ext"
openssl x509 -req -in "${work}/forged.csr" -CA "${data}/ca.crt" -CAkey "${data}/ca.key" -days 1 \
  -set_serial 0x5eed -extfile "${work}/ext" -out "${work}/forged.crt" 2>/dev/null
code=$(curl -s -o "${work}/body" -w '%{http_code}' --cacert "${data}/ca.crt" --cert "${work}/forged.crt" \
  --key "${work}/forged.key" -H "Authorization: Bearer ${token}" "${srv}/metrics")
[[ $code == 403 ]] || fail "an unrecorded metrics certificate read the server's /metrics (${code})"
after=$(events)
python3 - "$before" "$after" <<'PY'
import json, sys
b = {s for s, _ in json.loads(sys.argv[1])}
new = [t for s, t in json.loads(sys.argv[2]) if s not in b]
bad = [t for t in new if t not in ("auth.denied", "telemetry.hourly")]
assert not bad, f"appended {bad}"
PY
ok "server: /metrics only; host and unrecorded certificates refused; nothing but auth.denied appended"

# --- the server's exposition: well formed, one series per host, hostile name escaped --------------
[[ $(mcurl "${srv}/metrics") == 200 ]] || fail "server /metrics"
cp "${work}/body" "${work}/server.prom"
promtool check metrics <"${work}/server.prom" >"${work}/promtool.out" 2>&1 || true
if grep -qiE 'error|parse' "${work}/promtool.out"; then cat "${work}/promtool.out" >&2; fail "promtool cannot parse the server's /metrics"; fi
[[ $(grep -c '^hwledger_host_up{' "${work}/server.prom") -eq 2 ]] || fail "expected two hwledger_host_up series: $(grep hwledger_host_up "${work}/server.prom")"
grep -q '^hwledger_host_up{host_id="host-[0-9a-f]*",host="evil\\"} 7\\nhwledger_host_up{host=\\"forged"} 1$' "${work}/server.prom" ||
  fail "the hostile name was not escaped: $(grep -F 'evil' "${work}/server.prom" | head -3)"
[[ $(grep -c '^DCGM_FI_DEV_GPU_UTIL{' "${work}/server.prom") -eq 8 ]] || fail "expected 8 GPU series"
ok "server /metrics: parses, two hosts, eight GPUs, hostile name escaped"

# --- a real Prometheus scraping both --------------------------------------------------------------
pport=$(free_port)
cat >"${work}/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: hwledger-server
    scheme: https
    tls_config:
      ca_file: ${data}/ca.crt
      cert_file: ${work}/prom.crt
      key_file: ${work}/prom.key
    static_configs:
      - targets: ["127.0.0.1:${sport}"]
  - job_name: hwledger-agents
    scheme: https
    tls_config:
      ca_file: ${data}/ca.crt
      cert_file: ${work}/prom.crt
      key_file: ${work}/prom.key
    static_configs:
      - targets: ["127.0.0.1:${aport}"]
YML
promtool check config "${work}/prometheus.yml" >/dev/null || fail "promtool check config"
prometheus --config.file="${work}/prometheus.yml" --storage.tsdb.path="${work}/tsdb" \
  --web.listen-address="127.0.0.1:${pport}" >"${work}/prometheus.log" 2>&1 &
pids+=($!)
papi() { curl -s "http://127.0.0.1:${pport}/api/v1/$1"; }
pquery() { curl -s -G --data-urlencode "query=$1" "http://127.0.0.1:${pport}/api/v1/query"; }
for _ in $(seq 1 150); do
  up=$(papi targets 2>/dev/null | python3 -c 'import json,sys; print(sum(1 for t in json.load(sys.stdin)["data"]["activeTargets"] if t["health"]=="up"))' 2>/dev/null || echo 0)
  [[ $up -eq 2 ]] && break; sleep 0.2
done
[[ $up -eq 2 ]] || { papi targets >&2 || true; tail -5 "${work}/prometheus.log" >&2; fail "Prometheus targets not up"; }
ok "Prometheus scrapes the server and the agent over TLS with the metrics identity (2 targets up)"
for _ in $(seq 1 50); do
  pquery 'DCGM_FI_DEV_GPU_UTIL' >"${work}/q.json"
  python3 - "${work}/q.json" <<'PY' && break
import json, sys
r = json.load(open(sys.argv[1]))["data"]["result"]
by_job = {}
for s in r:
    by_job.setdefault(s["metric"]["job"], []).append(float(s["value"][1]))
srv, agent = sorted(by_job.get("hwledger-server", [])), sorted(by_job.get("hwledger-agents", []))
# The demo fleet replays the H100 capture under gpu-burn (100 %) on two GPUs and idle (0 %) on two.
assert agent == [0, 0, 100, 100], by_job
assert srv == [0, 0, 0, 0, 100, 100, 100, 100], by_job
PY
  sleep 0.2
done
python3 - "${work}/q.json" <<'PY' || fail "DCGM_FI_DEV_GPU_UTIL through Prometheus: $(cat "${work}/q.json")"
import json, sys
r = json.load(open(sys.argv[1]))["data"]["result"]
assert len(r) == 12, len(r)
PY
pquery 'hwledger_host_up' >"${work}/up.json"
python3 - "${work}/up.json" <<'PY' || fail "hwledger_host_up through Prometheus: $(cat "${work}/up.json")"
import json, sys
r = json.load(open(sys.argv[1]))["data"]["result"]
assert len(r) == 2 and all(s["value"][1] == "1" for s in r), r
assert {s["metric"]["host"] for s in r} == {"gpu-demo", 'evil"} 7\nhwledger_host_up{host="forged'}, r
PY
pquery 'DCGM_FI_DEV_FB_USED{job="hwledger-server",Hostname="gpu-demo"}' >"${work}/fb.json"
python3 - "${work}/fb.json" <<'PY' || fail "DCGM_FI_DEV_FB_USED: $(cat "${work}/fb.json")"
import json, sys
r = json.load(open(sys.argv[1]))["data"]["result"]
vals = sorted(float(s["value"][1]) for s in r)
# nvidia-smi reported 19876 MiB used under load and 0 MiB idle in the capture.
assert len(r) == 4 and vals[0] == 0 and vals[-1] > 19000, vals
assert all(s["metric"]["host_id"].startswith("host-") and s["metric"]["model_name"] for s in r), r
PY
ok "Prometheus holds the capture's values: utilisation 100/0 %, memory, host_up 1 for both hosts"
