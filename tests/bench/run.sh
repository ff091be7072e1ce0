#!/usr/bin/env bash
# Every benchmark, one after another, printing figures (not a test: nothing here passes or fails).
#
#   tests/bench/run.sh [BUILD_DIR]      (also: bash deploy/setup.sh bench)
#
# QUICK=1 shortens the long ones (agent 30 s instead of 300 s, fleet 100 hosts for 60 s instead of
# 1000 hosts for 600 s, agentless 30 s instead of 120 s, partition soak 60 s instead of 300 s) for
# a smoke run; the figures in docs/benchmarks.md come from full runs.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
quick=${QUICK:-0}

echo "== ledger: durable appends, verify =="
if [[ $quick == 1 ]]; then "$build/tests/bench/ledger/ledger_bench" --quick; else "$build/tests/bench/ledger/ledger_bench"; fi
echo
echo "== planner: placement query, GGUF metadata =="
"$build/tests/bench/planner/planner_bench"
echo
echo "== agent: RSS and CPU against prometheus-node-exporter =="
HWL_AGENT_BIN=$build/agent/hwledger-agent bash "$here/agent/run.sh" "$([[ $quick == 1 ]] && echo 30 || echo 300)"
echo
echo "== fleet: the server against simulated hosts =="
if [[ $quick == 1 ]]; then
  python3 "$here/fleet/fleet_bench.py" "$build" --hosts 100 --seconds 60
else
  python3 "$here/fleet/fleet_bench.py" "$build" --hosts 1000 --seconds 600
fi
echo
echo "== agentless: 100 hosts polled over SSH every 10 s, against OpenSSH's client (ControlMaster) =="
bash "$here/agentless/run.sh" "$build" --seconds "$([[ $quick == 1 ]] && echo 30 || echo 120)"
echo
echo "== reads: GET /v1/hosts (20 hosts x 8 GPUs) against GET /v1/health and nginx, under wrk =="
bash "$here/reads/run.sh" "$build"
echo
echo "== submit: 500 job submissions from 32 clients, one of 50 hosts answering after 8 s =="
bash "$here/submit/run.sh" "$build"
echo
echo "== rentals: 3 providers x 5,000 offers ranked for a model, against a sort by price =="
bash "$here/rentals/run.sh" "$build" 5000 200
echo
echo "== evidence: the report by host over 30 days of hourly events, against one SQL aggregate =="
"$build/tests/bench/evidence/report_bench" "$([[ $quick == 1 ]] && echo 20 || echo 100)" 30
echo
echo "== dashboard: the fleet view with 1,000 simulated hosts in headless Chromium, against a static page =="
bash "$here/dashboard/run.sh" "$build" --hosts "$([[ $quick == 1 ]] && echo 100 || echo 1000)" --runs 5
echo
echo "== partition: server and agent in network namespaces, the link cut again and again (root) =="
"$build/tests/bench/partition/partition_soak" --seconds "$([[ $quick == 1 ]] && echo 60 || echo 300)"
