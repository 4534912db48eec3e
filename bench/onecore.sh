#!/usr/bin/env bash
# The "On the Bench" one-core view: ARouter pinned to CPU 0 (taskset), the
# load (wrk) and the upstream mock pinned to CPU 1.
#  1. added p99 at c=1 over direct: the shared rig's peers `direct` and the
#     candidate, non-stream, with the rig's instant nginx mock; and, as the
#     layout's own floor, nginx `proxy_pass` on CPU 0 in the same places
#     (direct keeps wrk and the mock on one CPU; a proxy on the other adds
#     two cross-CPU wakeups a request, which a VM makes slow);
#  2. sustained RPS against a mock that waits 20 ms per request
#     (arouter-bench mock --delay-ms 20), direct and through ARouter.
#   bench/onecore.sh                 # DURATION=10s CONNS=512 (for step 2) RUNTIME=smol
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
need_rig
DURATION=${DURATION:-10s}; CONNS=${CONNS:-512}; RUNTIME=${RUNTIME:-smol}; DELAY_MS=${DELAY_MS:-20}
[ "$(nproc)" -ge 2 ] || { echo "the one-core view needs 2 CPUs" >&2; exit 2; }
build_release
flag=$(runtime_flag "$RUNTIME") || { echo "skip runtime $RUNTIME: $flag"; exit 0; }
stamp=$(date +%Y%m%d-%H%M%S); out=$BENCH_OUT/onecore-$stamp; mkdir -p "$out"
data=$(mktemp -d /tmp/arouter-onecore.XXXX)
pids=()
# `|| true`: under `set -e` a kill of a process gone already would end the
# trap before the others are killed.
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$data"; }
trap cleanup EXIT
AROUTER_THREADS=1; export AROUTER_THREADS   # one serving thread on its one core

# 1. c=1 added latency, through the rig (its mock and wrk inherit CPU 1).
before=$( [ -f "$BENCH_OUT/RESULTS.md" ] && wc -l < "$BENCH_OUT/RESULTS.md" || echo 0)
MODES=nonstream RAW=$out/rig RESULTS=$BENCH_OUT/RESULTS.md \
CANDIDATE_CMD="taskset -c 0 env AROUTER_MASTER_KEY=$KEY RUST_LOG=warn $AROUTER serve $flag --listen \$LISTEN_ADDR --data-dir $data" \
  taskset -c 1 "$RIG/run_peers.sh" direct candidate >&2 || true
rows=$(tail -n +"$((before + 1))" "$BENCH_OUT/RESULTS.md" | grep '^| 20' || true)
p99() { awk -F'|' -v p="$1" -v c="$2" '{x=$3; y=$5; gsub(/ /,"",x); gsub(/ /,"",y)} x==p && y==c {print $8+0}' <<<"$rows"; }
p50() { awk -F'|' -v p="$1" -v c="$2" '{x=$3; y=$5; gsub(/ /,"",x); gsub(/ /,"",y)} x==p && y==c {print $7+0}' <<<"$rows"; }

# 1b. nginx proxy_pass (the rig's peer config) on CPU 0, wrk and the mock on CPU 1.
ms() { awk -v v="$1" 'BEGIN{n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /[^m]s$/) n*=1000; printf "%.3f", n}'; }
taskset -c 1 bash "$RIG/mock/start.sh" >/dev/null
mkdir -p /tmp/bench-nginx-proxy
taskset -c 0 nginx -c "$RIG/peers/nginx-proxy.conf" -p /tmp/bench-nginx-proxy -g 'daemon off;' >"$out/nginx.log" 2>&1 &
ngx=$!; pids+=($ngx)
wait_http http://127.0.0.1:18081/health "$ngx" || { echo "nginx proxy did not start" >&2; exit 1; }
taskset -c 1 wrk -t1 -c1 -d"$DURATION" --latency -s "$RIG/chat.lua" http://127.0.0.1:18081/v1/chat/completions >"$out/nginx-c1.txt" 2>&1
ngx_p50=$(ms "$(awk '$1=="50%"{print $2}' "$out/nginx-c1.txt")"); ngx_p99=$(ms "$(awk '$1=="99%"{print $2}' "$out/nginx-c1.txt")")
kill "$ngx" 2>/dev/null || true; wait "$ngx" 2>/dev/null || true
bash "$RIG/mock/stop.sh" >/dev/null 2>&1

# 2. sustained RPS against the 20 ms mock, direct and through ARouter.
taskset -c 1 "$BENCHBIN" mock --listen 127.0.0.1:18096 --delay-ms "$DELAY_MS" >"$out/mock.log" 2>&1 & pids+=($!)
AROUTER_MASTER_KEY=$KEY OPENAI_API_KEY=sk-mock OPENAI_BASE_URL=http://127.0.0.1:18096/v1 RUST_LOG=warn \
  taskset -c 0 "$AROUTER" serve $flag --listen 127.0.0.1:18095 --data-dir "$data" >"$out/arouter.log" 2>&1 & gw=$!; pids+=($gw)
wait_http http://127.0.0.1:18095/ "$gw" || { echo "arouter did not start" >&2; exit 1; }
ulimit -n $(( CONNS * 4 + 1024 )) 2>/dev/null || true
load() {  # load NAME URL -> "rps p99ms errors"
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" --timeout 5s --latency -s "$RIG/chat.lua" "$2" >"$out/$1.txt" 2>&1
  awk '/Requests\/sec/{r=$2} $1=="99%"{p=$2} /Non-2xx/{e+=$NF} /Socket errors/{gsub(/,/,""); e+=$4+$6+$8+$10}
       END{printf "%.0f %s %d", r, p, e}' "$out/$1.txt"; }
read -r d_rps d_p99 d_err <<<"$(load direct-delay http://127.0.0.1:18096/v1/chat/completions)"
read -r a_rps a_p99 a_err <<<"$(load arouter-delay http://127.0.0.1:18095/v1/chat/completions)"
peak=$(rss_kb "$gw")

{ echo "### bench/onecore.sh $stamp ($RUNTIME), arouter on CPU 0 with 1 thread; wrk + mocks on CPU 1; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- c=1 non-stream (rig mock): p50 direct $(p50 direct 1) ms, arouter $(p50 candidate 1) ms; p99 direct $(p99 direct 1) ms, arouter $(p99 candidate 1) ms;" \
       "added p99 $(awk -v a="$(p99 candidate 1)" -v d="$(p99 direct 1)" 'BEGIN{printf "%.3f", a-d}') ms"
  echo "- same layout, nginx proxy_pass on CPU 0: p50 $ngx_p50 ms, p99 $ngx_p99 ms; added p99 over direct" \
       "$(awk -v a="$ngx_p99" -v d="$(p99 direct 1)" 'BEGIN{printf "%.3f", a-d}') ms (the floor of this layout on this machine)"
  echo "- ${DELAY_MS} ms mock, c=$CONNS: direct $d_rps rps (p99 $d_p99, errors $d_err), arouter $a_rps rps (p99 $a_p99, errors $a_err)," \
       "$(awk -v a="$a_rps" -v d="$d_rps" 'BEGIN{printf "%.2f", (d ? a/d : 0)}')x direct; arouter RSS after $(awk -v k="$peak" 'BEGIN{printf "%.1f", k/1024}') MB"
} | tee "$out/summary.md" | tee -a "$BENCH_OUT/RESULTS.md"
