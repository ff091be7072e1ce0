#!/usr/bin/env bash
# The main job on one machine: an initialised hwledger-server on the embedded SQLite ledger,
# listening on loopback. Data lives in $HWLEDGER_HOME (default ./.hwledger). Ctrl-C stops it.
#
#   bash deploy/run-local.sh [BUILD_DIR]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
home=${HWLEDGER_HOME:-$repo/.hwledger}
listen=${HWLEDGER_LISTEN:-127.0.0.1:8443}
server_bin=$build/server/hwledger-server
cli_bin=$build/server/cli/hwledger
data=$home/server

mkdir -p "$home"
if [[ ! -f $data/ledger.db ]]; then
  "$server_bin" init --data-dir "$data" --admin-token-file "$home/admin.token" >/dev/null
  echo "initialised a new ledger in $data"
fi
token=$(cat "$home/admin.token")

"$server_bin" run --data-dir "$data" --listen "$listen" &
server_pid=$!
trap 'kill -TERM $server_pid 2>/dev/null; wait $server_pid 2>/dev/null; exit 0' INT TERM

for _ in $(seq 1 100); do
  [[ -s $data/listen.addr ]] && break
  if ! kill -0 $server_pid 2>/dev/null; then
    echo "hwledger-server did not start (is $listen in use? set HWLEDGER_LISTEN)" >&2
    exit 1
  fi
  sleep 0.1
done
addr=$(cat "$data/listen.addr")

cat <<TXT

hwLedger server: https://$addr   (ledger: $data/ledger.db)
admin token:     $token

Try it:
  export HWLEDGER_SERVER=https://$addr HWLEDGER_TOKEN=$token HWLEDGER_CA=$data/ca.crt
  $cli_bin events
  $cli_bin tokens create --role viewer --ttl 3600 --note demo
  $cli_bin ledger verify --db $data/ledger.db
  curl --cacert $data/ca.crt https://$addr/v1/health

Ctrl-C stops the server (a final checkpoint is signed).
TXT
wait $server_pid
