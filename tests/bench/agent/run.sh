#!/usr/bin/env bash
# Resident memory and CPU of hwledger-agent against prometheus-node-exporter on the same machine.
#
# The agent runs in --dev mode with the replay probe at 8 GPUs (a replay spec with gpu_count 8)
# sampling at 1 Hz; node-exporter runs with its default collectors. Both are scraped every second
# for SECONDS (default 300): the agent on GET /metrics and GET /v1/telemetry, node-exporter on
# GET /metrics. Reported for each: VmRSS (max over the run and at the end, from
# /proc/PID/status) and CPU as a percentage of one core ((utime+stime) delta over wall time, from
# /proc/PID/stat, measured from the first scrape to the last).
#
# Usage: tests/bench/agent/run.sh [SECONDS]
# Environment: HWL_AGENT_BIN (default: the newest build*/agent/hwledger-agent of this checkout),
#              HWL_TELEMETRY_DIR (default: ../shared/data/telemetry beside the checkout),
#              NODE_EXPORTER (default: prometheus-node-exporter or node_exporter from PATH).
set -euo pipefail

duration=${1:-300}
if ! [[ $duration =~ ^[0-9]+$ ]] || (( duration < 5 )); then
  echo "usage: $0 [SECONDS >= 5]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)

agent_bin=${HWL_AGENT_BIN:-}
if [[ -z $agent_bin ]]; then
  agent_bin=$(ls -t "$repo"/build*/agent/hwledger-agent 2>/dev/null | head -n1 || true)
fi
[[ -x $agent_bin ]] || { echo "hwledger-agent not found: build it or set HWL_AGENT_BIN" >&2; exit 2; }
telemetry=${HWL_TELEMETRY_DIR:-$(cd "$repo/.." && pwd)/shared/data/telemetry}
[[ -f $telemetry/nvidia-h100-query-gpu.csv ]] || { echo "no captures in $telemetry" >&2; exit 2; }
node_exporter=${NODE_EXPORTER:-$(command -v prometheus-node-exporter || command -v node_exporter || true)}
[[ -x $node_exporter ]] || {
  echo "node-exporter not found: apt-get install -y prometheus-node-exporter" >&2; exit 2; }
