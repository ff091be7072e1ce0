#!/usr/bin/env bash
# Enrollment works as printed: a real server started with --public-url, `hwledger enroll-token
# create --name` against it, and the printed "by hand" lines run verbatim by bash (the agent's
# advertise address detected from the route to the server). The server must then scrape the new
# agent over mutual TLS. Also: a bad public_url is refused at start, naming the key.
# Usage: enroll_as_printed.sh BUILD_DIR
set -euo pipefail

build=$(cd "$1" && pwd)
server_bin=${build}/server/hwledger-server
cli=${build}/server/cli/hwledger
# shellcheck source=../support/shell_support.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/shell_support.sh"
hwl_init hwl-enroll

# --- a bad public_url is refused at start, naming the key ----------------------------------------
"${server_bin}" init --data-dir "${work}/data" --admin-token-file "${work}/admin.token" >/dev/null
for bad in "http://127.0.0.1:1" "https://127.0.0.1:1/path" "https://u@127.0.0.1:1" "https://a;b:1"; do
  if "${server_bin}" run --data-dir "${work}/data" --listen 127.0.0.1:0 --public-url "${bad}" \
      >"${work}/bad.log" 2>&1; then
    fail "server started with public_url ${bad}"
  fi
  grep -q 'public_url' "${work}/bad.log" || fail "the refusal of ${bad} does not name public_url: $(cat "${work}/bad.log")"
  [[ ! -e ${work}/data/listen.addr ]] || fail "server listened with public_url ${bad}"
done
echo '{"public_url": "https://127.0.0.1:1?x=1"}' >"${work}/bad.json"
if "${server_bin}" run --data-dir "${work}/data" --config "${work}/bad.json" >"${work}/bad.log" 2>&1; then
  fail "server started with a bad public_url in its config"
fi
grep -q 'public_url' "${work}/bad.log" || fail "config refusal does not name public_url"
echo "ok: bad public_url values refused at start"

# --- the real thing ------------------------------------------------------------------------------
port=$(free_port)
"${server_bin}" run --data-dir "${work}/data" --listen "127.0.0.1:${port}" \
  --public-url "https://127.0.0.1:${port}" --telemetry-interval-ms 500 --log-level warn \
  >"${work}/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -s ${work}/data/listen.addr ]] && break; sleep 0.1; done
[[ -s ${work}/data/listen.addr ]] || fail "server did not start: $(cat "${work}/server.log")"

export HWLEDGER_SERVER=https://127.0.0.1:${port} HWLEDGER_CA=${work}/data/ca.crt
HWLEDGER_TOKEN=$(cat "${work}/admin.token")
export HWLEDGER_TOKEN
agent_port=$(free_port)
# A name that would be a shell command is refused before any token exists.
if "${cli}" enroll-token create --name 'gpu;touch pwned' >"${work}/bad-name" 2>&1; then
  fail "a host name with shell syntax was accepted"
fi
"${cli}" enroll-token create --name gpu-printed --agent-port "${agent_port}" >"${work}/printed" 2>"${work}/printed.err"
cat "${work}/printed"
grep -q "https://127.0.0.1:${port}" "${work}/printed" || fail "the command does not name the public URL"
grep -q -- "--name gpu-printed" "${work}/printed" || fail "the command does not carry the name"
if grep -q -- "--advertise " "${work}/printed"; then fail "the command carries a placeholder advertise"; fi
[[ ! -s ${work}/printed.err ]] || fail "public_url set, yet the CLI warned: $(cat "${work}/printed.err")"

# The two "by hand" lines, exactly as printed, run by bash in a home of their own.
sed -n '/^Or by hand/,$p' "${work}/printed" | sed -n 's/^  hwledger-agent /hwledger-agent /p' >"${work}/lines"
[[ $(wc -l <"${work}/lines") -eq 2 ]] || fail "expected two agent lines, got: $(cat "${work}/lines")"
mkdir -p "${work}/home"
enroll_line=$(sed -n 1p "${work}/lines")
run_line=$(sed -n 2p "${work}/lines")
HOME=${work}/home PATH=${build}/agent:${PATH} bash -c "${enroll_line}" >"${work}/enroll.out" 2>&1 ||
  fail "the printed enroll line failed: $(cat "${work}/enroll.out")"
cat "${work}/enroll.out"
grep -q "advertising 127.0.0.1:${agent_port}" "${work}/enroll.out" || fail "advertise address not detected"
HOME=${work}/home PATH=${build}/agent:${PATH} bash -c "exec ${run_line}" >"${work}/agent.log" 2>&1 &
pids+=($!)

# The server scrapes the agent it never heard of before the token: reachable, by name, at the
# detected address.
for _ in $(seq 1 100); do
  if "${cli}" hosts -o json >"${work}/hosts.json" 2>/dev/null &&
     python3 - "${work}/hosts.json" "${agent_port}" <<'PY'
import json, sys
hosts = json.load(open(sys.argv[1]))["hosts"]
h = [h for h in hosts if h["name"] == "gpu-printed"]
sys.exit(0 if h and h[0].get("state") == "reachable" and h[0]["address"] == "127.0.0.1:" + sys.argv[2] else 1)
PY
  then
    echo "ok: the agent enrolled as printed is scraped: $(cat "${work}/hosts.json")"
    exit 0
  fi
  sleep 0.2
done
echo "hosts: $(cat "${work}/hosts.json" 2>/dev/null)" >&2
echo "agent log: $(tail -20 "${work}/agent.log")" >&2
fail "the enrolled agent was not scraped"
