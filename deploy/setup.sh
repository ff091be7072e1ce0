#!/usr/bin/env bash
# Sets up a Debian 12 machine for hwLedger and builds it; then runs what was asked.
#
#   bash deploy/setup.sh run     install deps, build, start the server with a local agent
#   bash deploy/setup.sh test    install deps, build, run the whole test suite (ctest)
#   bash deploy/setup.sh build   install deps and build only
#   bash deploy/setup.sh bench   install deps, build, run the benchmarks (tests/bench/run.sh)
#   bash deploy/setup.sh package install deps, build, make the Debian packages hwledger-agent and
#                                hwledger-server (CPack) in build/dist/
#   bash deploy/setup.sh fuzz [SECONDS]
#                                install deps, build the libFuzzer targets with clang-15 (ASan,
#                                UBSan) in build-fuzz/ and run each for SECONDS (default 60)
#
# Idempotent: packages already installed are not fetched again; the build is incremental
# (ccache when present, shared between clones). `run` builds only the three programs it runs.
# With CI=true, warnings are errors.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${HWLEDGER_BUILD_DIR:-$repo/build}
what=${1:-build}

packages=(
  g++ cmake ninja-build ccache pkg-config git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev openssl libsqlite3-dev sqlite3 libssh2-1-dev
  libspdlog-dev libcli11-dev libgtest-dev libgmock-dev
  curl python3 python3-yaml python3-jsonschema procps util-linux iproute2 openssh-server
  openssh-client dpkg-dev
  prometheus systemd nftables
  clang-15 libfuzzer-15-dev clang-format-15 clang-tidy-15
)

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    echo "setup: all ${#packages[@]} packages present"
    return
  fi
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  # The prometheus package is here for promtool only: keep its server from starting.
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# Front-end packages from the npm registry, at the versions package-lock.json pins: uPlot, built
# into the server's dashboard; playwright-core for the browser tests (it drives Debian's chromium
# and downloads no browser). Skipped when node_modules already matches the lock file.
npm_install() {  # DIR
  if [[ -f $1/node_modules/.package-lock.json && $1/node_modules/.package-lock.json -nt $1/package-lock.json ]]; then
    return
  fi
  echo "setup: npm ci in ${1#"$repo"/}"
  (cd "$1" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

build_all() {  # [TARGET...]: only these (default: everything, tests included)
  local werror=OFF
  if [[ ${CI:-} == true ]]; then werror=ON; fi
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DHWL_WERROR="$werror" >/dev/null
  ninja -C "$build" -j"$(nproc)" "$@"
}

if [[ $what == bench ]]; then packages+=(prometheus-node-exporter chromium); fi
if [[ $what == test ]]; then packages+=(chromium); fi
# Node.js and npm from Debian, unless a Node.js with npm is installed already (NodeSource's
# nodejs package carries npm and conflicts with Debian's npm).
if ! command -v npm >/dev/null; then packages+=(nodejs npm); fi
install_packages
npm_install "$repo/server/web"  # every build embeds uPlot, the fuzz build too
if [[ $what == test || $what == bench ]]; then npm_install "$repo/tests/e2e"; fi
# The fuzz targets have their own clang build; the g++ build is not needed for them.
# `run` builds only the three programs it runs.
case "$what" in
  fuzz) ;;
  run) build_all hwledger-server hwledger-agent hwledger ;;
  package) build_all hwledger-server hwledger-agent hwledger ;;
  *) build_all ;;
esac

case "$what" in
  build) ;;
  test)
    cd "$build"
    exec ctest --output-on-failure -j"$(nproc)" --timeout 600
    ;;
  run)
    exec bash "$repo/deploy/run-local.sh" "$build"
    ;;
  bench)
    exec bash "$repo/tests/bench/run.sh" "$build"
    ;;
  package)
    cd "$build"
    cpack -G DEB
    ls -l "$build"/dist/*.deb
    ;;
  fuzz)
    exec bash "$repo/tests/fuzz/run.sh" "${2:-60}"
    ;;
  *)
    echo "usage: deploy/setup.sh run|test|build|bench|package|fuzz [SECONDS]" >&2
    exit 2
    ;;
esac
