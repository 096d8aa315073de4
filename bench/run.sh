#!/usr/bin/env bash
# Prism's benchmark (`make bench`): Prism against a fake provider, next to the fake hit
# directly, an nginx proxy_pass hop (the floor any proxy pays) and, when it installs, a
# peer gateway (Portkey's, from npm). Everything listens on 127.0.0.1, every process it
# starts is stopped at exit. Prints one Markdown table; docs/BENCHMARKS.md explains it.
#
# Expects build/prism (or PRISM_BIN), nginx, wrk and node (scripts/install-bench-deps.sh).
#   BENCH_SECONDS=10         length of each wrk measurement
#   BENCH_CONNECTIONS=64     wrk connections for the throughput rows
#   BENCH_MANY_CONNECTIONS=4000  wrk connections for the many-connections rows (0: skip;
#                            lowered to a third of the open-files limit when that is smaller)
#   BENCH_WARMUP=2           seconds of unrecorded load before each target
#   BENCH_ROUNDS=1           rounds of the throughput and latency rows, the targets taking
#                            turns; the table shows each row's median round (less noise
#                            from whatever else runs on the machine)
#   BENCH_STREAM_REQUESTS=50 streams per target in the TTFT / per-event rows
#   BENCH_STREAM_EVENTS=10   content events per stream, BENCH_STREAM_GAP_MS=20 apart
#   BENCH_STREAMS=10000      concurrent streams held for the memory row (over HTTP/2)
#   BENCH_H1_STREAMS=auto    concurrent HTTP/1.1 streams (auto: as many as the fd limit allows, <= 10000; 0: skip)
#   BENCH_HOLD_MS=5000       how long they are held open
#   BENCH_PORTKEY=1          also measure @portkey-ai/gateway (0: skip); installed once into
#                            BENCH_CACHE (default ~/.cache/prism-bench)
#   BENCH_NOLOG=1            also measure Prism with its access lines off in the unstreamed
#                            throughput rows, like for like with the floor (0: skip)
#   BENCH_PIN=1              also measure the one-connection rows with every process pinned to
#                            one CPU (0: skip): no cross-CPU wake-ups; see docs/BENCHMARKS.md
#   BENCH_SECTIONS=tput,c1,workers,streams,hold,soak   which parts to run (soak: bench/soak.sh,
#                            1,000,000 requests, VmRSS after 100k vs after 1M; SOAK_* knobs)
#   BENCH_OUT=FILE           also write the table there
#   BENCH_KEEP=1             keep the logs (the work directory is printed)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-64}
MANY=${BENCH_MANY_CONNECTIONS:-4000}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-1}
STREAM_REQS=${BENCH_STREAM_REQUESTS:-50}
STREAM_EVENTS=${BENCH_STREAM_EVENTS:-10}
STREAM_GAP=${BENCH_STREAM_GAP_MS:-20}
HOLD_STREAMS=${BENCH_STREAMS:-10000}
H1_STREAMS=${BENCH_H1_STREAMS:-auto}
HOLD_MS=${BENCH_HOLD_MS:-5000}
PORTKEY=${BENCH_PORTKEY:-1}
CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/prism-bench}
PIN=${BENCH_PIN:-1}
NOLOG=${BENCH_NOLOG:-1}
SECTIONS=",${BENCH_SECTIONS:-tput,c1,workers,streams,hold,soak},"
want() { [[ "$SECTIONS" == *",$1,"* ]]; }
WRK_PREFIX=()

check_tools nginx wrk node curl
setup_work
RESULTS="$WORK/results.jsonl"
machine_json >"$RESULTS"
note "work directory $WORK; ${SECS}s per measurement, $CONNS connections"

read -r P_FAKE P_NGINX P_PRISM P_PRISM_S P_PRISM_W2 P_SFAST P_SSLOW P_HOLD P_HOLD1 P_PORTKEY P_PRISM_SA P_NGINX_S P_PRISM_NL \
  <<<"$(free_ports 13)"

# --- the fakes and the baselines ---------------------------------------------------------
start_nginx fake "$BENCH_DIR/nginx-fake.conf" "$P_FAKE"
start_nginx nginx-hop "$BENCH_DIR/nginx-proxy.conf" "$P_NGINX" "$P_FAKE" 1
start_bg stream-fake node "$BENCH_DIR/stream-fake.mjs" --port "$P_SFAST" --gap-ms "$STREAM_GAP" --events "$STREAM_EVENTS"
SFAST_PID=$BG_PID
wait_port "$P_SFAST" 10 "$SFAST_PID" || die "stream fake did not start"
start_prism prism "$P_PRISM" 1 "http://127.0.0.1:$P_FAKE/v1" "http://127.0.0.1:$P_FAKE"
PRISM_PID=$BG_PID

