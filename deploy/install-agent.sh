#!/usr/bin/env bash
# Installs hwledger-agent on a GPU host: binary, users, state and job dirs, config, systemd unit.
#
#   deploy/install-agent.sh [--binary PATH] [--root DIR] [--job-user NAME] [--no-start]
#
# --binary   the agent binary to install (default ./build/agent/hwledger-agent)
# --root     install into DIR instead of / (also: DESTDIR=DIR). Under a root prefix no user is
#            created on the running system: the users are appended to DIR/etc/passwd and
#            DIR/etc/group (system uids/gids 900-999 that are free there), files are chowned to
#            those numeric ids when we are root, and nothing is started.
# --job-user the user jobs run as (default hwledger-job); written to agent.json as job_user.
# --no-start do not reload systemd (the unit is never enabled before enrollment).
#
# Idempotent: existing users, dirs and an existing /etc/hwledger/agent.json are kept (the config
# is never overwritten; a changed job user is reported, not applied).
#
# hwledger-server installs agents over SSH in the same layout (server/agentless/installer.cpp:
# the same paths, modes, owners and users; systemd/hwledger-agent.service and agent.example.json
# are built into it): keep the two in step.
set -euo pipefail

readonly AGENT_USER=hwledger-agent
readonly UNIT=hwledger-agent.service
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "${script_dir}/.." && pwd)

binary=./build/agent/hwledger-agent
root=${DESTDIR:-}
job_user=hwledger-job
start=1

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --binary=*) binary=${1#*=}; shift ;;
    --root) root=${2:?--root needs a directory}; shift 2 ;;
    --root=*) root=${1#*=}; shift ;;
    --job-user) job_user=${2:?--job-user needs a name}; shift 2 ;;
    --job-user=*) job_user=${1#*=}; shift ;;
    --no-start) start=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-agent: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [[ ! "${job_user}" =~ ^[a-z_][a-z0-9_-]{0,31}$ || "${job_user}" == root || "${job_user}" == "${AGENT_USER}" ]]; then
  echo "install-agent: job user must be a plain user name other than root and ${AGENT_USER}" >&2
  exit 2
fi
if [[ ! -f "${binary}" || ! -x "${binary}" ]]; then
  echo "install-agent: agent binary not found or not executable: ${binary} (use --binary PATH)" >&2
  exit 1
fi
prog=install-agent
# shellcheck source=install-lib.sh
source "${script_dir}/install-lib.sh"
resolve_root

ensure_user "${AGENT_USER}" /var/lib/hwledger-agent
ensure_user "${job_user}" /var/lib/hwledger-jobs
agent_owner=$(owner "${AGENT_USER}")
job_owner=$(owner "${job_user}")

# --- binary ------------------------------------------------------------------------------------
install -D -m 0755 "${binary}" "${root}/usr/local/bin/hwledger-agent"
say "installed ${root}/usr/local/bin/hwledger-agent"

# --- directories -------------------------------------------------------------------------------
# State (outbox journal, job records, logs, keys): the agent's alone.
install -d -m 0700 "${root}/var/lib/hwledger-agent"
set_owner "${agent_owner}" "${root}/var/lib/hwledger-agent"
chmod 0700 "${root}/var/lib/hwledger-agent"
# Job working dirs: written by jobs as the job user.
install -d -m 0750 "${root}/var/lib/hwledger-jobs"
set_owner "${job_owner}" "${root}/var/lib/hwledger-jobs"
chmod 0750 "${root}/var/lib/hwledger-jobs"

# --- config ------------------------------------------------------------------------------------
install -d -m 0750 "${root}/etc/hwledger"
set_owner "0:${agent_owner#*:}" "${root}/etc/hwledger"
config="${root}/etc/hwledger/agent.json"
if [[ -e "${config}" ]]; then
  say "kept existing ${config}"
  if ! grep -q "\"job_user\": *\"${job_user}\"" "${config}"; then
    say "note: ${config} does not set job_user to ${job_user}; edit it if that is intended"
  fi
else
  tmp=$(mktemp "${root}/etc/hwledger/.agent.json.XXXXXX")
  sed -E "s/(\"job_user\": *)\"[^\"]*\"/\\1\"${job_user}\"/" "${script_dir}/agent.example.json" >"${tmp}"
  grep -q "\"job_user\": \"${job_user}\"" "${tmp}" || { rm -f "${tmp}"; echo "install-agent: agent.example.json lacks job_user" >&2; exit 1; }
  chmod 0640 "${tmp}"
  set_owner "0:${agent_owner#*:}" "${tmp}"
  mv -f "${tmp}" "${config}"
  say "wrote ${config}"
fi

# --- systemd -----------------------------------------------------------------------------------
install -D -m 0644 "${repo_dir}/systemd/${UNIT}" "${root}/etc/systemd/system/${UNIT}"
say "installed ${root}/etc/systemd/system/${UNIT}"
if [[ "${job_user}" != hwledger-job ]]; then
  say "note: the unit's comments name hwledger-job; the agent reads the job user from agent.json"
fi

# The agent cannot run before it is enrolled: the unit is installed, not enabled (and its
# ConditionPathExists= keeps it from starting, or restart-looping, without an identity).
if [[ -n "${root}" ]]; then
  say "root prefix ${root}: not starting anything"
elif [[ ${start} -eq 1 && -d /run/systemd/system ]]; then
  systemctl daemon-reload
  say "unit installed; enable it after enrollment (below)"
else
  say "systemd is not running here: after enrollment start /usr/local/bin/hwledger-agent run --config /etc/hwledger/agent.json yourself"
fi

cat <<MSG

Next, enroll this host with the fleet server (once; the key never leaves the host). On the
operator's machine, 'hwledger enroll-token create --name NAME' prints the exact command with a
fresh single-use token (POST /v1/enroll-tokens); it has this form:

  sudo -u ${AGENT_USER} /usr/local/bin/hwledger-agent enroll \\
      --server https://SERVER:8443 --token ID.SECRET --ca-pin sha256:HEX --name NAME \\
      --state-dir /var/lib/hwledger-agent

(the address the server reaches this agent at is detected from the route to the server; add
--advertise HOST:PORT to choose it). Then start the agent:

  sudo systemctl enable --now hwledger-agent
MSG
