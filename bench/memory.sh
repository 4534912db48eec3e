#!/usr/bin/env bash
# ARouter's memory, and what its tokenizer tables cost: idle RSS (and where
# it goes, from /proc/PID/smaps_rollup and the thread count), then the
# first local count_tokens call (gpt-4o: o200k), its latency and the RSS
# after it, then a second call and one for gpt-4 (cl100k). Last, large
# bodies: BIG_BODIES concurrent chat requests of BIG_MB MB each (the
# upstream is unreachable, so each is read, parsed and answered 502), RSS
# at its peak, right after and 2.5 s later: freed bodies must go back
# to the system.
#   bench/memory.sh [path/to/arouter]     # default target/release/arouter
# Knobs: PORT=18095  IDLE_WAIT=3 (s after ready before sampling idle RSS)
#        BIG_BODIES=16  BIG_MB=30
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
# The upstream is unreachable: counting for OpenAI is local, and the large
# bodies need only be read and parsed (each is answered 502).
AROUTER_MAX_INFLIGHT_BODY_BYTES=$((1 << 30)) AROUTER_MASTER_KEY=$key OPENAI_API_KEY=sk-unused OPENAI_BASE_URL=http://127.0.0.1:9/v1 RUST_LOG=warn \
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
python3 - "$pid" "$PORT" "$key" "${BIG_BODIES:-16}" "${BIG_MB:-30}" <<'PY'
import http.client, json, sys, threading, time
pid, port, key, n, mb = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def rss():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
body = json.dumps({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x" * (mb * 1000 * 1000)}]})
before, peak, statuses, done = rss(), [0.0], [], threading.Event()
def watch():
    while not done.is_set():
        peak[0] = max(peak[0], rss()); time.sleep(0.01)
def post():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    c.request("POST", "/v1/chat/completions", body, {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    r = c.getresponse(); r.read(); statuses.append(r.status)
watcher = threading.Thread(target=watch); watcher.start()
posts = [threading.Thread(target=post) for _ in range(n)]
for t in posts: t.start()
for t in posts: t.join()
right_after = rss(); time.sleep(2.5); later = rss(); done.set(); watcher.join()
print(f"{n} concurrent {mb} MB bodies (statuses {sorted(set(statuses))}): RSS {before:.1f} MB before, "
      f"{peak[0]:.1f} MB peak, {right_after:.1f} MB right after, {later:.1f} MB 2.5 s later")
PY
