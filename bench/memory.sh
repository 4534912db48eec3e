#!/usr/bin/env bash
# ARouter's memory, and what its tokenizer tables cost: idle RSS (and where
# it goes, from /proc/PID/smaps_rollup and the thread count), then the
# first local count_tokens call (gpt-4o: o200k), its latency and the RSS
# after it, then a second call and one for gpt-4 (cl100k).
#   bench/memory.sh [path/to/arouter]     # default target/release/arouter
# Knobs: PORT=18095  IDLE_WAIT=3 (s after ready before sampling idle RSS)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/arouter}
PORT=${PORT:-18095}
IDLE_WAIT=${IDLE_WAIT:-3}
key=sk-bench-memory-0123456789abcdef
data=$(mktemp -d /tmp/arouter-memory.XXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$data"; }
trap cleanup EXIT
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN{printf "%.1f MB", k/1024}'; }
# The upstream is never called (counting for OpenAI is local); any URL will do.
AROUTER_MASTER_KEY=$key OPENAI_API_KEY=sk-unused OPENAI_BASE_URL=http://127.0.0.1:9/v1 RUST_LOG=warn \
  "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$data" >"$data/log" 2>&1 &
pid=$!
t0=$(date +%s%N)
until curl -s -o /dev/null "http://127.0.0.1:$PORT/"; do
  kill -0 "$pid" 2>/dev/null || { echo "arouter exited:"; cat "$data/log"; exit 1; }
  sleep 0.02; done
echo "ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms; binary $BIN"
sleep "$IDLE_WAIT"
echo "idle RSS: $(mb "$(rss_kb "$pid")"), threads: $(awk '/^Threads/{print $2}' "/proc/$pid/status")"
awk '/^(Rss|Pss_Anon|Pss_File|Anonymous|Private_Dirty):/{printf "  %s %s kB\n", $1, $2}' "/proc/$pid/smaps_rollup"
count() {  # count MODEL -> prints input_tokens and curl's total time
  curl -s -o "$data/body" -w '%{time_total}' "http://127.0.0.1:$PORT/v1/messages/count_tokens" \
    -H "x-api-key: $key" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    -d '{"model":"'"$1"'","messages":[{"role":"user","content":"hello, and tell me the capital of France, Germany and Italy please"}]}'
}
for call in "first openai/gpt-4o" "second openai/gpt-4o" "first openai/gpt-4" ; do
  set -- $call
  t=$(count "$2")
  echo "$1 count_tokens $2: $(awk -v t="$t" 'BEGIN{printf "%.1f ms", t*1000}') -> $(cat "$data/body"); RSS after: $(mb "$(rss_kb "$pid")")"
done
