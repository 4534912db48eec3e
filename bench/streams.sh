#!/usr/bin/env bash
# Many concurrent SSE streams through a gateway against a paced upstream
# (arouter-bench mock: a chunk every PACE_MS), reporting completed streams,
# errors, the longest gap between two chunks that any client saw (pass: no
# error and no gap over 10 x PACE_MS) and the gateway's peak RSS.
#   bench/streams.sh                          # 500 streams through ARouter (smol)
#   STREAMS=10000 bench/streams.sh            # the issue's target
#   RUNTIME=nginx STREAMS=10000 bench/streams.sh   # the same load through nginx proxy_pass
# Knobs: STREAMS=500 PACE_MS=20 RAMP=2000 (new streams a second) HOLD_S=5
#        (seconds every stream is open at once; sets CHUNKS, the stream length
#        in chunks, unless given) RUNTIME=smol|glommio|nginx THREADS
#        (AROUTER_THREADS) GATEWAYS (gateway processes; default: as many as
#        the fd limit needs, see below) AROUTER_BIN (another arouter binary,
#        e.g. a saved build to compare against; the build is then skipped)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
STREAMS=${STREAMS:-500}; PACE_MS=${PACE_MS:-20}; RAMP=${RAMP:-2000}; HOLD_S=${HOLD_S:-5}
# Long enough that the last stream starts while the first is still open.
CHUNKS=${CHUNKS:-$(( (STREAMS * 1000 / RAMP + HOLD_S * 1000) / PACE_MS ))}
RUNTIME=${RUNTIME:-smol}
if [ -n "${AROUTER_BIN:-}" ]; then AROUTER=$AROUTER_BIN; else build_release; fi
# Each stream holds a client socket and an upstream socket in the gateway,
# one in the client and one in the mock. The soft limit goes up to the hard
# one (all processes below inherit it); the hard one may not be raisable
# (a container without CAP_SYS_RESOURCE), and then one gateway process
# cannot hold 2 x STREAMS descriptors: the streams are split over GATEWAYS
# processes, each with its own port, the client spreading them round-robin
# as a balancer in front of them would (nginx: worker processes on one
# SO_REUSEPORT port).
ulimit -n "$(ulimit -Hn)"
fds=$(ulimit -n); spare=512
auto=$(( (STREAMS * 2 + spare + fds - 1) / fds ))
GATEWAYS=${GATEWAYS:-$auto}
[ "$auto" -eq 1 ] || [ "$GATEWAYS" -ne "$auto" ] ||
  echo "streams.sh: ${STREAMS} streams need $(( STREAMS * 2 + spare )) descriptors in one gateway; the hard fd limit is $fds (raising it needs CAP_SYS_RESOURCE), so the gateway runs as $GATEWAYS processes of ~$(( STREAMS / GATEWAYS )) streams each" >&2
[ "$(( STREAMS / GATEWAYS * 2 + spare ))" -le "$fds" ] ||
  echo "warning: fd limit $fds < $(( STREAMS / GATEWAYS * 2 + spare )) needed per gateway process" >&2