check_chat direct "http://127.0.0.1:$P_FAKE/v1/chat/completions" gpt-4o-mini
check_chat nginx "http://127.0.0.1:$P_NGINX/v1/chat/completions" gpt-4o-mini
check_chat prism-openai "http://127.0.0.1:$P_PRISM/v1/chat/completions" gpt-4o-mini
check_chat prism-claude "http://127.0.0.1:$P_PRISM/v1/chat/completions" claude-sonnet-4-5
# Streamed answers at full speed: a second Prism whose providers get the fake's streamed answers
# (20 text events in one response, /stream/v1); the direct and nginx rows ask for them by path.
if want tput; then
  start_prism prism-sa "$P_PRISM_SA" 1 "http://127.0.0.1:$P_FAKE/stream/v1" "http://127.0.0.1:$P_FAKE/stream"
  check_stream direct "http://127.0.0.1:$P_FAKE/stream/v1/chat/completions" gpt-4o-mini
  check_stream nginx "http://127.0.0.1:$P_NGINX/stream/v1/chat/completions" gpt-4o-mini
  check_stream prism-openai "http://127.0.0.1:$P_PRISM_SA/v1/chat/completions" gpt-4o-mini
  check_stream prism-claude "http://127.0.0.1:$P_PRISM_SA/v1/chat/completions" claude-sonnet-4-5
fi

# Like for like with the floor, which writes no access log: a third Prism with its access
# lines off (server.log.access: false), for the unstreamed throughput rows.
if want tput && [ "$NOLOG" = 1 ]; then
  BENCH_ACCESS_LOG=0 start_prism prism-nolog "$P_PRISM_NL" 1 "http://127.0.0.1:$P_FAKE/v1" "http://127.0.0.1:$P_FAKE"
  check_chat prism-nolog "http://127.0.0.1:$P_PRISM_NL/v1/chat/completions" claude-sonnet-4-5
fi

# --- the peer gateway (optional) -----------------------------------------------------------
PORTKEY_URL=
PORTKEY_HDR=(-H "x-portkey-provider: openai" -H "x-portkey-custom-host: http://127.0.0.1:$P_FAKE/v1")
if [ "$PORTKEY" = 1 ]; then
  pk_dir="$CACHE/portkey"
  pk_js="$pk_dir/node_modules/@portkey-ai/gateway/build/start-server.js"
  if [ ! -f "$pk_js" ]; then
    note "installing @portkey-ai/gateway into $pk_dir (once)"
    mkdir -p "$pk_dir"
    timeout 180 npm install --prefix "$pk_dir" --no-audit --no-fund --loglevel=error @portkey-ai/gateway \
      >"$WORK/portkey-install.log" 2>&1 || true
  fi
  if [ -f "$pk_js" ]; then
    # It listens on every interface (its server has no host option), for the seconds it runs.
    start_bg portkey env NODE_ENV=production node "$pk_js" --port="$P_PORTKEY" --headless
    PK_PID=$BG_PID
    if wait_port "$P_PORTKEY" 30 "$BG_PID" &&
      (check_chat portkey "http://127.0.0.1:$P_PORTKEY/v1/chat/completions" gpt-4o-mini "${PORTKEY_HDR[@]}") 2>"$WORK/portkey-check.log"; then
      PORTKEY_URL="http://127.0.0.1:$P_PORTKEY"
      PORTKEY_VERSION=$(node -p "require('$pk_dir/node_modules/@portkey-ai/gateway/package.json').version")
    else
      echo "{\"kind\":\"skip\",\"target\":\"portkey\",\"reason\":\"started but did not answer: $(tail -c 150 "$WORK/portkey-check.log" | tr -d '"\n')\"}" >>"$RESULTS"
      stop_pid "$PK_PID"
    fi
  else
    echo '{"kind":"skip","target":"portkey","reason":"npm install @portkey-ai/gateway failed or timed out"}' >>"$RESULTS"
  fi
else
  echo '{"kind":"skip","target":"portkey","reason":"BENCH_PORTKEY=0"}' >>"$RESULTS"
fi

