#!/usr/bin/env bash
# Every C++ source of the repository is formatted as .clang-format says (clang-format 15, the
# version setup.sh installs): prints the files that are not, and the command that fixes them.
#   check_format.sh REPO
set -euo pipefail
repo=$1
cf=$(command -v clang-format-15 || true)
if [[ -z $cf ]]; then
  echo "clang-format-15 is not installed (bash deploy/setup.sh installs it)" >&2
  exit 1
fi
cd "$repo"
mapfile -t files < <(git ls-files -- '*.cpp' '*.hpp' '*.h' '*.cc' | grep -v '^tests/fixtures/')
bad=()
for f in "${files[@]}"; do
  [[ -f $f ]] || continue
  if ! "$cf" --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done
if ((${#bad[@]})); then
  echo "FAIL: ${#bad[@]} of ${#files[@]} files differ from .clang-format:"
  printf '  %s\n' "${bad[@]}"
  echo "fix with: clang-format-15 -i ${bad[*]}"
  exit 1
fi
echo "format: ${#files[@]} files match .clang-format"
