#!/usr/bin/env bash
# Fleet-scale benchmark: tests/bench/fleet/run.sh [BUILD_DIR] [HOSTS] [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-$here/../../../build}
exec python3 "$here/fleet_bench.py" "$build" --hosts "${2:-1000}" --seconds "${3:-600}"