# run_wrk GROUP TARGET URL SCRIPT THREADS CONNS MODEL [wrk args...]
run_wrk() {
  local group=$1 target=$2 url=$3 script=$4 threads=$5 conns=$6 model=$7
  shift 7
  local out="$WORK/wrk-$group-$target-$ROUND.txt"
  if [ "$WARMUP" -gt 0 ]; then
    BENCH_MODEL=$model BENCH_KEY=$GATEWAY_KEY "${WRK_PREFIX[@]+"${WRK_PREFIX[@]}"}" wrk -t"$threads" -c"$conns" -d"${WARMUP}s" -s "$BENCH_DIR/$script" "$@" "$url" >/dev/null 2>&1 || true
  fi
  local m1 m2 foreign json
  cpu_mark
  m1=$CPU_MARK
  BENCH_MODEL=$model BENCH_KEY=$GATEWAY_KEY "${WRK_PREFIX[@]+"${WRK_PREFIX[@]}"}" wrk -t"$threads" -c"$conns" -d"${SECS}s" --timeout 10s --latency \
    -s "$BENCH_DIR/$script" "$@" "$url" >"$out" 2>&1 || true
  cpu_mark
  m2=$CPU_MARK
  foreign=$(foreign_cpu "$m1" "$m2" "$SECS")
  json=$(wrk_json "$out")
  [ -n "$json" ] || die "wrk gave no result for $group/$target: $(tail -3 "$out")"
  echo "{\"kind\":\"wrk\",\"group\":\"$group\",\"target\":\"$target\",\"round\":$ROUND,\"threads\":$threads,\"conns\":$conns,\"foreign_cpu\":$foreign,\"wrk\":$json}" >>"$RESULTS"
  note "$group $target (round $ROUND): $(echo "$json" | sed 's/.*"rps":\([0-9.]*\).*"p50_us":\([0-9]*\).*"p99_us":\([0-9]*\).*/\1 req\/s, p50 \2 us, p99 \3 us/'), other processes ${foreign}% CPU"
}

# --- throughput: one wrk thread, CONNS connections, Prism with one worker ---------------
# --- added latency: one connection, one request at a time ---------------------------------
# With BENCH_PIN, the one-connection rows again with wrk, the fakes, nginx and Prism all on
# CPU 0: a request then costs what its processes compute, without the cross-CPU wake-ups
# (an inter-processor interrupt, expensive in a VM) that each hop costs otherwise.
# pin_all MASK: sets the CPU affinity of every thread of every process we started.
pin_all() {
  local pid p
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    kill -0 "$pid" 2>/dev/null || continue
    for p in $pid $(pgrep -P "$pid" 2>/dev/null); do taskset -a -p "$1" "$p" >/dev/null 2>&1 || true; done
  done
}
c1_rows() {
  local group=$1
  run_wrk "$group" direct "http://127.0.0.1:$P_FAKE" post-small.lua 1 1 gpt-4o-mini
  run_wrk "$group" nginx "http://127.0.0.1:$P_NGINX" post-small.lua 1 1 gpt-4o-mini
  run_wrk "$group" prism-openai "http://127.0.0.1:$P_PRISM" post-small.lua 1 1 gpt-4o-mini
  run_wrk "$group" prism-claude "http://127.0.0.1:$P_PRISM" post-small.lua 1 1 claude-sonnet-4-5
  if [ -n "$PORTKEY_URL" ]; then
    run_wrk "$group" portkey "$PORTKEY_URL" post-small.lua 1 1 gpt-4o-mini "${PORTKEY_HDR[@]}"
  fi
}
ROUND=1
while [ "$ROUND" -le "$ROUNDS" ]; do
  if want tput; then
    for size in small large; do
      run_wrk "tput-$size" direct "http://127.0.0.1:$P_FAKE" "post-$size.lua" 1 "$CONNS" gpt-4o-mini
      run_wrk "tput-$size" nginx "http://127.0.0.1:$P_NGINX" "post-$size.lua" 1 "$CONNS" gpt-4o-mini
      run_wrk "tput-$size" prism-openai "http://127.0.0.1:$P_PRISM" "post-$size.lua" 1 "$CONNS" gpt-4o-mini
      run_wrk "tput-$size" prism-claude "http://127.0.0.1:$P_PRISM" "post-$size.lua" 1 "$CONNS" claude-sonnet-4-5
      if [ "$NOLOG" = 1 ]; then
        run_wrk "tput-$size" prism-openai-nolog "http://127.0.0.1:$P_PRISM_NL" "post-$size.lua" 1 "$CONNS" gpt-4o-mini
        run_wrk "tput-$size" prism-claude-nolog "http://127.0.0.1:$P_PRISM_NL" "post-$size.lua" 1 "$CONNS" claude-sonnet-4-5
      fi
      if [ -n "$PORTKEY_URL" ]; then
        run_wrk "tput-$size" portkey "$PORTKEY_URL" "post-$size.lua" 1 "$CONNS" gpt-4o-mini "${PORTKEY_HDR[@]}"
      fi
    done
    export BENCH_STREAM=1 BENCH_PATH=/stream/v1/chat/completions
    run_wrk tput-stream direct "http://127.0.0.1:$P_FAKE" post-small.lua 1 "$CONNS" gpt-4o-mini
    run_wrk tput-stream nginx "http://127.0.0.1:$P_NGINX" post-small.lua 1 "$CONNS" gpt-4o-mini
    BENCH_PATH=/v1/chat/completions
    run_wrk tput-stream prism-openai "http://127.0.0.1:$P_PRISM_SA" post-small.lua 1 "$CONNS" gpt-4o-mini
    run_wrk tput-stream prism-claude "http://127.0.0.1:$P_PRISM_SA" post-small.lua 1 "$CONNS" claude-sonnet-4-5
    unset BENCH_STREAM BENCH_PATH
    # Thousands of clients at once: Prism keeps an upstream connection per request in flight, the
    # hop 64 idle ones (keepalive 64). wrk and the targets each need a descriptor per connection,
    # Prism two.
    many=$MANY
    [ "$many" -le $(($(ulimit -n) / 3)) ] || many=$(($(ulimit -n) / 3))
    if [ "$many" -gt "$CONNS" ]; then
      run_wrk tput-many nginx "http://127.0.0.1:$P_NGINX" post-small.lua 1 "$many" gpt-4o-mini
      run_wrk tput-many prism-openai "http://127.0.0.1:$P_PRISM" post-small.lua 1 "$many" gpt-4o-mini
      run_wrk tput-many prism-claude "http://127.0.0.1:$P_PRISM" post-small.lua 1 "$many" claude-sonnet-4-5
    fi
  fi
  if want c1; then
    c1_rows c1
    if [ "$PIN" = 1 ] && command -v taskset >/dev/null 2>&1; then
      pin_all 1
      WRK_PREFIX=(taskset 1)
      c1_rows c1-pinned
      WRK_PREFIX=()
      pin_all "$(printf '%x' $(((1 << $(nproc)) - 1)))"
    fi
  fi
  ROUND=$((ROUND + 1))
