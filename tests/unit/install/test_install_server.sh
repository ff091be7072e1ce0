#!/usr/bin/env bash
# Installs the server into a temporary root with deploy/install-server.sh and checks the result:
# binaries, user, a real initialised ledger in the data dir, config, the hardened unit (verify and
# an exposure <= 2.5), idempotence, and refusals of values that would reach a config or a shell.
# Usage: test_install_server.sh INSTALL_SCRIPT BUILD_DIR
set -euo pipefail

script=$1
build=$2
work=$(mktemp -d /tmp/hwl-install-server-XXXXXX)
trap 'rm -rf "${work}"' EXIT
root=${work}/root
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@"; then echo "ok: ${what}"; else fail "${what}"; fi; }
mode_of() { stat -c %a "$1"; }
owner_of() { stat -c %u:%g "$1"; }
field() { awk -F: -v n="$1" -v f="$3" '$1 == n { print $f }' "$2"; }

if ! bash "${script}" --root "${root}" --build "${build}" --server-name ledger.example.org \
    >"${work}/out1" 2>&1; then
  cat "${work}/out1" >&2
  fail "install into ${root} exited non-zero"
  exit 1
fi
cat "${work}/out1"

check "server and CLI installed 0755 and identical" bash -c "
  [[ \$(stat -c %a '${root}/usr/local/bin/hwledger-server') == 755 ]] &&
  cmp -s '${build}/server/hwledger-server' '${root}/usr/local/bin/hwledger-server' &&
  cmp -s '${build}/server/cli/hwledger' '${root}/usr/local/bin/hwledger'"
uid=$(field hwledger-server "${root}/etc/passwd" 3)
gid=$(field hwledger-server "${root}/etc/passwd" 4)
check "server user in root passwd with a system uid" bash -c "[[ -n '${uid}' && ${uid:-0} -ge 900 && ${uid:-0} -le 999 ]]"
check "server user has no shell" test "$(field hwledger-server "${root}/etc/passwd" 7)" = /usr/sbin/nologin

data=${root}/var/lib/hwledger-server
check "data dir 0700" test "$(mode_of "${data}")" = 700
if [[ $(id -u) -eq 0 ]]; then
  check "data dir and ledger owned by the server user" bash -c "[[ \$(stat -c %u:%g '${data}') == '${uid}:${gid}' && \$(stat -c %u:%g '${data}/ledger.db') == '${uid}:${gid}' ]]"
fi
check "secret keys 0600" bash -c "[[ \$(stat -c %a '${data}/ca.key') == 600 && \$(stat -c %a '${data}/server.key') == 600 ]]"
check "admin token root-only" test "$(mode_of "${root}/etc/hwledger/admin.token")" = 600
check "public CA copy readable" test "$(mode_of "${root}/usr/local/share/hwledger/ca.crt")" = 644
check "server certificate names the given server name" bash -c "openssl x509 -in '${data}/server.crt' -noout -ext subjectAltName | grep -q 'DNS:ledger.example.org'"
# The ledger is real: the installed server verifies it offline and the token is the one it holds.
check "ledger verifies offline" bash -c "'${root}/usr/local/bin/hwledger' ledger verify --db '${data}/ledger.db' >/dev/null"
check "admin token has the token shape" grep -Eq '^tok_[0-9a-f]+\.[A-Za-z0-9_-]+$' "${root}/etc/hwledger/admin.token"

config=${root}/etc/hwledger/server.json
check "config 0640" test "$(mode_of "${config}")" = 640
check "config holds the data dir, listen address and public URL" python3 - "${config}" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
assert c["data_dir"] == "/var/lib/hwledger-server", c
assert c["listen"] == "0.0.0.0:8443", c
assert c["public_url"] == "https://ledger.example.org:8443", c
PY
# The installed server accepts that config (it fails fast on an unknown key or a bad value).
check "the server takes the written config" bash -c "
  sed 's|/var/lib/hwledger-server|${data}|; s|0.0.0.0:8443|127.0.0.1:0|' '${config}' >'${work}/local.json'
  timeout 20 '${root}/usr/local/bin/hwledger-server' run --config '${work}/local.json' >'${work}/run.log' 2>&1 &
  pid=\$!
  for _ in \$(seq 1 100); do [[ -s '${data}/listen.addr' ]] && break; sleep 0.1; done
  ok=1; [[ -s '${data}/listen.addr' ]] || ok=0
  kill -TERM \$pid 2>/dev/null; wait \$pid 2>/dev/null
  rm -f '${data}/listen.addr'
  [[ \$ok == 1 ]]"

unit=${root}/etc/systemd/system/hwledger-server.service
check "unit installed and identical" cmp -s "$(dirname "${script}")/../systemd/hwledger-server.service" "${unit}"
check "unit runs as hwledger-server with the config, only once initialised" bash -c "grep -qx 'User=hwledger-server' '${unit}' && grep -qx 'ExecStart=/usr/local/bin/hwledger-server run --config /etc/hwledger/server.json' '${unit}' && grep -qx 'ConditionPathExists=/var/lib/hwledger-server/ledger.db' '${unit}' && grep -qx 'CapabilityBoundingSet=' '${unit}'"
check "nothing started under a root prefix" grep -q "not starting anything" "${work}/out1"

# --- idempotence: the ledger and the config survive a re-install --------------------------------
sum_before=$(sha256sum "${data}/ledger.db" "${data}/ca.key" "${config}" "${root}/etc/hwledger/admin.token")
bash "${script}" --root "${root}" --build "${build}" --server-name ledger.example.org >"${work}/out2" 2>&1 ||
  fail "second install exited non-zero"
check "second run keeps ledger, keys, token and config" test "${sum_before}" = "$(sha256sum "${data}/ledger.db" "${data}/ca.key" "${config}" "${root}/etc/hwledger/admin.token")"
check "one passwd line" test "$(grep -c '^hwledger-server:' "${root}/etc/passwd")" = 1

# --- refusals: nothing that could reach the JSON config or a printed command ---------------------
refused() {  # refused ARG...: the install exits non-zero and writes no config
  local dir
  dir=$(mktemp -d "${work}/bad-XXXXXX")
  if bash "${script}" --root "${dir}" --build "${build}" "$@" >/dev/null 2>&1 ||
     [[ -e "${dir}/etc/hwledger/server.json" ]]; then
    fail "not refused: $*"
  else
    echo "ok: refused: $*"
  fi
}
refused --server-name 'a"b'
refused --server-name 'x;id'
refused --server-name '-x'
refused --listen '0.0.0.0:8443"}'
refused --listen 'host:8443'
refused --public-url 'http://x:1'
refused --public-url 'https://x/path'
refused --public-url 'https://user@x'
refused --frobnicate
check "missing build refused" bash -c "! bash '${script}' --root '${work}/nobuild' --build '${work}/nope' >/dev/null 2>&1"

# --- systemd -----------------------------------------------------------------------------------
# shellcheck source=unit_checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/unit_checks.sh"
check_installed_unit "${root}" /etc/systemd/system/hwledger-server.service /usr/local/bin/hwledger-server 2.5

if [[ ${failures} -gt 0 ]]; then
  echo "${failures} check(s) failed" >&2
  exit 1
fi
echo "all server install checks passed"
