#!/usr/bin/env bash
# Instructions per non-stream request, counted by valgrind's callgrind (reproducible on a busy machine,
# unlike wall time): the gateway (smol, one serving thread) against a private copy of the rig's nginx mock
# (its 742-byte chat.completion, on MOCK_PORT), N keep-alive requests after WARM ones, counters zeroed between.
#   bench/callgrind.sh                       # builds the release binary, N=2000
#   AROUTER_BIN=/tmp/arouter-old N=500 bench/callgrind.sh
# Prints the whole process and the serving thread per request; the callgrind file is kept for
# `callgrind_annotate --inclusive=yes FILE` (a function's cost per request = its count / N).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
need_rig
N=${N:-2000} WARM=${WARM:-300} MOCK_PORT=${MOCK_PORT:-18280} PORT=${PORT:-18291} RUNTIME=${RUNTIME:-smol}
[ -n "${AROUTER_BIN:-}" ] || { build_release; AROUTER_BIN=$AROUTER; }
out=$BENCH_OUT/callgrind; mkdir -p "$out/mock"
python3 - "$RIG/mock" "$out/mock" "$MOCK_PORT" <<'PY'
import os, sys
src, dst, port = sys.argv[1:]
t = open(os.path.join(src, "nginx.conf.tmpl")).read()
for key, name, fn in (("@@CHAT@@", "chat", "chat_completion.json"), ("@@STREAM@@", "sse", "chat_completion_stream.sse"), ("@@MODELS@@", "models", "models.json")):
    body = open(os.path.join(src, fn)).read()
    parts = [body[i:i + 3000] for i in range(0, len(body), 3000)]
    lines = ["set $mock_%s_%d '%s';" % (name, i, p) for i, p in enumerate(parts)]
    lines.append("return 200 '%s';" % "".join("$mock_%s_%d" % (name, i) for i in range(len(parts))))
    t = t.replace(key, "\n            ".join(lines))
open(os.path.join(dst, "nginx.conf"), "w").write(t.replace("/tmp/bench-mock", dst).replace("127.0.0.1:18080", "127.0.0.1:" + port))
PY
nginx -c "$out/mock/nginx.conf" -p "$out/mock" -g 'daemon on;'
data=$(mktemp -d /tmp/arouter-callgrind.XXXX)
cleanup() { kill "$(cat "$out/mock/nginx.pid")" 2>/dev/null || true; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
file=$out/callgrind.$(date +%Y%m%d-%H%M%S).out
AROUTER_MASTER_KEY=$KEY OPENAI_API_KEY=sk-mock OPENAI_BASE_URL=http://127.0.0.1:$MOCK_PORT/v1 RUST_LOG=warn \
  valgrind --tool=callgrind --callgrind-out-file="$file" "$AROUTER_BIN" serve --runtime "$RUNTIME" --threads 1 \
  --listen 127.0.0.1:$PORT --data-dir "$data" >"$out/gateway.log" 2>&1 & pid=$!
wait_http "http://127.0.0.1:$PORT/" "$pid" || { echo "gateway did not start (see $out/gateway.log)" >&2; exit 1; }
requests() {  # requests COUNT: keep-alive POSTs of the rig's chat request (chat.lua's body)
  python3 - "$PORT" "$1" "$KEY" <<'PY'
import http.client, sys
port, n, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
body = ('{"model":"openai/gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},'
        '{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64,"temperature":0}')
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json", "Authorization": "Bearer " + key})
    r = c.getresponse(); r.read()
    if r.status != 200: sys.exit("status %d" % r.status)
PY
}
requests "$WARM"; sleep 1; callgrind_control -z "$pid" >/dev/null
requests "$N"; sleep 1; callgrind_control -d "$pid" >/dev/null
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
dump=$(ls -t "$file".* | head -1)
per() {  # per PATTERN: the first line matching it, its count divided by N (reads all: no SIGPIPE)
  awk -v n="$N" -v pat="$1" '!done && $0 ~ pat {gsub(",","",$1); printf "%d", $1/n; done=1}'; }
total=$(callgrind_annotate "$dump" 2>/dev/null | per "PROGRAM TOTALS")
serving=$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null | per "arouter::main \\[")
echo "instructions per non-stream request ($RUNTIME, 1 thread, N=$N): whole process $total, serving thread $serving"
echo "callgrind file: $dump"
