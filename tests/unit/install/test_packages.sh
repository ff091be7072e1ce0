#!/usr/bin/env bash
# Builds the Debian packages with CPack from this build and checks them as an operator's machine
# would see them: control fields, contents and modes (dpkg-deb), the files unpacked into a scratch
# root (dpkg -x), that Depends names the package of every shared library the binaries need
# (readelf + dpkg -S), that apt resolves it (apt-get install --simulate), that the packaged units
# verify, and that no maintainer script enables or starts a service.
# Usage: test_packages.sh BUILD_DIR
set -euo pipefail

build=$(cd "$1" && pwd)
for tool in dpkg-deb cpack readelf; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
work=$(mktemp -d /tmp/hwl-packages-XXXXXX)
trap 'rm -rf "${work}"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@"; then echo "ok: ${what}"; else fail "${what}"; fi; }

ldconfig -p >"${work}/ldcache"  # read from a file: awk's early exit would SIGPIPE a pipe
(cd "${build}" && cpack -G DEB -B "${work}/dist" >"${work}/cpack.log" 2>&1) ||
  { cat "${work}/cpack.log" >&2; echo "FAIL: cpack" >&2; exit 1; }

declare -A bins=([hwledger-agent]="usr/bin/hwledger-agent"
                 [hwledger-server]="usr/bin/hwledger-server usr/bin/hwledger")
declare -A units=([hwledger-agent]=hwledger-agent.service [hwledger-server]=hwledger-server.service)

for pkg in hwledger-agent hwledger-server; do
  deb=$(ls "${work}"/dist/"${pkg}"_*.deb 2>/dev/null | head -1)
  [[ -n $deb ]] || { fail "${pkg}: no .deb built"; continue; }
  root=${work}/root-${pkg}
  dpkg-deb --info "$deb" >"${work}/${pkg}.info"
  dpkg-deb --contents "$deb" >"${work}/${pkg}.contents"
  dpkg -x "$deb" "$root"
  depends=$(dpkg-deb --field "$deb" Depends)
  echo "${pkg} Depends: ${depends}"
  check "${pkg}: Package field" test "$(dpkg-deb --field "$deb" Package)" = "$pkg"
  check "${pkg}: Depends is not empty" test -n "$depends"
  for b in ${bins[$pkg]}; do
    check "${pkg}: /${b} is an executable 0755" bash -c "[[ -x '${root}/${b}' && \$(stat -c %a '${root}/${b}') == 755 ]] && grep -q ' ./${b}\$' '${work}/${pkg}.contents'"
    check "${pkg}: /${b} runs from the package" bash -c "'${root}/${b}' --help >/dev/null"
    # Every shared library the binary needs comes from a package that Depends names (by its
    # own name, or by a name it Provides, as libspdlog1.10 provides libspdlog1.10-fmt9).
    while read -r lib; do
      path=$(awk -v l="$lib" '$1 == l { print $NF; exit }' "${work}/ldcache")
      owner=
      if [[ -n $path ]]; then
        owner=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true)
        owner=${owner%%:*}
      fi
      provides=$( [[ -z $owner ]] || dpkg-query -W -f='${Provides}' "$owner" 2>/dev/null || true)
      names=" ${owner} $(sed 's/([^)]*)//g; s/,/ /g' <<<"$provides") "
      found=0
      for d in $(sed 's/([^)]*)//g; s/|/,/g; s/,/ /g' <<<"$depends"); do
        [[ $names == *" $d "* ]] && found=1
      done
      if [[ -n $owner && $found -eq 1 ]]; then
        echo "ok: ${pkg}: ${lib} (${owner}) is in Depends"
      else
        fail "${pkg}: ${lib} (${owner:-no package}) is not in Depends"
      fi
    done < <(readelf -d "${root}/${b}" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  done
  unit=${root}/usr/lib/systemd/system/${units[$pkg]}
  check "${pkg}: unit installed 0644" bash -c "[[ \$(stat -c %a '${unit}') == 644 ]]"
  check "${pkg}: unit runs the packaged binary and waits for enrollment/init" bash -c "grep -q '^ExecStart=/usr/bin/' '${unit}' && grep -q '^ConditionPathExists=/var/lib/' '${unit}'"
  dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "${work}" --one-top-level="ctrl-${pkg}"
  for s in postinst postrm; do
    f=${work}/ctrl-${pkg}/${s}
    [[ -f $f ]] || f=${work}/ctrl-${pkg}/./${s}
    check "${pkg}: ${s} present, executable, valid sh" bash -c "[[ -x '$f' ]] && sh -n '$f'"
  done
  # (It may print the command for the operator; it must not run it.)
  check "${pkg}: postinst neither enables nor starts a service" bash -c "! grep -Ev '^[[:space:]]*(#|echo )' '${work}/ctrl-${pkg}/postinst' | grep -Eq 'systemctl +(enable|start|restart)|--now'"
  check "${pkg}: postinst creates the system user" grep -q "useradd --system" "${work}/ctrl-${pkg}/postinst"
  # apt resolves the dependency list (what a GPU host would need to fetch).
  if apt-get install --simulate "$deb" >"${work}/${pkg}.apt" 2>&1; then
    echo "ok: ${pkg}: apt-get install --simulate resolves: $(grep -E '^(Inst|Conf) ' "${work}/${pkg}.apt" | tr '\n' ' ')"
  else
    cat "${work}/${pkg}.apt" >&2
    fail "${pkg}: apt-get install --simulate"
  fi
  if command -v systemd-analyze >/dev/null; then
    mkdir -p "${root}/usr/lib/systemd"
    cp -an /usr/lib/systemd/system "${root}/usr/lib/systemd/"
    check "${pkg}: systemd-analyze verify of the packaged unit" bash -c "systemd-analyze verify --root='${root}' /usr/lib/systemd/system/${units[$pkg]} >'${work}/verify' 2>&1 && [[ ! -s '${work}/verify' ]] || { cat '${work}/verify' >&2; false; }"
  fi
done
# The agent needs no sqlite on a GPU host; the server does.
check "agent does not depend on sqlite" bash -c "! dpkg-deb --field '$(ls "${work}"/dist/hwledger-agent_*.deb)' Depends | grep -q sqlite"
check "server depends on sqlite" bash -c "dpkg-deb --field '$(ls "${work}"/dist/hwledger-server_*.deb)' Depends | grep -q libsqlite3"

if [[ ${failures} -gt 0 ]]; then echo "${failures} check(s) failed" >&2; exit 1; fi
echo "all package checks passed"
