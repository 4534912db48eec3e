#!/usr/bin/env bash
# Gateway overhead, measured with the shared rig (../shared/bench): wrk against
# an nginx mock upstream, peers `direct` (wrk -> mock) and `nginx`
# (proxy_pass) as baselines, and ARouter as the candidate, all in one run.
# Prints the run's table and ARouter's ratios against both baselines.
#   bench/run.sh                 # default: 10 s per row, c64 and c1
#   DURATION=30s bench/run.sh    # any run_peers.sh knob passes through
set -euo pipefail
cd "$(dirname "$0")/.."
RIG=${BENCH_RIG:-$(cd .. && pwd)/shared/bench}
[ -x "$RIG/run_peers.sh" ] || { echo "benchmark rig not found at $RIG (set BENCH_RIG)" >&2; exit 2; }
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq nginx wrk
fi
cargo build --release -p arouter
export BENCH_OUT=${BENCH_OUT:-/tmp/arouter-bench}
export RESULTS=$BENCH_OUT/RESULTS.md
mkdir -p "$BENCH_OUT"
# The rig sends this key on every request; the gateway takes it as its master key.
key=sk-bench-7f3a9c2e5b1d4f8a6c0e9b2d7a4f1c8e3b6d9a0f2c5e8b1d4a7f0c3e6b9d2a5f
data=$(mktemp -d /tmp/arouter-bench-data.XXXX)
export CANDIDATE_CMD="env AROUTER_MASTER_KEY=$key RUST_LOG=warn $PWD/target/release/arouter serve --listen \$LISTEN_ADDR --data-dir $data"
before=$( [ -f "$RESULTS" ] && wc -l < "$RESULTS" || echo 0)
"$RIG/run_peers.sh" direct nginx candidate
tail -n +"$((before + 1))" "$RESULTS" > "$BENCH_OUT/last-run.md"
echo
echo "ARouter relative to the baselines of this run (RPS ratio; p50/p99 in ms):"
awk -F'|' '
  /^\| 20/ { peer=$3; mode=$4; c=$5; gsub(/ /,"",peer); gsub(/ /,"",mode); gsub(/ /,"",c);
             rps[peer,mode,c]=$6+0; p50[peer,mode,c]=$7; p99[peer,mode,c]=$8; seen[mode,c]=1 }
  END {
    for (k in seen) { split(k, a, SUBSEP); m=a[1]; c=a[2];
      d=rps["direct",m,c]; n=rps["nginx",m,c]; x=rps["candidate",m,c];
      printf "  %-9s c%-3s arouter %7d rps = %.2f x direct (%d), %.2f x nginx (%d); p50 %s/%s/%s ms, p99 %s/%s/%s ms (arouter/direct/nginx)\n",
        m, c, x, (d ? x/d : 0), d, (n ? x/n : 0), n,
        p50["candidate",m,c], p50["direct",m,c], p50["nginx",m,c], p99["candidate",m,c], p99["direct",m,c], p99["nginx",m,c] }
  }' "$BENCH_OUT/last-run.md"
rm -rf "$data"
