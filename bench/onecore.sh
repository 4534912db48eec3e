#!/usr/bin/env bash
# The "On the Bench" one-core view: ARouter pinned to CPU 0 (taskset), the
# load (wrk) and the upstream mock pinned to CPU 1.
#  1. added latency at c=1 over direct, non-stream, with the rig's instant
#     nginx mock, measured the same way for each: direct (wrk to the mock),
#     nginx `proxy_pass` on CPU 0 (the rig's peer config) and ARouter on CPU
#     0. Direct keeps wrk and the mock on one CPU; a proxy on the other adds
#     two cross-CPU wakeups a request, slow on a VM, so nginx's row is this
#     layout's own floor. Not through the rig's run_peers.sh: while a
#     gateway runs it samples its RSS with `ps` every 0.5 s, on the load
#     CPU, and not for direct; that alone raised ARouter's p99 at c=1 from
#     0.52-0.57 to 1.41-1.83 ms (2026-12-03);
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

# 1. c=1, each the same way: 2 s of warm-up, then DURATION measured.
ms() { awk -v v="$1" 'BEGIN{n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /[^m]s$/) n*=1000; printf "%.3f", n}'; }
c1() {  # c1 NAME URL -> "p50 p99" in ms
  taskset -c 1 wrk -t1 -c1 -d2s -s "$RIG/chat.lua" "$2" >/dev/null 2>&1
  taskset -c 1 wrk -t1 -c1 -d"$DURATION" --latency -s "$RIG/chat.lua" "$2" >"$out/$1-c1.txt" 2>&1
  echo "$(ms "$(awk '$1=="50%"{print $2}' "$out/$1-c1.txt")") $(ms "$(awk '$1=="99%"{print $2}' "$out/$1-c1.txt")")"; }
stop_proc() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
bash "$RIG/mock/stop.sh" >/dev/null 2>&1 || true   # a mock left running may sit on either CPU
taskset -c 1 bash "$RIG/mock/start.sh" >/dev/null
read -r dir_p50 dir_p99 <<<"$(c1 direct http://127.0.0.1:18080/v1/chat/completions)"
mkdir -p /tmp/bench-nginx-proxy
taskset -c 0 nginx -c "$RIG/peers/nginx-proxy.conf" -p /tmp/bench-nginx-proxy -g 'daemon off;' >"$out/nginx.log" 2>&1 &
ngx=$!; pids+=($ngx)
wait_http http://127.0.0.1:18081/health "$ngx" || { echo "nginx proxy did not start" >&2; exit 1; }
read -r ngx_p50 ngx_p99 <<<"$(c1 nginx http://127.0.0.1:18081/v1/chat/completions)"
stop_proc "$ngx"
AROUTER_MASTER_KEY=$KEY OPENAI_API_KEY=sk-mock OPENAI_BASE_URL=http://127.0.0.1:18080/v1 RUST_LOG=warn \
  taskset -c 0 "$AROUTER" serve $flag --listen 127.0.0.1:18097 --data-dir "$data/c1" >"$out/arouter-c1.log" 2>&1 &
gw1=$!; pids+=($gw1)
wait_http http://127.0.0.1:18097/ "$gw1" || { echo "arouter did not start (see $out/arouter-c1.log)" >&2; exit 1; }
read -r ar_p50 ar_p99 <<<"$(c1 arouter http://127.0.0.1:18097/v1/chat/completions)"
stop_proc "$gw1"
bash "$RIG/mock/stop.sh" >/dev/null 2>&1 || true

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
  added() { awk -v a="$1" -v d="$dir_p99" 'BEGIN{printf "%+.3f", a-d}'; }
  echo "- c=1 non-stream (the rig's mock), p50 / p99: direct $dir_p50 / $dir_p99 ms;" \
       "nginx proxy_pass on CPU 0 $ngx_p50 / $ngx_p99 ms; arouter $ar_p50 / $ar_p99 ms;" \
       "added p99 over direct: nginx $(added "$ngx_p99") ms (this layout's floor), arouter $(added "$ar_p99") ms"
  echo "- ${DELAY_MS} ms mock, c=$CONNS: direct $d_rps rps (p99 $d_p99, errors $d_err), arouter $a_rps rps (p99 $a_p99, errors $a_err)," \
       "$(awk -v a="$a_rps" -v d="$d_rps" 'BEGIN{printf "%.2f", (d ? a/d : 0)}')x direct; arouter RSS after $(awk -v k="$peak" 'BEGIN{printf "%.1f", k/1024}') MB"
} | tee "$out/summary.md" | tee -a "$BENCH_OUT/RESULTS.md"
