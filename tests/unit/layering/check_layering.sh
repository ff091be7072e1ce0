#!/usr/bin/env bash
# The server's layers, checked in the sources (the build checks the link graph: nothing above
# server/storage links SQLite, see server/CMakeLists.txt): the REST handlers (api/), the dispatch
# code (dispatch/) and the collector (collect/) see the ledger and the time series through the
# interfaces of ledger/ only — no SQL, no sqlite3, no header of the SQLite backend (storage/).
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
mapfile -t upper < <(ls api/*.[ch]pp dispatch/*.[ch]pp collect/*.[ch]pp pki/*.[ch]pp ledger/*.[ch]pp)
check "SQL outside the ledger and the store" '"(SELECT|INSERT|UPDATE|DELETE FROM|CREATE) ' "${upper[@]}"
check "prepared statements outside the ledger and the store" '\.prepare\(|\.exec\(' "${upper[@]}"
check "sqlite3 C API outside the storage" 'sqlite3_|sqlite::' "${upper[@]}"
check "the SQLite backend's headers above it" '#include "(storage/|sqlite)' "${upper[@]}"
# The API layer reaches agents only through the dispatch seam.
check "agent calls from the API outside dispatch/" 'http::Client|agentClient' api/*.cpp api/*.hpp
if [[ $fail -ne 0 ]]; then exit 1; fi
echo "layering: ${#upper[@]} files of ledger/, pki/, dispatch/, collect/ and api/ run no SQL, include nothing of storage/ and call agents only through dispatch/"
