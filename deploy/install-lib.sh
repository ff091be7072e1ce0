# Shared by install-agent.sh and install-server.sh (sourced, not run): system users and ownership,
# on the running system or inside a root prefix. The caller sets `root` (empty = this system) and
# `prog` (the name its messages start with).

say() { printf '%s: %s\n' "${prog}" "$*"; }

free_id() {  # free_id FILE: the highest free id in 999..900 in an /etc/passwd- or group-like FILE
  local file=$1 id
  for ((id = 999; id >= 900; id--)); do
    if ! cut -d: -f3 "${file}" | grep -qx "${id}"; then echo "${id}"; return 0; fi
  done
  echo "${prog}: no free system id in 900-999 in ${file}" >&2
  return 1
}

ensure_user() {  # ensure_user NAME HOME
  local name=$1 home=$2
  if [[ -z "${root}" ]]; then
    if getent passwd "${name}" >/dev/null; then
      say "user ${name} exists"
    else
      useradd --system --user-group --no-create-home --home-dir "${home}" \
        --shell /usr/sbin/nologin --comment "hwLedger ${name#hwledger-}" "${name}"
      say "created system user ${name}"
    fi
    return 0
  fi
  # Under a root prefix: never touch this system's user database; edit the prefix's files.
  mkdir -p "${root}/etc"
  touch "${root}/etc/passwd" "${root}/etc/group"
  local gid uid
  if ! gid=$(awk -F: -v n="${name}" '$1 == n { print $3; f = 1 } END { exit !f }' "${root}/etc/group"); then
    gid=$(free_id "${root}/etc/group")
    echo "${name}:x:${gid}:" >>"${root}/etc/group"
  fi
  if awk -F: -v n="${name}" '$1 == n { f = 1 } END { exit !f }' "${root}/etc/passwd"; then
    say "user ${name} exists in ${root}/etc/passwd"
  else
    uid=${gid}
    if cut -d: -f3 "${root}/etc/passwd" | grep -qx "${uid}"; then uid=$(free_id "${root}/etc/passwd"); fi
    echo "${name}:x:${uid}:${gid}:hwLedger ${name#hwledger-}:${home}:/usr/sbin/nologin" >>"${root}/etc/passwd"
    say "added ${name} (uid ${uid}) to ${root}/etc/passwd"
  fi
}

# owner NAME: "uid:gid" of NAME in the target system's user database
owner() {
  if [[ -z "${root}" ]]; then
    echo "$(id -u "$1"):$(id -g "$1")"
  else
    awk -F: -v n="$1" '$1 == n { print $3 ":" $4 }' "${root}/etc/passwd"
  fi
}

# set_owner OWNER PATH...: chown when we may (always on a live system; as root under a prefix)
set_owner() {
  local own=$1; shift
  if [[ $(id -u) -eq 0 ]]; then
    chown "${own}" "$@"
  else
    say "not root: leaving $* owned by $(id -un) (wanted ${own})"
  fi
}

# resolve_root: normalise `root` (absolute; "/" means this system) and refuse a live install
# without root.
resolve_root() {
  if [[ -n "${root}" ]]; then
    mkdir -p "${root}"
    root=$(cd "${root}" && pwd)
    [[ "${root}" == / ]] && root=
  fi
  if [[ -z "${root}" && $(id -u) -ne 0 ]]; then
    echo "${prog}: installing onto this system needs root (or use --root DIR)" >&2
    exit 1
  fi
}