done
[ -n "$PORTKEY_URL" ] && stop_pid "$PK_PID"

# --- workers 1 vs 2 -------------------------------------------------------------------------
if want workers; then
start_prism prism-w2 "$P_PRISM_W2" 2 "http://127.0.0.1:$P_FAKE/v1" "http://127.0.0.1:$P_FAKE"
W2_PID=$BG_PID
check_chat prism-w2 "http://127.0.0.1:$P_PRISM_W2/v1/chat/completions" gpt-4o-mini
ROUND=1
while [ "$ROUND" -le "$ROUNDS" ]; do
  for t in 1 2; do
    run_wrk "workers-t$t" prism-w1 "http://127.0.0.1:$P_PRISM" post-small.lua "$t" "$CONNS" gpt-4o-mini
    run_wrk "workers-t$t" prism-w2 "http://127.0.0.1:$P_PRISM_W2" post-small.lua "$t" "$CONNS" gpt-4o-mini
  done
  ROUND=$((ROUND + 1))
done
stop_pid "$W2_PID"
fi
stop_pid "$PRISM_PID"

# --- streams: time to first token and per-event delay ---------------------------------------
if want streams; then
start_prism prism-stream "$P_PRISM_S" 1 "http://127.0.0.1:$P_SFAST/v1" "http://127.0.0.1:$P_SFAST"
PS_PID=$BG_PID
# The floor for streams: an nginx hop that relays each event as it comes (proxy_buffering off).
NGINX_BUFFERING=off start_nginx nginx-stream-hop "$BENCH_DIR/nginx-proxy.conf" "$P_NGINX_S" "$P_SFAST" 1
NS_PID=$BG_PID
stream() {
  local target=$1
  shift
  local out
  out=$(node "$BENCH_DIR/stream-client.mjs" latency --requests "$STREAM_REQS" --warmup 5 --key "$GATEWAY_KEY" "$@") ||
    die "stream client failed for $target"
  echo "{\"kind\":\"stream\",\"target\":\"$target\",\"events\":$STREAM_EVENTS,\"gap_ms\":$STREAM_GAP,\"r\":$out}" >>"$RESULTS"
  note "stream $target: $(echo "$out" | sed 's/.*"ttft_us":{[^}]*"p50":\([0-9]*\).*"delay_us":{[^}]*"p50":\([0-9]*\).*/TTFT p50 \1 us, event delay p50 \2 us/')"
}
stream direct-openai --url "http://127.0.0.1:$P_SFAST/v1/chat/completions" --format openai --model gpt-4o-mini
stream nginx-openai --url "http://127.0.0.1:$P_NGINX_S/v1/chat/completions" --format openai --model gpt-4o-mini
stream prism-openai --url "http://127.0.0.1:$P_PRISM_S/v1/chat/completions" --format openai --model gpt-4o-mini
stream direct-anthropic --url "http://127.0.0.1:$P_SFAST/v1/messages" --format anthropic --model claude-sonnet-4-5
stream nginx-anthropic --url "http://127.0.0.1:$P_NGINX_S/v1/messages" --format anthropic --model claude-sonnet-4-5
stream prism-claude --url "http://127.0.0.1:$P_PRISM_S/v1/chat/completions" --format openai --model claude-sonnet-4-5
stop_pid "$PS_PID"
stop_pid "$NS_PID"
fi
stop_pid "$SFAST_PID"

