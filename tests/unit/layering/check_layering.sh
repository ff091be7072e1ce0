#!/usr/bin/env bash
# The server's layers as the build draws them, checked in the sources: the REST handlers (api/),
# the dispatch code (dispatch/) and the collector (collect/, except the time-series store, which
# owns its tables) run no SQL of their own — they call functions of the ledger and of the store —
# and nothing but the ledger and the store touches sqlite3 directly.
#   check_layering.sh REPO
set -euo pipefail
repo=$1
fail=0
check() {  # DESCRIPTION PATTERN FILE...
  local what=$1 pattern=$2
  shift 2
  local hits
  hits=$(grep -nE "$pattern" "$@" || true)
  if [[ -n $hits ]]; then
    echo "FAIL: $what:"
    echo "$hits"
    fail=1
  fi
}
cd "$repo/server"
mapfile -t upper < <(ls api/*.cpp api/*.hpp dispatch/*.cpp dispatch/*.hpp collect/collector.* collect/host_source.hpp)
check "SQL outside the ledger and the store" '"(SELECT|INSERT|UPDATE|DELETE FROM|CREATE) ' "${upper[@]}"
check "prepared statements outside the ledger and the store" '\.prepare\(|\.exec\(' "${upper[@]}"
check "sqlite3 C API outside the ledger" 'sqlite3_' "${upper[@]}"
# The API layer reaches agents only through the dispatch seam.
check "agent calls from the API outside dispatch/" 'http::Client|agentClient' api/*.cpp api/*.hpp
if [[ $fail -ne 0 ]]; then exit 1; fi
echo "layering: ${#upper[@]} files of api/, dispatch/ and collect/ run no SQL and call agents only through dispatch/"
