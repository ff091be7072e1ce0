# Shared by the install tests (sourced): the checks every installed hwLedger unit must pass.
# The caller defines check, fail, `work` and `failures`.

# check_installed_unit ROOT UNIT BINARY MAX_EXPOSURE: `systemd-analyze verify --root` is clean
# (and notices when BINARY, the unit's ExecStart, is missing, or the check proves nothing), and
# `systemd-analyze security --offline=true` rates the unit at most MAX_EXPOSURE. UNIT and BINARY
# are paths inside ROOT. Exits 77 (skipped) without systemd-analyze when nothing else failed.
check_installed_unit() {
  local root=$1 unit=$2 binary=$3 max=$4 score
  if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze not installed; unit not verified"
    [[ ${failures} -eq 0 ]] && exit 77
    exit 1
  fi
  # verify resolves ExecStart= and the units it orders against inside the root: give the root
  # the host's stock units (the installed binary is already there).
  mkdir -p "${root}/usr/lib/systemd"
  cp -an /usr/lib/systemd/system "${root}/usr/lib/systemd/"
  if systemd-analyze verify --root="${root}" "${unit}" >"${work}/verify" 2>&1 &&
     [[ ! -s "${work}/verify" ]]; then
    echo "ok: systemd-analyze verify --root clean"
  else
    cat "${work}/verify" >&2
    fail "systemd-analyze verify reported problems"
  fi
  mv "${root}${binary}" "${work}/binary.moved"
  check "verify notices a missing ExecStart binary" bash -c "! systemd-analyze verify --root='${root}' '${unit}' >/dev/null 2>&1"
  mv "${work}/binary.moved" "${root}${binary}"
  systemd-analyze security --offline=true "${root}${unit}" >"${work}/security" 2>&1 || true
  score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "${work}/security")
  echo "systemd-analyze security --offline=true: exposure ${score:-?}"
  check "exposure score parsed" test -n "${score}"
  check "exposure ${score:-?} <= ${max}" awk -v s="${score:-99}" -v m="${max}" 'BEGIN { exit !(s + 0 <= m + 0) }'
}
