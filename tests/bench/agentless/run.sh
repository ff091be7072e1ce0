#!/usr/bin/env bash
# Agentless hosts over SSH against OpenSSH's own client:
#   tests/bench/agentless/run.sh [BUILD_DIR] [agentless_bench.py options]
# (--hosts 100 --seconds 120 --interval-ms 10000 --warmup 20 --ssh-runs 50 by default)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:-$here/../../../build}" && pwd)
# Nothing here reads or writes the real home's configuration (the ssh client also runs with
# -F /dev/null and files of its own).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export XDG_CONFIG_HOME=$scratch/config HWLEDGER_BIN_DIR=$scratch/bin
python3 "$here/agentless_bench.py" "$build" "${@:2}"
