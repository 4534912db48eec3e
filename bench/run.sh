#!/usr/bin/env bash
# Gateway overhead in one run, with the shared rig (../shared/bench): wrk
# against its nginx mock, `direct` (wrk -> mock) and `nginx` (proxy_pass) as
# baselines, then ARouter once per runtime; non-stream and stream, c64 and c1.
# Adds what the rig does not report: ARouter's idle RSS before any load (its
# peak RSS under load is the rig's column). Prints the table and the ratios.
#   bench/run.sh                                   # RUNTIMES="smol glommio", 10 s per row
#   RUNTIMES=smol DURATION=30s bench/run.sh        # any run_peers.sh knob passes through
# A runtime this build does not have is skipped with a line saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
need_rig
RUNTIMES=${RUNTIMES:-"smol glommio"}
build_release
export RESULTS=$BENCH_OUT/RESULTS.md
stamp=$(date +%Y%m%d-%H%M%S)
labels=$BENCH_OUT/labels-$stamp.txt; : > "$labels"
run_rig() {  # run_rig LABEL PEER...: rows appended to RESULTS, remembered under LABEL
  local label=$1 before; shift
  before=$( [ -f "$RESULTS" ] && wc -l < "$RESULTS" || echo 0)
  RAW=$BENCH_OUT/raw/$stamp-$label "$RIG/run_peers.sh" "$@" || echo "rig run for $label failed" >&2
  tail -n +"$((before + 1))" "$RESULTS" | grep '^| 20' | sed "s/^| \([^|]*\) | [^|]* |/| \1 | $label |/" >> "$labels"
}
idle_rss() {  # idle_rss FLAGS -> MB of a fresh arouter, ready and 2 s idle, never loaded
  local data pid kb; data=$(mktemp -d /tmp/arouter-bench-idle.XXXX)
  AROUTER_MASTER_KEY=$KEY OPENAI_API_KEY=sk-mock OPENAI_BASE_URL=http://127.0.0.1:18080/v1 RUST_LOG=warn \
    "$AROUTER" serve $1 --listen 127.0.0.1:18099 --data-dir "$data" >/dev/null 2>&1 & pid=$!
  wait_http http://127.0.0.1:18099/ "$pid" && sleep 2; kb=$(rss_kb "$pid")
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"
  awk -v k="$kb" 'BEGIN{printf "%.1f", k/1024}'; }

run_rig direct direct
run_rig nginx nginx
idle=""
for rt in $RUNTIMES; do
  if ! flag=$(runtime_flag "$rt"); then echo "skip runtime $rt: $flag" | tee -a "$labels.skipped" >&2; continue; fi
  idle="$idle arouter-$rt=$(idle_rss "$flag")"
  data=$(mktemp -d /tmp/arouter-bench-data.XXXX)
  CANDIDATE_CMD="env AROUTER_MASTER_KEY=$KEY RUST_LOG=warn $AROUTER serve $flag --listen \$LISTEN_ADDR --data-dir $data" \
    run_rig "arouter-$rt" candidate
  rm -rf "$data"
done

{ echo "### bench/run.sh $stamp, host $(hostname), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| peer | mode | conns | RPS | p50 ms | p99 ms | errors | peak RSS MB | CPU cores | sanity |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  awk -F'|' '{printf "|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", $3,$4,$5,$6,$7,$8,$10,$11,$12,$14}' "$labels"
  [ -f "$labels.skipped" ] && sed 's/^/- /' "$labels.skipped"
  echo
  echo "Idle RSS (fresh process, ready, no load yet), MB:$idle"
  echo
  echo "Ratios (RPS x nginx / x direct; p99 x nginx; added p50/p99 over direct, ms):"
  awk -F'|' '
    { p=$3; m=$4; c=$5; gsub(/ /,"",p); gsub(/ /,"",m); gsub(/ /,"",c)
      rps[p,m,c]=$6+0; p50[p,m,c]=$7+0; p99[p,m,c]=$8+0; if (p ~ /^arouter/) { rt[p]=1; seen[m,c]=1 } }
    END { for (r in rt) for (k in seen) { split(k, a, SUBSEP); m=a[1]; c=a[2]; if (!((r,m,c) in rps)) continue
            d=rps["direct",m,c]; n=rps["nginx",m,c]; x=rps[r,m,c]
            printf "- %s %s c%s: %.2fx nginx, %.2fx direct; p99 %.2fx nginx; +%.3f / +%.3f ms over direct\n", r, m, c,
              (n ? x/n : 0), (d ? x/d : 0), (p99["nginx",m,c] ? p99[r,m,c]/p99["nginx",m,c] : 0),
              p50[r,m,c]-p50["direct",m,c], p99[r,m,c]-p99["direct",m,c] } }' "$labels" | sort
} | tee "$BENCH_OUT/last-run.md"
