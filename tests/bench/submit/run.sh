#!/usr/bin/env bash
# Job submission with one stalled agent: tests/bench/submit/run.sh [BUILD_DIR] [submit_bench.py options]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:-$here/../../../build}" && pwd)
# Nothing here reads or writes the real home's configuration.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export XDG_CONFIG_HOME=$scratch/config HWLEDGER_BIN_DIR=$scratch/bin
python3 "$here/submit_bench.py" "$build" "${@:2}"
