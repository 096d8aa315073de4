#!/usr/bin/env bash
# Prism's soak test (`make soak`): SOAK_REQUESTS (1,000,000) requests through one Prism,
# in chunks of SOAK_CHUNK (100,000), reading its resident memory (VmRSS) after each chunk.
# Passes when VmRSS after the last chunk is within 5% of VmRSS after the first.
# Bounded: stops after SOAK_MAX_SECONDS (900) whatever the count, and says so.
#
#   SOAK_MODELS=gpt-4o-mini,claude-sonnet-4-5   requests alternate between these models
#                                                (both paths: pass-through and translation)
#   SOAK_CONNECTIONS=64, SOAK_WORKERS=1, SOAK_BODY=small|large|stream (stream: the small
#   request answered as 20 streamed events, bench/nginx-fake.conf)
#   SOAK_RESULT=FILE   also append the outcome there as one JSON line (bench/run.sh's
#                      `soak` section puts it in its table)
# Expects build/prism (or PRISM_BIN), nginx, wrk and node (scripts/install-bench-deps.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

TOTAL=${SOAK_REQUESTS:-1000000}
CHUNK=${SOAK_CHUNK:-100000}
MAX_SECONDS=${SOAK_MAX_SECONDS:-900}
MODELS=${SOAK_MODELS:-gpt-4o-mini,claude-sonnet-4-5}
CONNS=${SOAK_CONNECTIONS:-64}
WORKERS=${SOAK_WORKERS:-1}
BODY=${SOAK_BODY:-small}
LUA=post-$BODY.lua PREFIX=""
if [ "$BODY" = stream ]; then
  LUA=post-small.lua PREFIX=/stream
  export BENCH_STREAM=1
fi

