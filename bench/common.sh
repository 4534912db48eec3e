# Shared by bench/*.sh: the rig, the release binaries, the bench key, RSS helpers.
need_rig() {  # the shared rig beside the repo (or a worktree's repo), or BENCH_RIG
  local d; for d in ${BENCH_RIG:-} ../shared/bench ../../shared/bench; do
    [ -x "$d/run_peers.sh" ] && { RIG=$(cd "$d" && pwd); return 0; }; done
  echo "benchmark rig not found (set BENCH_RIG to the folder with run_peers.sh)" >&2; exit 2; }
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq nginx wrk
fi
export BENCH_OUT=${BENCH_OUT:-/tmp/arouter-bench}
mkdir -p "$BENCH_OUT"
AROUTER=$PWD/target/release/arouter
BENCHBIN=$PWD/target/release/arouter-bench
# The rig sends this key on every request; the gateway takes it as its master key.
KEY=sk-bench-7f3a9c2e5b1d4f8a6c0e9b2d7a4f1c8e3b6d9a0f2c5e8b1d4a7f0c3e6b9d2a5f
build_release() { cargo build --release --locked -p arouter -p arouter-conformance --bin arouter --bin arouter-bench >&2; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Does this arouter know `serve --runtime NAME`? (Only smol exists before the glommio frontend.)
runtime_flag() {  # runtime_flag NAME -> prints the flag to pass, or fails with a reason
  if "$AROUTER" serve --help 2>/dev/null | grep -q -- '--runtime'; then
    "$AROUTER" serve --help | grep -A3 -- '--runtime' | grep -q "$1" || { echo "arouter serve --runtime does not list $1"; return 1; }
    echo "--runtime $1"
  elif [ "$1" = smol ]; then echo ""   # the one runtime there is, no flag needed
  else echo "this arouter has no --runtime flag (only smol)"; return 1; fi
}
wait_http() {  # wait_http URL PID
  for _ in $(seq 1 300); do curl -s -o /dev/null -m 1 "$1" && return 0; kill -0 "$2" 2>/dev/null || return 1; sleep 0.05; done; return 1; }
