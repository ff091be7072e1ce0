#!/usr/bin/env bash
# Installs hwledger-server and the hwledger CLI: binaries, system user, data dir, config, unit.
#
#   deploy/install-server.sh [--build DIR] [--root DIR] [--server-name NAME] [--listen HOST:PORT]
#                            [--public-url https://NAME:PORT] [--no-start]
#
# --build       the build directory holding server/hwledger-server and server/cli/hwledger
#               (default ./build)
# --root        install into DIR instead of / (also: DESTDIR=DIR); the user goes into DIR/etc/passwd,
#               files are chowned to its numeric id when we are root, nothing is started
# --server-name the DNS name GPU hosts use to reach this server; it goes into the server
#               certificate (default: this host's name)
# --listen      where the server listens (default 0.0.0.0:8443, reachable by remote agents)
# --public-url  the URL printed in enrollment commands (default https://SERVER-NAME:PORT)
# --no-start    do not enable or start the unit on a live system
#
# Idempotent: an existing ledger (data dir) and /etc/hwledger/server.json are kept.
set -euo pipefail

readonly SERVER_USER=hwledger-server
readonly UNIT=hwledger-server.service
readonly DATA=/var/lib/hwledger-server
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "${script_dir}/.." && pwd)

build=./build
root=${DESTDIR:-}
server_name=$(hostname -f 2>/dev/null || hostname)
listen=0.0.0.0:8443
public_url=
start=1

usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --build) build=${2:?--build needs a directory}; shift 2 ;;
    --root) root=${2:?--root needs a directory}; shift 2 ;;
    --server-name) server_name=${2:?--server-name needs a name}; shift 2 ;;
    --listen) listen=${2:?--listen needs HOST:PORT}; shift 2 ;;
    --public-url) public_url=${2:?--public-url needs a URL}; shift 2 ;;
    --no-start) start=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-server: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# These values are written into a JSON file and printed in commands: plain characters only.
if [[ ! "${server_name}" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ ]]; then
  echo "install-server: --server-name must be a DNS name (letters, digits, '-', '.')" >&2
  exit 2
fi
if [[ ! "${listen}" =~ ^([0-9.]+|\[[0-9a-fA-F:]+\]):[0-9]{1,5}$ ]]; then
  echo "install-server: --listen must be IP:PORT (e.g. 0.0.0.0:8443)" >&2
  exit 2
fi
port=${listen##*:}
[[ -n "${public_url}" ]] || public_url="https://${server_name}:${port}"
if [[ ! "${public_url}" =~ ^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?$ ]]; then
  echo "install-server: --public-url must be https://NAME[:PORT]" >&2
  exit 2
fi
server_bin=${build}/server/hwledger-server
cli_bin=${build}/server/cli/hwledger
for b in "${server_bin}" "${cli_bin}"; do
  if [[ ! -f "${b}" || ! -x "${b}" ]]; then
    echo "install-server: ${b} not found or not executable (build first, or --build DIR)" >&2
    exit 1
  fi
done

prog=install-server
# shellcheck source=install-lib.sh
source "${script_dir}/install-lib.sh"
resolve_root

ensure_user "${SERVER_USER}" "${DATA}"
server_owner=$(owner "${SERVER_USER}")

install -D -m 0755 "${server_bin}" "${root}/usr/local/bin/hwledger-server"
install -D -m 0755 "${cli_bin}" "${root}/usr/local/bin/hwledger"
say "installed ${root}/usr/local/bin/hwledger-server and ${root}/usr/local/bin/hwledger"

# --- config ------------------------------------------------------------------------------------
install -d -m 0750 "${root}/etc/hwledger"
set_owner "0:${server_owner#*:}" "${root}/etc/hwledger"
config="${root}/etc/hwledger/server.json"
if [[ -e "${config}" ]]; then
  say "kept existing ${config}"
else
  tmp=$(mktemp "${root}/etc/hwledger/.server.json.XXXXXX")
  printf '{\n  "data_dir": "%s",\n  "listen": "%s",\n  "public_url": "%s",\n  "log_level": "info"\n}\n' \
    "${DATA}" "${listen}" "${public_url}" >"${tmp}"
  chmod 0640 "${tmp}"
  set_owner "0:${server_owner#*:}" "${tmp}"
  mv -f "${tmp}" "${config}"
  say "wrote ${config}"
fi

# --- data directory: the ledger, the fleet CA and the signing keys ----------------------------
data=${root}${DATA}
token_file=${root}/etc/hwledger/admin.token
if [[ -f "${data}/ledger.db" ]]; then
  say "kept the existing ledger in ${data}"
else
  install -d -m 0700 "${data}"
  if [[ -n "$(ls -A "${data}")" ]]; then
    echo "install-server: ${data} is not empty and holds no ledger; refusing to touch it" >&2
    exit 1
  fi
  # init refuses a non-empty dir and builds in a sibling before renaming: give it the empty dir.
  rmdir "${data}"
  ( umask 077 && "${root}/usr/local/bin/hwledger-server" init --data-dir "${data}" \
      --server-name "${server_name}" --admin-token-file "${token_file}" >/dev/null )
  chmod 0600 "${token_file}"
  say "initialised the ledger in ${data}; the first admin token is in ${token_file} (root only)"
fi
chmod 0700 "${data}"
set_owner "${server_owner}" -R "${data}"
# The fleet CA certificate is public: a copy operators' CLIs can read.
install -D -m 0644 "${data}/ca.crt" "${root}/usr/local/share/hwledger/ca.crt"

# --- systemd -----------------------------------------------------------------------------------
install -D -m 0644 "${repo_dir}/systemd/${UNIT}" "${root}/etc/systemd/system/${UNIT}"
say "installed ${root}/etc/systemd/system/${UNIT}"
if [[ -n "${root}" ]]; then
  say "root prefix ${root}: not starting anything"
elif [[ ${start} -eq 0 ]]; then
  say "--no-start: run 'systemctl daemon-reload && systemctl enable --now hwledger-server' later"
elif [[ -d /run/systemd/system ]]; then
  systemctl daemon-reload
  systemctl enable --now hwledger-server
  say "hwledger-server enabled and started"
else
  say "systemd is not running here: start it with runuser -u ${SERVER_USER} -- /usr/local/bin/hwledger-server run --config /etc/hwledger/server.json"
fi

cat <<MSG

The server listens on ${listen}; GPU hosts reach it as ${public_url} (open TCP port ${port} to
them). Its certificate names ${server_name}, localhost, 127.0.0.1 and ::1.

  export HWLEDGER_SERVER=https://127.0.0.1:${port} HWLEDGER_CA=/usr/local/share/hwledger/ca.crt
  export HWLEDGER_TOKEN=\$(sudo cat /etc/hwledger/admin.token)
  hwledger enroll-token create --name gpu-01     # prints the command for the new GPU host
MSG