for tool in curl python3; do
  command -v $tool >/dev/null || { echo "$tool is required" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/hwl-agent-bench-XXXXXX")
agent_pid=
ne_pid=
keep=0
cleanup() {
  [[ -n $agent_pid ]] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  [[ -n $ne_pid ]] && kill "$ne_pid" 2>/dev/null && wait "$ne_pid" 2>/dev/null || true
  if (( keep )); then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
# A measured process that ends during the run is a finding, not a figure: say which and why.
check_alive() {
  local name=$1 pid=$2 log=$3
  if ! kill -0 "$pid" 2>/dev/null || [[ $(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1) == Z ]]; then
    local st=0
    wait "$pid" || st=$?
    keep=1
    echo "$name (pid $pid) ended during the run after $(( ($(now_ns) - w0) / 1000000000 )) s," \
         "wait status $st; last lines of its stderr:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() {  # utime + stime, fields 14 and 15 (after the parenthesised command name)
  sed -e 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
now_ns() { date +%s%N; }
mb() { python3 -c "print(f'{$1 / 1024:.1f}')"; }

cat >"$work/replay.json" <<JSON
{"files": ["$telemetry/nvidia-h100-query-gpu.csv"], "gpu_count": 8}
JSON

job_user=()
[[ $(id -u) == 0 ]] && job_user=(--job-user nobody)
"$agent_bin" run --dev --state-dir "$work/state" --listen 127.0.0.1:0 \
  --probe "replay:$work/replay.json" --sample-interval-ms 1000 "${job_user[@]}" \
  >"$work/agent.out" 2>"$work/agent.err" &
agent_pid=$!

ne_port=$(free_port)
"$node_exporter" --web.listen-address="127.0.0.1:$ne_port" >"$work/ne.out" 2>"$work/ne.err" &
ne_pid=$!

for _ in $(seq 100); do
  [[ -s $work/state/listen.addr ]] && break
  sleep 0.1
done
[[ -s $work/state/listen.addr ]] || { echo "the agent did not start:" >&2; cat "$work/agent.err" >&2; exit 1; }
agent_url="http://$(head -n1 "$work/state/listen.addr")"
ne_url="http://127.0.0.1:$ne_port"
for _ in $(seq 100); do
  curl -sf -o /dev/null "$ne_url/metrics" && curl -sf -o /dev/null "$agent_url/v1/telemetry" && break
  sleep 0.1
done
gpus=$(curl -sf "$agent_url/metrics" | grep -c '^DCGM_FI_DEV_GPU_UTIL{' || true)
[[ $gpus == 8 ]] || { echo "expected 8 GPUs in the agent's /metrics, got $gpus" >&2; exit 1; }

clk=$(getconf CLK_TCK)
timeline=""
agent_max=0 ne_max=0 failures=0 scrapes=0 agent_bytes=0 ne_bytes=0
a_t0=$(cpu_ticks "$agent_pid"); n_t0=$(cpu_ticks "$ne_pid"); w0=$(now_ns)
next=$(( w0 / 1000000 ))
end=$(( next + duration * 1000 ))
while (( next < end )); do
  b1=$(curl -s --max-time 5 -o "$work/a.metrics" -w '%{http_code} %{size_download}' "$agent_url/metrics" || echo "000 0")
  b2=$(curl -s --max-time 5 -o /dev/null -w '%{http_code} %{size_download}' "$agent_url/v1/telemetry" || echo "000 0")
  b3=$(curl -s --max-time 5 -o /dev/null -w '%{http_code} %{size_download}' "$ne_url/metrics" || echo "000 0")
  for b in "$b1" "$b2" "$b3"; do [[ ${b%% *} == 200 ]] || failures=$((failures + 1)); done
  agent_bytes=${b1##* }; ne_bytes=${b3##* }
  scrapes=$((scrapes + 1))
  check_alive hwledger-agent "$agent_pid" "$work/agent.err"
  check_alive prometheus-node-exporter "$ne_pid" "$work/ne.err"
  a=$(rss_kb "$agent_pid"); n=$(rss_kb "$ne_pid")
  (( a > agent_max )) && agent_max=$a
  (( (scrapes - 1) % 60 == 0 )) && timeline+=" $(mb "$a")/$(mb "$n")"
  (( n > ne_max )) && ne_max=$n
  next=$(( next + 1000 ))
  sleep_ms=$(( next - $(now_ns) / 1000000 ))
  (( sleep_ms > 0 )) && sleep "$(printf '%d.%03d' $((sleep_ms / 1000)) $((sleep_ms % 1000)))"
done
a_t1=$(cpu_ticks "$agent_pid"); n_t1=$(cpu_ticks "$ne_pid"); w1=$(now_ns)
agent_end=$(rss_kb "$agent_pid"); ne_end=$(rss_kb "$ne_pid")
(( agent_end > agent_max )) && agent_max=$agent_end
(( ne_end > ne_max )) && ne_max=$ne_end

pct() {  # ticks wall_ns -> percent of one core
  python3 -c "print(f'{$1 / $clk / ($2 / 1e9) * 100:.3f}')"
}
wall_ns=$((w1 - w0))
agent_cpu=$(pct $((a_t1 - a_t0)) $wall_ns)
ne_cpu=$(pct $((n_t1 - n_t0)) $wall_ns)

echo "## hwledger-agent vs prometheus-node-exporter: $duration s, scraped every second"
echo
echo "machine: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r)"
echo "agent: $("$agent_bin" --version) ($agent_bin), replay probe, 8 GPUs, 1 Hz sampling"
echo "node-exporter: $("$node_exporter" --version 2>&1 | head -n1)"
echo "scrapes: $scrapes rounds, $failures failed requests; last /metrics bodies: agent $agent_bytes B, node-exporter $ne_bytes B"
echo
echo "| process | RSS max (MB) | RSS at end (MB) | CPU (% of one core) |"
echo "|---|---|---|---|"
echo "| hwledger-agent | $(mb "$agent_max") | $(mb "$agent_end") | $agent_cpu |"
echo "| prometheus-node-exporter | $(mb "$ne_max") | $(mb "$ne_end") | $ne_cpu |"
echo "RSS every 60 s from the start, agent/node-exporter (MB):$timeline"
echo
echo "agent memory at the end (/proc/PID/smaps_rollup, kB):"
grep -E '^(Rss|Pss_Anon|Pss_File|Anonymous|Private_Dirty|Shared_Clean):' "/proc/$agent_pid/smaps_rollup" |
  awk '{printf "  %s %s", $1, $2} END {print ""}'
echo "agent threads: $(awk '/^Threads:/ {print $2}' "/proc/$agent_pid/status")"