check_tools nginx wrk node curl
setup_work
read -r P_FAKE P_PRISM <<<"$(free_ports 2)"
start_nginx fake "$BENCH_DIR/nginx-fake.conf" "$P_FAKE"
start_prism prism "$P_PRISM" "$WORKERS" "http://127.0.0.1:$P_FAKE$PREFIX/v1" "http://127.0.0.1:$P_FAKE$PREFIX"
PRISM_PID=$BG_PID
check=check_chat
[ "$BODY" = stream ] && check=check_stream
for m in ${MODELS//,/ }; do $check "prism-$m" "http://127.0.0.1:$P_PRISM/v1/chat/completions" "$m"; done

echo "soak: $TOTAL requests ($MODELS, $BODY body) through Prism ($WORKERS worker(s)), $CONNS connections, chunks of $CHUNK, at most ${MAX_SECONDS}s"
echo "VmRSS at start: $(rss_kib "$PRISM_PID") KiB"
# A 1 s warm-up (counted) tells the rate, so that each chunk's wrk -d can be sized to end
# soon after its last request (wrk waits out -d even when its threads stopped early). It stops
# at half a chunk, so that the first reading still comes at exactly one chunk of requests
# however fast the machine is.
BENCH_MODELS=$MODELS BENCH_KEY=$GATEWAY_KEY BENCH_STOP_AFTER=$((CHUNK / 2)) \
  wrk -t1 -c"$CONNS" -d1s --timeout 10s -s "$BENCH_DIR/$LUA" \
  "http://127.0.0.1:$P_PRISM" >"$WORK/wrk-warmup.txt" 2>&1 || true
json=$(wrk_json "$WORK/wrk-warmup.txt")
[ -n "$json" ] || die "wrk gave no result: $(tail -3 "$WORK/wrk-warmup.txt")"
rate=$(jget "$json" rps | cut -d. -f1)
[ "${rate:-0}" -ge 100 ] || rate=100
warm=$(jget "$json" requests)
echo "warm-up: $warm requests in 1 s ($rate req/s); VmRSS $(rss_kib "$PRISM_PID") KiB"
printf '| requests so far | chunk req/s | chunk p99 | errors | VmRSS (KiB) |\n| ---: | ---: | ---: | ---: | ---: |\n'
done_reqs=$warm
start=$((SECONDS - 1))
first_rss=
first_at=
last_rss=
errors=0
while [ "$done_reqs" -lt "$TOTAL" ]; do
  left=$((MAX_SECONDS - (SECONDS - start)))
  if [ "$left" -le 0 ]; then
    echo "soak: stopped by the time bound (${MAX_SECONDS}s) after $done_reqs requests"
    break
  fi
  n=$((TOTAL - done_reqs < CHUNK ? TOTAL - done_reqs : CHUNK))
  # The first chunk ends at exactly CHUNK requests, the reference point.
  [ -z "$first_rss" ] && [ "$CHUNK" -gt "$done_reqs" ] && n=$((CHUNK - done_reqs))
  out="$WORK/wrk-$done_reqs.txt"
  d=$((n * 5 / 4 / rate + 2))
  [ "$d" -gt "$left" ] && d=$left
  BENCH_MODELS=$MODELS BENCH_KEY=$GATEWAY_KEY BENCH_STOP_AFTER=$n \
    wrk -t1 -c"$CONNS" -d"${d}s" --timeout 10s -s "$BENCH_DIR/$LUA" "http://127.0.0.1:$P_PRISM" >"$out" 2>&1 || true
  json=$(wrk_json "$out")
  [ -n "$json" ] || die "wrk gave no result: $(tail -3 "$out")"
  got=$(jget "$json" requests)
  err=0
  for k in err_connect err_read err_write err_status err_timeout; do err=$((err + $(jget "$json" $k))); done
  [ "$got" -gt 0 ] || die "no request completed in the last chunk"
  rate=$(jget "$json" rps | cut -d. -f1)
  [ "${rate:-0}" -ge 100 ] || rate=100
  done_reqs=$((done_reqs + got))
  errors=$((errors + err))
  sleep 1 # let in-flight work settle before reading memory
  kill -0 "$PRISM_PID" 2>/dev/null || die "prism exited: $(tail -5 "$WORK/prism.log")"
  rss=$(rss_kib "$PRISM_PID")
  if [ -z "$first_rss" ]; then first_rss=$rss; first_at=$done_reqs; fi
  last_rss=$rss
  printf '| %s | %s | %s | %s | %s |\n' "$done_reqs" "$(jget "$json" rps | cut -d. -f1)" "$(jget "$json" p99_us) µs" "$err" "$rss"
done
elapsed=$((SECONDS - start))
[ -n "$first_rss" ] || die "SOAK_REQUESTS ($TOTAL) is below what the warm-up alone sent ($warm): nothing to compare"
echo
echo "soak: $done_reqs requests in ${elapsed}s of wall time (each chunk ends with a short idle tail), $errors errors"
ratio=$(awk -v a="$first_rss" -v b="$last_rss" 'BEGIN { printf "%.3f", b / a }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.05 && r >= 0.95) ? "met" : "NOT met" }')
echo "VmRSS after $first_at requests: $first_rss KiB; after $done_reqs requests: $last_rss KiB; ratio $ratio (goal: within 5%: $verdict)"
if [ -n "${SOAK_RESULT:-}" ]; then
  printf '{"kind":"soak","requests":%s,"target_requests":%s,"seconds":%s,"errors":%s,"conns":%s,"workers":%s,"body":"%s","models":"%s","first_at":%s,"first_rss_kib":%s,"last_rss_kib":%s,"ratio":%s}\n' \
    "$done_reqs" "$TOTAL" "$elapsed" "$errors" "$CONNS" "$WORKERS" "$BODY" "$MODELS" "$first_at" "$first_rss" "$last_rss" "$ratio" >>"$SOAK_RESULT"
fi
grep -E ' (warn|error) ' "$WORK/prism.log" | grep -v 'no gateway API keys' | head -5 || true
[ "$verdict" = met ] && [ "$done_reqs" -ge "$TOTAL" ]
