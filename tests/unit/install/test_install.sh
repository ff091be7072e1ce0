#!/usr/bin/env bash
# Installs the agent into a temporary root with deploy/install-agent.sh and checks the result.
# Usage: test_install.sh INSTALL_SCRIPT AGENT_BINARY
set -euo pipefail

script=$1
binary=$2
work=$(mktemp -d /tmp/hwl-install-XXXXXX)
trap 'rm -rf "${work}"' EXIT
root=${work}/root
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@"; then echo "ok: ${what}"; else fail "${what}"; fi; }
mode_of() { stat -c %a "$1"; }
owner_of() { stat -c %u:%g "$1"; }
field() { awk -F: -v n="$1" -v f="$3" '$1 == n { print $f }' "$2"; }

host_had_agent_user=0
getent passwd hwledger-agent >/dev/null && host_had_agent_user=1

# --- first install -----------------------------------------------------------------------------
if ! bash "${script}" --root "${root}" --binary "${binary}" >"${work}/out1" 2>&1; then
  cat "${work}/out1" >&2
  fail "install into ${root} exited non-zero"
  exit 1
fi
cat "${work}/out1"

check "binary installed 0755 and identical" \
  bash -c "[[ \$(stat -c %a '${root}/usr/local/bin/hwledger-agent') == 755 ]] && cmp -s '${binary}' '${root}/usr/local/bin/hwledger-agent'"

agent_uid=$(field hwledger-agent "${root}/etc/passwd" 3)
agent_gid=$(field hwledger-agent "${root}/etc/passwd" 4)
job_uid=$(field hwledger-job "${root}/etc/passwd" 3)
job_gid=$(field hwledger-job "${root}/etc/passwd" 4)
check "agent user in root passwd with a system uid" bash -c "[[ -n '${agent_uid}' && ${agent_uid:-0} -ge 900 && ${agent_uid:-0} -le 999 ]]"
check "job user in root passwd with a system uid" bash -c "[[ -n '${job_uid}' && ${job_uid:-0} -ge 900 && ${job_uid:-0} -le 999 ]]"
check "agent and job users differ" test "${agent_uid}" != "${job_uid}"
check "groups in root group file" bash -c "grep -q '^hwledger-agent:x:${agent_gid}:' '${root}/etc/group' && grep -q '^hwledger-job:x:${job_gid}:' '${root}/etc/group'"
check "nologin shells" bash -c "[[ \$(awk -F: '\$1 ~ /^hwledger-/ { print \$7 }' '${root}/etc/passwd' | sort -u) == /usr/sbin/nologin ]]"
if [[ ${host_had_agent_user} -eq 0 ]]; then
  check "no user created on the real system" bash -c "! getent passwd hwledger-agent >/dev/null && ! getent passwd hwledger-job >/dev/null"
fi

state=${root}/var/lib/hwledger-agent
jobs=${root}/var/lib/hwledger-jobs
check "state dir 0700" test "$(mode_of "${state}")" = 700
check "jobs dir 0750" test "$(mode_of "${jobs}")" = 750
if [[ $(id -u) -eq 0 ]]; then
  check "state dir owned by the agent user" test "$(owner_of "${state}")" = "${agent_uid}:${agent_gid}"
  check "jobs dir owned by the job user" test "$(owner_of "${jobs}")" = "${job_uid}:${job_gid}"
  check "config readable by the agent group only" test "$(owner_of "${root}/etc/hwledger/agent.json")" = "0:${agent_gid}"
fi

config=${root}/etc/hwledger/agent.json
check "config 0640" test "$(mode_of "${config}")" = 640
check "config is JSON with every key and job_user set" python3 - "${config}" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
keys = {"state_dir", "listen", "probe", "job_user", "sample_interval_ms", "outbox_max_entries",
        "log_max_bytes", "log_keep"}
