#!/usr/bin/env bash
# Starts the three fake providers on loopback with N generated offers each and runs rentals_bench
# against them.   tests/bench/rentals/run.sh BUILD_DIR [OFFERS_PER_PROVIDER] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$1
n=${2:-5000}
runs=${3:-200}
fakes=$here/../../fakes
work=$(mktemp -d /tmp/hwl-rentals-bench-XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for p in vast runpod lambda; do
  python3 "$fakes/${p}_fake.py" --port 0 --offers "$n" >"$work/$p.out" 2>"$work/$p.err" &
  pids+=($!)
done
port() { for _ in $(seq 100); do grep -q LISTENING "$work/$1.out" 2>/dev/null && break; sleep 0.1; done; awk '{print $2}' "$work/$1.out"; }
"$build/tests/bench/rentals/rentals_bench" "http://127.0.0.1:$(port vast)/api/v0" \
  "http://127.0.0.1:$(port runpod)/graphql" "http://127.0.0.1:$(port lambda)/api/v1" "$runs"
