#!/usr/bin/env bash
# The routes the binaries register (their `routes --json`) against the OpenAPI descriptions: a
# route in the code and not in the spec, or the other way round, or a role or body limit that
# differs, fails.
#   test_routes_match_spec.sh REPO SERVER_BIN AGENT_BIN
set -euo pipefail
repo=$1 server=$2 agent=$3
py=/usr/bin/python3
"$py" -c 'import yaml, jsonschema' 2>/dev/null || { echo "SKIP: python3-yaml/python3-jsonschema missing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$server" routes --json >"$tmp/server.json"
"$agent" routes --json >"$tmp/agent.json"
"$py" "$repo/tests/support/openapi_check.py" routes "$repo/proto/openapi.yaml" "$tmp/server.json"
"$py" "$repo/tests/support/openapi_check.py" routes "$repo/proto/openapi-agent.yaml" "$tmp/agent.json"
echo "routes: server $("$py" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$tmp/server.json"), agent $("$py" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$tmp/agent.json"), all in the spec"
