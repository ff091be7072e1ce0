#!/usr/bin/env bash
# The dashboard end to end: the README's main job (deploy/run-local.sh: hwledger-server with a
# local hwledger-agent replaying real GPU captures) on free loopback ports, a viewer and an
# operator token made with the CLI, then dashboard.mjs drives Debian's chromium through
# playwright-core against it. Screenshots go to OUT_DIR.
#
#   bash tests/e2e/run_e2e.sh BUILD_DIR OUT_DIR
# Exit 77 (skipped) when chromium or the npm packages are not installed (deploy/setup.sh test
# installs both).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$1
out=$2
chromium=${HWL_CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
  echo "SKIP: no $chromium (deploy/setup.sh test installs Debian's chromium)"
  exit 77
fi
if [[ ! -d $repo/tests/e2e/node_modules/playwright-core ]]; then
  echo "SKIP: no playwright-core in tests/e2e/node_modules (deploy/setup.sh test runs npm ci there)"
  exit 77
fi

work=$(mktemp -d /tmp/hwl-e2e-XXXXXX)
chmod 755 "$work"  # the job user (nobody) reaches the jobs root below it
mkdir -p "$out"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
server_port=$(port)
agent_port=$(port)
job_port=$(port)

HWLEDGER_HOME=$work/home HWLEDGER_LISTEN=127.0.0.1:$server_port \
  HWLEDGER_AGENT_LISTEN=127.0.0.1:$agent_port XDG_CONFIG_HOME=$work/xdg \
  HWLEDGER_BIN_DIR=$work/bin setsid bash "$repo/deploy/run-local.sh" "$build" \
  >"$work/run-local.out" 2>"$work/run-local.err" &
demo=$!
cleanup() {
  kill -INT -- -"$demo" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$demo" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- -"$demo" 2>/dev/null || true
  [[ -n ${HWL_E2E_KEEP:-} ]] || rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 600); do
  grep -q "Ctrl-C stops the agent and the server" "$work/run-local.out" 2>/dev/null && break
  if ! kill -0 "$demo" 2>/dev/null; then
    cat "$work/run-local.out" "$work/run-local.err" >&2
    exit 1
  fi
  sleep 0.2
done
line=$(grep -o 'export HWLEDGER_SERVER=.*' "$work/run-local.out")
eval "$line"
cli=$build/server/cli/hwledger
token_of() { "$cli" --json tokens create --role "$1" --note "dashboard e2e" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }

export HWL_URL=$HWLEDGER_SERVER HWL_ADMIN_TOKEN=$HWLEDGER_TOKEN
HWL_VIEWER_TOKEN=$(token_of viewer)
HWL_OPERATOR_TOKEN=$(token_of operator)
export HWL_VIEWER_TOKEN HWL_OPERATOR_TOKEN HWL_CHROMIUM=$chromium HWL_OUT=$out
export HWL_JOB_PORT=$job_port HWL_MODEL_CONFIG=$repo/tests/fixtures/models/Llama-3.1-8B.config.json
cd "$repo/tests/e2e"
node dashboard.mjs
