#!/usr/bin/env bash
# clang-tidy (the checks of .clang-tidy: bugprone, performance, modernize subsets) over every
# translation unit of the product — agent/, server/, common/, proto/ — with the build's
# compile_commands.json. A unit whose source, headers (from ninja's dependency log), flags and
# .clang-tidy are unchanged since it last came out clean is not checked again: the record of clean
# units is kept in BUILD/clang-tidy-clean. Fails listing the warnings.
#   clang_tidy.sh REPO BUILD [JOBS]
set -euo pipefail
repo=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
jobs=${3:-$(nproc)}
ct=$(command -v clang-tidy-15 || true)
if [[ -z $ct ]]; then
  echo "clang-tidy-15 is not installed (bash deploy/setup.sh installs it)" >&2
  exit 1
fi
[[ -f $build/compile_commands.json ]] || { echo "no $build/compile_commands.json" >&2; exit 1; }
cache=$build/clang-tidy-clean
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# unit -> key: sha256 over the tool's version, .clang-tidy, the compile command and the contents
# of the source and every header ninja recorded for its object.
python3 - "$repo" "$build" "$ct" > "$work/units" <<'PY'
import hashlib, json, os, subprocess, sys
repo, build, ct = sys.argv[1:4]
cmds = json.load(open(os.path.join(build, "compile_commands.json")))
deps = {}
out = subprocess.run(["ninja", "-C", build, "-t", "deps"], capture_output=True, text=True).stdout
cur = None
for line in out.splitlines():
    if line and not line.startswith(" "):
        cur = line.split(":")[0]
        deps[cur] = []
    elif line.strip() and cur is not None:
        deps[cur].append(line.strip())
version = subprocess.run([ct, "--version"], capture_output=True, text=True).stdout
config = open(os.path.join(repo, ".clang-tidy"), "rb").read()
def digest(path):
    try:
        return hashlib.sha256(open(path, "rb").read()).hexdigest()
    except OSError:
        return "missing"
for c in cmds:
    f = os.path.realpath(c["file"])
    rel = os.path.relpath(f, repo)
    if rel.split("/")[0] not in ("agent", "server", "common", "proto"):
        continue
    h = hashlib.sha256()
    h.update(version.encode()); h.update(config); h.update(c.get("command", "").encode())
    h.update(digest(f).encode())
    args = c.get("command", "").split()
    obj = args[args.index("-o") + 1] if "-o" in args else ""
    for d in sorted(deps.get(obj, [])):
        p = d if os.path.isabs(d) else os.path.join(build, d)
        if os.path.realpath(p).startswith("/usr/"):
            continue  # system headers change with the packages, which the version covers
        h.update(d.encode()); h.update(digest(p).encode())
    print(h.hexdigest(), rel)
PY
todo=()
total=0
while read -r key rel; do
  total=$((total + 1))
  [[ -f $cache/$key ]] || todo+=("$key:$rel")
done < "$work/units"
echo "clang-tidy: $total units, ${#todo[@]} to check (the others unchanged since they were clean)"
check() {
  local key=${1%%:*} rel=${1#*:}
  local log=$work/$(echo "$rel" | tr / _).log
  if "$ct" -p "$build" --quiet --header-filter="^$repo/(agent|server|common|proto)/" \
      "$repo/$rel" > "$log" 2>/dev/null && ! grep -q "warning:\|error:" "$log"; then
    : > "$cache/$key"
    rm -f "$log"
  else
    echo "FAIL: $rel"
  fi
}
export -f check
export ct build repo work cache
if ((${#todo[@]})); then
  printf '%s\n' "${todo[@]}" | xargs -P "$jobs" -I{} bash -c 'check "$@"' _ {}
fi
if compgen -G "$work/*.log" > /dev/null; then
  # Through a file: `head` closing the pipe early would end the script (pipefail) before the count.
  cat "$work"/*.log | grep -A3 "warning:\|error:" > "$work/findings" || true
  head -400 "$work/findings"
  echo "clang-tidy: $(cat "$work"/*.log | grep -c "warning:\|error:") findings"
  exit 1
fi
echo "clang-tidy: clean"
