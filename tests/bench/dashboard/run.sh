#!/usr/bin/env bash
# The dashboard's fleet view with 1,000 simulated hosts in headless Chromium, against a static
# page of the same rows:  tests/bench/dashboard/run.sh [BUILD_DIR] [--hosts N] [--runs N]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:-$here/../../../build}" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export XDG_CONFIG_HOME=$scratch/config HWLEDGER_BIN_DIR=$scratch/bin
python3 "$here/dashboard_bench.py" "$build" "${@:2}"
