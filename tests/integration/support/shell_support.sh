# Shared by the shell integration tests (sourced): a work dir, background processes stopped on
# exit, free loopback ports, and failing with a message.
#   hwl_init PREFIX   makes $work (0755: the job user must reach agents' jobs roots under it)
#                     and stops every pid in $pids, then removes $work, on exit.

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

hwl_init() {
  work=$(mktemp -d "/tmp/$1-XXXXXX")
  chmod 0755 "$work"
  pids=()
  trap hwl_cleanup EXIT
}

hwl_cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
