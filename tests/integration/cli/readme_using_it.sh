#!/usr/bin/env bash
# The README's "Using it" block, line by line, as a person pastes it: against the main job
# (deploy/run-local.sh: a real server and a replay agent), with nothing exported — the CLI finds
# the server through the config file run-local.sh wrote and is on PATH where it linked it. Also:
# the config file's precedence (flags > HWLEDGER_* > file) and refusals, and that `hwledger
# placements`, `plan --host` and POST /v1/placements agree.
# Usage: readme_using_it.sh REPO BUILD_DIR
set -euo pipefail

repo=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
# shellcheck source=../support/shell_support.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/shell_support.sh"
hwl_init hwl-readme

# A checkout-like folder: the README's relative paths (.hwledger/, tests/fixtures/) resolve in it.
ln -s "${repo}/tests" "${work}/tests"
export HOME=${work}/home XDG_CONFIG_HOME=${work}/xdg HWLEDGER_HOME=${work}/.hwledger \
       HWLEDGER_BIN_DIR=${work}/bin
unset HWLEDGER_SERVER HWLEDGER_TOKEN HWLEDGER_CA HWLEDGER_CONFIG
mkdir -p "$HOME"
port=$(free_port)
agent_port=$(free_port)
export HWLEDGER_LISTEN=127.0.0.1:${port} HWLEDGER_AGENT_LISTEN=127.0.0.1:${agent_port}
bash "${repo}/deploy/run-local.sh" "${build}" >"${work}/run.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do grep -q "hwLedger is running" "${work}/run.log" && break; sleep 0.2; done
grep -q "hwLedger is running" "${work}/run.log" || fail "run-local.sh did not start: $(cat "${work}/run.log")"
[[ -f ${XDG_CONFIG_HOME}/hwledger/config.json ]] || fail "no CLI config written"
[[ $(stat -c %a "${XDG_CONFIG_HOME}/hwledger/config.json") == 600 ]] || fail "CLI config not 0600"
export PATH=${HWLEDGER_BIN_DIR}:${PATH}
[[ $(command -v hwledger) == "${HWLEDGER_BIN_DIR}/hwledger" ]] || fail "hwledger is not on PATH"

# --- the config file and what overrides it ------------------------------------------------------
hwledger hosts >/dev/null || fail "hwledger hosts with only the config file failed"
if HWLEDGER_SERVER=https://127.0.0.1:1 hwledger hosts >/dev/null 2>&1; then
  fail "HWLEDGER_SERVER did not override the config file"
fi
HWLEDGER_SERVER=https://127.0.0.1:1 hwledger --server "https://127.0.0.1:${port}" hosts >/dev/null ||
  fail "--server did not override HWLEDGER_SERVER"
if HWLEDGER_TOKEN=tok_0000000000000000.wrong hwledger hosts >/dev/null 2>&1; then
  fail "HWLEDGER_TOKEN did not override the config's token_file"
fi
cfg=${XDG_CONFIG_HOME}/hwledger/config.json
python3 - "$cfg" "${work}/bad-key.json" "${work}/no-token.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
json.dump(dict(c, colour="on"), open(sys.argv[2], "w"))
json.dump(dict(c, token_file="/nonexistent/admin.token"), open(sys.argv[3], "w"))
PY
rc=0; HWLEDGER_CONFIG=${work}/bad-key.json hwledger hosts >/dev/null 2>"${work}/err" || rc=$?
[[ $rc -eq 1 ]] && grep -q '"colour"' "${work}/err" || fail "unknown config key not refused by name (rc $rc): $(cat "${work}/err")"
rc=0; HWLEDGER_CONFIG=${work}/no-token.json hwledger hosts >/dev/null 2>"${work}/err" || rc=$?
[[ $rc -eq 1 ]] && grep -q 'token_file /nonexistent/admin.token' "${work}/err" || fail "missing token file not named (rc $rc): $(cat "${work}/err")"
echo "ok: config file, HWLEDGER_* and flags in that order; bad config refused"

# --- one placement path ----------------------------------------------------------------------------
model=tests/fixtures/models/Qwen3-30B-A3B.config.json
for tp in "" 1 2 4; do
  args=(--context 32768); body='{"context":32768'
  if [[ -n $tp ]]; then args+=(--tp "$tp"); body+=",\"tp\":$tp"; fi
  body+=',"model":'$(cat "${work}/${model}")'}'
  (cd "${work}" && hwledger placements "$model" "${args[@]}" -o json) >"${work}/cli.json"
  curl -sf --cacert "${HWLEDGER_HOME}/server/ca.crt" -H "Authorization: Bearer $(cat "${HWLEDGER_HOME}/admin.token")" \
    -X POST --data-binary "$body" "https://127.0.0.1:${port}/v1/placements" >"${work}/api.json" ||
    fail "POST /v1/placements failed"
  (cd "${work}" && hwledger plan "$model" "${args[@]}" --host local-demo -o json) >"${work}/plan.json" || true
  python3 - "${work}/cli.json" "${work}/api.json" "${work}/plan.json" "$tp" <<'PY'
import json, sys
cli = json.load(open(sys.argv[1]))["placements"]
api = json.load(open(sys.argv[2]))["placements"]
plan = json.load(open(sys.argv[3]))["placement"]
key = lambda p: (p["host"], p["fits"], p["gpus_needed"], p["per_gpu_bytes"])
assert [key(p) for p in cli] == [key(p) for p in api], (cli, api)
assert key(plan) == key(cli[0]), (plan, cli[0])
# plan --host takes the throughput bounds of the GPU model the host reports (the demo's H100s).
assert json.load(open(sys.argv[3]))["throughput"]["gpu"] == "H100 SXM", plan
# Two of the demo host's four H100s are idle: the model fits on one at TP 1.
if sys.argv[4] in ("", "1"):
    assert cli[0]["fits"] and cli[0]["gpus_needed"] == 1, cli
if sys.argv[4]:
    assert cli[0]["gpus_needed"] == int(sys.argv[4]), cli
PY
done
echo "ok: placements, plan --host and POST /v1/placements agree"

# --- the README block, every line as written ------------------------------------------------------
awk '/^## Using it/{u=1} u && /^```sh/{b=1; next} b && /^```/{exit} b' "${repo}/README.md" >"${work}/lines"
[[ $(wc -l <"${work}/lines") -ge 10 ]] || fail "README's Using it block not found"
: >"${work}/session.sh"
n=0
while IFS= read -r line; do
  n=$((n + 1))
  # One shell for the whole block (id=... must carry over), stopping at the first failing line;
  # `timeout` ends the follow lines, as Ctrl-C would, with 124.
  printf '%s\nrc=$?\nif [[ $rc -ne 0 && ! ( $rc -eq 124 && %q == timeout* ) ]]; then echo "README line %d failed ($rc): %q" >&2; exit 1; fi\n' \
    "$line" "$line" "$n" "$line" >>"${work}/session.sh"
done <"${work}/lines"
(cd "${work}" && bash "${work}/session.sh") >"${work}/session.out" 2>&1 ||
  fail "$(tail -20 "${work}/session.out")"
grep -q "hello on GPU" "${work}/session.out" || fail "the job's log line did not stream: $(cat "${work}/session.out")"
echo "ok: all ${n} README lines ran as written"
