#!/usr/bin/env bash
# Read throughput of GET /v1/hosts (20 simulated hosts x 8 GPUs) against GET /v1/health and nginx
# serving the same bytes, all under wrk over TLS 1.3:  tests/bench/reads/run.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:-$here/../../../build}" && pwd)
# Nothing here reads or writes the real home's configuration.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export XDG_CONFIG_HOME=$scratch/config HWLEDGER_BIN_DIR=$scratch/bin
python3 "$here/reads_bench.py" "$build" "${@:2}"