missing = keys - c.keys()
assert not missing, f"missing keys {missing}"
assert c["job_user"] == "hwledger-job", c["job_user"]
assert c["state_dir"] == "/var/lib/hwledger-agent", c["state_dir"]
assert isinstance(c["outbox_max_entries"], int) and c["outbox_max_entries"] > 0
PY

unit=${root}/etc/systemd/system/hwledger-agent.service
src_unit=$(dirname "${script}")/../systemd/hwledger-agent.service
check "unit installed 0644 and identical" bash -c "[[ \$(stat -c %a '${unit}') == 644 ]] && cmp -s '${src_unit}' '${unit}'"
check "unit runs the agent as hwledger-agent with the config" bash -c "grep -qx 'User=hwledger-agent' '${unit}' && grep -qx 'ExecStart=/usr/local/bin/hwledger-agent run --config /etc/hwledger/agent.json' '${unit}' && grep -qx 'StateDirectory=hwledger-agent' '${unit}'"
check "unit delegates the job cgroup controllers" bash -c "grep -qx 'Delegate=pids memory' '${unit}' && grep -qx 'KillMode=process' '${unit}'"
check "enrollment instructions printed" bash -c "grep -q 'hwledger-agent enroll' '${work}/out1' && grep -q -- '--server https://SERVER:8443 --token ID.SECRET --ca-pin sha256:HEX --name NAME' '${work}/out1'"
check "enrollment tokens named as what they are" bash -c "grep -q 'hwledger enroll-token create' '${work}/out1' && ! grep -q 'POST /v1/tokens' '${work}/out1'"
check "the unit is started only after enrollment" bash -c "grep -qx 'ConditionPathExists=/var/lib/hwledger-agent/enrollment.json' '${root}/etc/systemd/system/hwledger-agent.service' && ! grep -q 'enable --now' <(sed -n '/^Next, enroll/q;p' '${work}/out1') && [[ \$(grep -n 'hwledger-agent enroll' '${work}/out1' | head -1 | cut -d: -f1) -lt \$(grep -n 'enable --now' '${work}/out1' | cut -d: -f1) ]]"
check "nothing started under a root prefix" grep -q "not starting anything" "${work}/out1"

# --- idempotence -------------------------------------------------------------------------------
sum_before=$(cd "${root}" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
if ! bash "${script}" --root "${root}" --binary "${binary}" >"${work}/out2" 2>&1; then
  cat "${work}/out2" >&2
  fail "second install exited non-zero"
fi
sum_after=$(cd "${root}" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
check "second run changes nothing" test "${sum_before}" = "${sum_after}"
check "one passwd line per user" test "$(grep -c '^hwledger-' "${root}/etc/passwd")" = 2
# An operator's edit of the config survives a re-install.
sed -i 's/"log_keep": 3/"log_keep": 9/' "${config}"
bash "${script}" --root "${root}" --binary "${binary}" >"${work}/out3" 2>&1 || fail "third install exited non-zero"
check "edited config kept" grep -q '"log_keep": 9' "${config}"

# --- refusals ----------------------------------------------------------------------------------
check "missing binary refused" bash -c "! bash '${script}' --root '${work}/r2' --binary '${work}/nope' >/dev/null 2>&1"
check "root as job user refused" bash -c "! bash '${script}' --root '${work}/r3' --binary '${binary}' --job-user root >/dev/null 2>&1"
check "unknown option refused" bash -c "! bash '${script}' --root '${work}/r4' --binary '${binary}' --frobnicate >/dev/null 2>&1"

# --- systemd -----------------------------------------------------------------------------------
# shellcheck source=unit_checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/unit_checks.sh"
check_installed_unit "${root}" /etc/systemd/system/hwledger-agent.service /usr/local/bin/hwledger-agent 2.2

if [[ ${failures} -gt 0 ]]; then
  echo "${failures} check(s) failed" >&2
  exit 1
fi
echo "all install checks passed"