cpus=$(nproc)
dir=$(mktemp -d /tmp/arouter-streams.XXXX); : >"$dir/arouter.log"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
"$BENCHBIN" mock --listen 127.0.0.1:18097 --chunk-ms "$PACE_MS" --chunks "$CHUNKS" >"$dir/mock.log" 2>&1 & pids+=($!)
urls=(); gws=()
if [ "$RUNTIME" = direct ]; then
  gw=$!; gws=($gw); GATEWAYS=1   # the mock stands in: its RSS is what is reported
  wait_http http://127.0.0.1:18097/ "$gw" || { echo "mock did not start:"; cat "$dir/mock.log"; exit 1; }
  urls+=(http://127.0.0.1:18097/v1/chat/completions)
  label="no gateway (client straight to the mock)"
elif [ "$RUNTIME" = nginx ]; then
  mkdir -p "$dir/nginx"
  cat >"$dir/nginx.conf" <<EOF
worker_processes $(( GATEWAYS > cpus ? GATEWAYS : cpus ));
worker_rlimit_nofile $fds;
pid $dir/nginx.pid;
error_log $dir/nginx/error.log warn;
daemon off;
events { worker_connections $(( fds - 64 )); }
http {
    access_log off;
    client_body_temp_path $dir/nginx/body;
    proxy_temp_path $dir/nginx/proxy;
    fastcgi_temp_path $dir/nginx/fastcgi;
    uwsgi_temp_path $dir/nginx/uwsgi;
    scgi_temp_path $dir/nginx/scgi;
    keepalive_requests 1000000;
    upstream mock { server 127.0.0.1:18097; keepalive 1024; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:18100 reuseport backlog=4096;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 300s;
        }
    }
}
EOF
  nginx -c "$dir/nginx.conf" -p "$dir/nginx" >"$dir/arouter.log" 2>&1 & gw=$!; pids+=($gw); gws+=($gw)
  wait_http http://127.0.0.1:18100/ "$gw" || { echo "nginx did not start:"; cat "$dir/arouter.log" "$dir/nginx/error.log"; exit 1; }
  urls+=(http://127.0.0.1:18100/v1/chat/completions)
  label="nginx proxy_pass, $(( GATEWAYS > cpus ? GATEWAYS : cpus )) worker process(es)"
else
  flag=$(runtime_flag "$RUNTIME") || { echo "skip runtime $RUNTIME: $flag"; exit 0; }
  for i in $(seq 0 $(( GATEWAYS - 1 ))); do
    port=$(( 18100 + i )); mkdir -p "$dir/gw$i"
    # Several processes: each on its own core (so glommio's pinned
    # executors of two processes do not land on the same CPU).
    pin=(); [ "$GATEWAYS" -gt 1 ] && pin=(taskset -c $(( i % cpus )))
    env AROUTER_MASTER_KEY=$KEY OPENAI_API_KEY=sk-mock OPENAI_BASE_URL=http://127.0.0.1:18097/v1 RUST_LOG=warn \
      ${THREADS:+AROUTER_THREADS=$THREADS} "${pin[@]}" "$AROUTER" serve $flag --listen 127.0.0.1:$port \
      --data-dir "$dir/gw$i" --max-connections $(( STREAMS / GATEWAYS + 1000 )) \
      >>"$dir/arouter.log" 2>&1 & gw=$!; pids+=($gw); gws+=($gw)
    wait_http http://127.0.0.1:$port/ "$gw" || { echo "arouter did not start:"; cat "$dir/arouter.log"; exit 1; }
    urls+=(http://127.0.0.1:$port/v1/chat/completions)
  done
  label="ARouter $RUNTIME, $GATEWAYS process(es)"
fi
gateway_rss() {  # the gateway processes and their children (nginx workers), kB
  local total=0 p c
  for p in "${gws[@]}"; do
    total=$(( total + $(rss_kb "$p") ))
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do total=$(( total + $(rss_kb "$c") )); done
  done
  echo "$total"; }
idle=$(gateway_rss)
echo "streams.sh: $STREAMS streams through $label, a chunk every $PACE_MS ms, $CHUNKS chunks ($(( CHUNKS * PACE_MS / 1000 )) s), ramp $RAMP/s, fd limit $fds, load average $(cut -d' ' -f1-3 /proc/loadavg)"
( peak=0; while kill -0 "$gw" 2>/dev/null; do r=$(gateway_rss); [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" > "$dir/peak"; sleep 0.5; done ) & pids+=($!)
status=0
"$BENCHBIN" streams --url "$(IFS=,; echo "${urls[*]}")" --key "$KEY" \
  --streams "$STREAMS" --ramp-per-sec "$RAMP" --pace-ms "$PACE_MS" || status=$?
peak=$(cat "$dir/peak" 2>/dev/null || echo 0)
awk -v i="$idle" -v p="$peak" -v n="$STREAMS" -v g="$GATEWAYS" 'BEGIN {
  printf "gateway RSS (all %d process(es)): idle %.1f MB, peak %.1f MB, %.1f kB a stream over idle\n", g, i/1024, p/1024, (p-i)/n }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -m5 -i -E "error|warn" "$dir/arouter.log" || true
exit $status
