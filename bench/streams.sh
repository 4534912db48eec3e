#!/usr/bin/env bash
# Many concurrent SSE streams through ARouter against a paced upstream
# (arouter-bench mock: a chunk every PACE_MS), reporting completed streams,
# errors and the longest gap between two chunks that any client saw
# (pass: no error and no gap over 10 x PACE_MS).
#   bench/streams.sh                     # 500 streams
#   STREAMS=10000 bench/streams.sh       # the issue's target; raises the fd limit and --max-connections
# Knobs: STREAMS=500 PACE_MS=20 CHUNKS=250 (stream length = CHUNKS x PACE_MS)
#        RAMP=2000 (new streams a second)  RUNTIME=smol  THREADS (AROUTER_THREADS)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
STREAMS=${STREAMS:-500}; PACE_MS=${PACE_MS:-20}; CHUNKS=${CHUNKS:-250}; RAMP=${RAMP:-2000}
RUNTIME=${RUNTIME:-smol}
build_release
flag=$(runtime_flag "$RUNTIME") || { echo "skip runtime $RUNTIME: $flag"; exit 0; }
# Each stream holds a client socket and an upstream socket in the gateway,
# one in the client and one in the mock; all processes below inherit this.
need=$(( STREAMS * 2 + 1024 ))
ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge "$need" ] || echo "warning: fd limit $(ulimit -n) < $need needed for $STREAMS streams" >&2
dir=$(mktemp -d /tmp/arouter-streams.XXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
"$BENCHBIN" mock --listen 127.0.0.1:18097 --chunk-ms "$PACE_MS" --chunks "$CHUNKS" >"$dir/mock.log" 2>&1 & pids+=($!)
env AROUTER_MASTER_KEY=$KEY OPENAI_API_KEY=sk-mock OPENAI_BASE_URL=http://127.0.0.1:18097/v1 RUST_LOG=warn \
  ${THREADS:+AROUTER_THREADS=$THREADS} "$AROUTER" serve $flag --listen 127.0.0.1:18098 --data-dir "$dir" --max-connections $(( STREAMS + 1000 )) \
  >"$dir/arouter.log" 2>&1 & gw=$!; pids+=($gw)
wait_http http://127.0.0.1:18098/ "$gw" || { echo "arouter did not start:"; cat "$dir/arouter.log"; exit 1; }
echo "streams.sh: $STREAMS streams, a chunk every $PACE_MS ms for $(( CHUNKS * PACE_MS / 1000 )) s, fd limit $(ulimit -n), runtime $RUNTIME, load average $(cut -d' ' -f1-3 /proc/loadavg)"
peak=0
( while kill -0 "$gw" 2>/dev/null; do r=$(rss_kb "$gw"); [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" > "$dir/peak"; sleep 0.5; done ) & pids+=($!)
status=0
"$BENCHBIN" streams --url http://127.0.0.1:18098/v1/chat/completions --key "$KEY" \
  --streams "$STREAMS" --ramp-per-sec "$RAMP" --pace-ms "$PACE_MS" || status=$?
echo "arouter peak RSS: $(awk '{printf "%.1f MB", $1/1024}' "$dir/peak" 2>/dev/null)"
grep -m5 -i -E "error|warn" "$dir/arouter.log" || true
exit $status
