#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-15 (coverage, ASan, UBSan) and fuzzes each in turn.
#
#   bash tests/fuzz/run.sh [SECONDS] [TARGET...]     (deploy/setup.sh fuzz [SECONDS] runs this)
#
# Each target starts from its seed corpus (corpus/<t>) and regression inputs (crashes/<t>), runs
# for SECONDS (default 60) on one core, and writes what it finds to a work corpus under the build
# dir. HWL_FUZZ_MERGE=1 merges new coverage back into corpus/<t> (minimised). Exits non-zero if
# any target crashed, leaked, timed out or broke an invariant, naming the input that did.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${HWLEDGER_FUZZ_BUILD_DIR:-$repo/build-fuzz}
seconds=${1:-60}
shift || true
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$repo}

cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-15 -DCMAKE_CXX_COMPILER=clang++-15 -DHWL_FUZZ=ON \
  -DHWL_BUILD_BENCH=OFF -DHWL_WERROR=OFF >/dev/null
ninja -C "$build" -j"${HWL_FUZZ_BUILD_JOBS:-$(nproc)}" fuzz_targets

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for d in "$here"/targets/*.cpp; do
    t=$(basename "$d" .cpp)
    [[ -x $build/tests/fuzz/fuzz_$t ]] && targets+=("$t")
  done
fi

dict_for() {
  case "$1" in
    http_request|router) echo "$here/dict/http.dict" ;;
    nvidia_smi_xml) echo "$here/dict/xml.dict" ;;
    gguf|nvidia_smi_csv|csr) echo "" ;;
    *) echo "$here/dict/json.dict" ;;
  esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
scratch=$(mktemp -d /dev/shm/hwl-fuzz.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export HWL_FUZZ_SCRATCH=$scratch

failed=()
summary=()
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/fuzz_$t
  work=$build/fuzz-work/$t
  out=$build/fuzz-artifacts/$t
  mkdir -p "$work" "$out" "$here/crashes/$t"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536
        -print_final_stats=1 -artifact_prefix="$out/")
  dict=$(dict_for "$t")
  [[ -n $dict ]] && args+=(-dict="$dict")
  log=$build/fuzz-artifacts/$t.log
  echo "fuzz: $t for ${seconds}s"
  rc=0
  "$bin" "${args[@]}" "$work" "$here/corpus/$t" "$here/crashes/$t" >"$log" 2>&1 || rc=$?
  rm -rf "${scratch:?}"/*
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 || true)
  if [[ $rc -ne 0 ]]; then
    artifact=$(grep -Eo "Test unit written to [^ ]+" "$log" | tail -1 | sed 's/Test unit written to //' || true)
    echo "fuzz: $t FAILED (exit $rc): ${artifact:-see $log}" >&2
    grep -E "ERROR: |fuzz invariant failed|runtime error|SUMMARY" "$log" | head -5 >&2 || true
    failed+=("$t: ${artifact:-$log}")
  fi
  summary+=("$(printf '%-16s %10s execs %8s exec/s  %s  %s' "$t" "${execs:-?}" "${rate:-?}" \
    "${cov:-}" "$([[ $rc -eq 0 ]] && echo ok || echo CRASH)")")
  if [[ ${HWL_FUZZ_MERGE:-0} == 1 && $rc -eq 0 ]]; then
    "$bin" -merge=1 -max_len=65536 "$here/corpus/$t" "$work" >>"$log" 2>&1 || true
  fi
done

echo
echo "fuzz summary (${seconds}s per target, logs in $build/fuzz-artifacts):"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: ${#failed[@]} target(s) failed; crashing inputs:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  echo "replay one with: $build/tests/fuzz/fuzz_<target> <input>" >&2
  exit 1
fi
