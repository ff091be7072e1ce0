#!/usr/bin/env bash
# The main job on one machine: hwledger-server on the embedded SQLite ledger, and one local
# hwledger-agent replaying recorded real GPU captures, enrolled with a fresh one-time token and
# scraped over mutual TLS. Nothing is installed system-wide; data lives in $HWLEDGER_HOME
# (default ./.hwledger). Ctrl-C stops both.
#
#   bash deploy/run-local.sh [BUILD_DIR]
#
# Environment: HWLEDGER_LISTEN (server, default 127.0.0.1:8443), HWLEDGER_AGENT_LISTEN (agent,
# default 127.0.0.1:9443), HWLEDGER_PROBE (default the demo replay of four H100s),
# HWLEDGER_BIN_DIR (where the CLI is linked; default /usr/local/bin as root, else ~/.local/bin).
# Writes the CLI config ${XDG_CONFIG_HOME:-~/.config}/hwledger/config.json for this server.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
home=${HWLEDGER_HOME:-$repo/.hwledger}
listen=${HWLEDGER_LISTEN:-127.0.0.1:8443}
agent_listen=${HWLEDGER_AGENT_LISTEN:-127.0.0.1:9443}
probe=${HWLEDGER_PROBE:-replay:$repo/tests/fixtures/telemetry/demo-fleet.json}
server_bin=$build/server/hwledger-server
agent_bin=$build/agent/hwledger-agent
cli=$build/server/cli/hwledger
data=$home/server
agent_state=$home/agent

mkdir -p "$home"
if [[ ! -f $data/ledger.db ]]; then
  "$server_bin" init --data-dir "$data" --admin-token-file "$home/admin.token" >/dev/null
  echo "initialised a new ledger in $data"
fi
token=$(cat "$home/admin.token")

pids=()
stop_all() {
  # The agent first (its jobs keep running), then the server (it signs a final checkpoint).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap 'stop_all; exit 0' INT TERM
trap 'stop_all' EXIT

wait_for_file() {  # FILE PID WHAT
  for _ in $(seq 1 100); do
    [[ -s $1 ]] && return 0
    if ! kill -0 "$2" 2>/dev/null; then
      echo "$3 did not start" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "$3 did not start in time" >&2
  exit 1
}

rm -f "$data/listen.addr"
"$server_bin" run --data-dir "$data" --listen "$listen" --log-level warn &
pids+=($!)
wait_for_file "$data/listen.addr" "${pids[0]}" "hwledger-server (is $listen in use? set HWLEDGER_LISTEN)"
addr=$(cat "$data/listen.addr")
export HWLEDGER_SERVER=https://$addr HWLEDGER_TOKEN=$token HWLEDGER_CA=$data/ca.crt

# Enroll the local agent once (again if the ledger was made anew).
if [[ ! -f $agent_state/enrollment.json ]] || ! cmp -s "$agent_state/ca.crt" "$data/ca.crt"; then
  created=$("$cli" --json enroll-token create --host-hint local-demo | python3 -c \
    'import json,sys; d=json.load(sys.stdin); print(d["token"], d["ca_pin"])')
  read -r enroll_token pin <<<"$created"
  rm -rf "$agent_state"
  "$agent_bin" enroll --server "https://$addr" --token "$enroll_token" --ca-pin "$pin" \
    --state-dir "$agent_state" --name local-demo --advertise "$agent_listen" >/dev/null
  echo "enrolled the local agent with a one-time token"
fi

job_user=()
if [[ $(id -u) -eq 0 ]]; then job_user=(--job-user nobody); fi
rm -f "$agent_state/listen.addr"
"$agent_bin" run --state-dir "$agent_state" --listen "$agent_listen" --probe "$probe" \
  "${job_user[@]}" >"$home/agent.log" 2>&1 &
pids+=($!)
wait_for_file "$agent_state/listen.addr" "${pids[1]}" "hwledger-agent (see $home/agent.log)"

for _ in $(seq 1 150); do
  if "$cli" --json hosts | python3 -c 'import json,sys; h=json.load(sys.stdin)["hosts"]; sys.exit(0 if any(x["state"]=="reachable" and x["gpus"] and all("sample" in g for g in x["gpus"]) for x in h) else 1)'; then
    break
  fi
  sleep 0.2
done

# The CLI finds this server with no exports: a config file (flags and HWLEDGER_* still win), and
# the binary on PATH. An existing config that names another server is left alone.
cli_config=${XDG_CONFIG_HOME:-$HOME/.config}/hwledger/config.json
cli_note=
if [[ -f $cli_config ]] && ! python3 - "$cli_config" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])).get("server", "")
sys.exit(0 if s.startswith(("https://127.", "https://localhost", "https://[::1]")) else 1)
PY
then
  cli_note="kept $cli_config (it names another server); use the exports below"
else
  mkdir -p "$(dirname "$cli_config")"
  ( umask 077 && printf '{"server": "https://%s", "ca": "%s", "token_file": "%s"}\n' \
      "$addr" "$data/ca.crt" "$home/admin.token" >"$cli_config" )
  cli_note="wrote $cli_config"
fi
bin_dir=${HWLEDGER_BIN_DIR:-/usr/local/bin}
[[ $(id -u) -eq 0 || -n ${HWLEDGER_BIN_DIR:-} ]] || bin_dir=$HOME/.local/bin
mkdir -p "$bin_dir"
if [[ ! -e $bin_dir/hwledger || -L $bin_dir/hwledger ]]; then
  ln -sfn "$cli" "$bin_dir/hwledger"
  cli_note="$cli_note; linked $bin_dir/hwledger -> $cli"
fi
command -v hwledger >/dev/null || cli_note="$cli_note ($bin_dir is not on PATH)"

cat <<TXT

hwLedger is running.
  server  https://$addr   (ledger $data/ledger.db)
  dashboard https://$addr/   (sign in with the admin token; the certificate is the fleet CA's,
            $data/ca.crt)
  agent   https://$agent_listen   (replaying recorded GPU captures; log $home/agent.log)
  admin token: $token

Fleet:
TXT
"$cli" hosts
echo
"$cli" gpus
cat <<TXT

CLI: $cli_note. Without the config file, export:
  export HWLEDGER_SERVER=https://$addr HWLEDGER_TOKEN=$token HWLEDGER_CA=$data/ca.crt
In another shell:
  hwledger hosts
  id=\$(hwledger jobs submit --name web --gpus 1 --port 18080 --ready-path / -o json -- python3 -m http.server 18080 --bind 127.0.0.1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  hwledger jobs list
  timeout 5 hwledger jobs logs \$id --follow
  hwledger jobs cancel \$id
  hwledger usage --group-by gpu
  hwledger ledger verify --db $data/ledger.db

Ctrl-C stops the agent and the server.
TXT
wait "${pids[0]}"