# --- memory with many concurrent open streams -------------------------------------------------
# A slow fake: one event a second until the client hangs up. A fresh Prism for each run.
if want hold; then
start_bg stream-slow node "$BENCH_DIR/stream-fake.mjs" --port "$P_SSLOW" --gap-ms 1000 --events 0
SSLOW_PID=$BG_PID
wait_port "$P_SSLOW" 10 "$SSLOW_PID" || die "slow stream fake did not start"
hold() {
  local target=$1 port=$2 proto=$3 n=$4
  start_prism "prism-$target" "$port" 1 "http://127.0.0.1:$P_SSLOW/v1" "http://127.0.0.1:$P_SSLOW"
  local pid=$BG_PID out
  check_chat "prism-$target" "http://127.0.0.1:$port/v1/chat/completions" gpt-4o-mini
  out=$(node "$BENCH_DIR/stream-client.mjs" hold --base "http://127.0.0.1:$port" --proto "$proto" --streams "$n" \
    --hold-ms "$HOLD_MS" --pid "$pid" --key "$GATEWAY_KEY") || die "hold client failed for $target"
  echo "{\"kind\":\"hold\",\"target\":\"$target\",\"nofile\":$(ulimit -n),\"r\":$out}" >>"$RESULTS"
  note "hold $target: $out"
  stop_pid "$pid"
}
hold h2 "$P_HOLD" h2 "$HOLD_STREAMS"
if [ "$H1_STREAMS" = auto ]; then
  # Prism needs two descriptors per HTTP/1.1 stream (client and upstream) plus a few.
  H1_STREAMS=$((($(ulimit -n) - 200) / 2))
  [ "$H1_STREAMS" -gt 10000 ] && H1_STREAMS=10000
fi
[ "$H1_STREAMS" -gt 0 ] && hold h1 "$P_HOLD1" h1 "$H1_STREAMS"
fi

# --- memory after 100k and after 1M requests -----------------------------------------------------
# bench/soak.sh with its own fake and a fresh Prism; it appends its outcome to the results even
# when the goal is missed (its exit status), and says nothing there when it could not run.
if want soak; then
  note "soak: ${SOAK_REQUESTS:-1000000} requests through a fresh Prism (log: $WORK/soak.log)"
  if ! SOAK_RESULT="$RESULTS" bash "$BENCH_DIR/soak.sh" >"$WORK/soak.log" 2>&1; then
    grep -q '"kind":"soak"' "$RESULTS" ||
      echo "{\"kind\":\"skip\",\"target\":\"soak\",\"reason\":\"$(tail -c 150 "$WORK/soak.log" | tr -d '"\n')\"}" >>"$RESULTS"
  fi
  note "soak: $(grep -E '^VmRSS after' "$WORK/soak.log" || tail -1 "$WORK/soak.log")"
fi

# --- the table --------------------------------------------------------------------------------
table=$(BENCH_SECONDS=$SECS BENCH_ROUNDS=$ROUNDS node "$BENCH_DIR/report.mjs" "$RESULTS" "${PORTKEY_VERSION:-}")
echo "$table"
if [ -n "${BENCH_OUT:-}" ]; then
  echo "$table" >"$BENCH_OUT"
  cp "$RESULTS" "${BENCH_OUT%.*}.jsonl"
fi
