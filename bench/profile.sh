#!/usr/bin/env bash
# Where Prism spends its CPU under load: perf record on a one-worker Prism while wrk drives
# it against the nginx fake, then the top functions (self time).
#
#   bash bench/profile.sh [MODEL] [small|large]     (default: gpt-4o-mini small)
#   BENCH_SECONDS=10 (length of the recording), BENCH_CONNECTIONS=64, BENCH_TOP=30,
#   BENCH_CALLGRAPH=1 (also record call graphs, --call-graph dwarf; slower),
#   BENCH_KEEP=1 keeps perf.data in the work directory.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

MODEL=${1:-gpt-4o-mini}
SIZE=${2:-small}
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-64}
TOP=${BENCH_TOP:-30}

check_tools nginx wrk node curl perf
setup_work
read -r P_FAKE P_PRISM <<<"$(free_ports 2)"
start_nginx fake "$BENCH_DIR/nginx-fake.conf" "$P_FAKE"
start_prism prism "$P_PRISM" 1 "http://127.0.0.1:$P_FAKE/v1" "http://127.0.0.1:$P_FAKE"
PRISM_PID=$BG_PID
check_chat prism "http://127.0.0.1:$P_PRISM/v1/chat/completions" "$MODEL"

BENCH_MODEL=$MODEL BENCH_KEY=$GATEWAY_KEY wrk -t1 -c"$CONNS" -d2s -s "$BENCH_DIR/post-$SIZE.lua" "http://127.0.0.1:$P_PRISM" >/dev/null
graph=()
[ "${BENCH_CALLGRAPH:-0}" = 1 ] && graph=(--call-graph dwarf)
start_bg perf perf record -q -F 999 "${graph[@]}" -o "$WORK/perf.data" -p "$PRISM_PID"
PERF_PID=$BG_PID
sleep 0.5
BENCH_MODEL=$MODEL BENCH_KEY=$GATEWAY_KEY wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$BENCH_DIR/post-$SIZE.lua" "http://127.0.0.1:$P_PRISM" | grep WRK_RESULT
kill -INT "$PERF_PID"
wait "$PERF_PID" 2>/dev/null || true
echo "== top $TOP by self time ($MODEL, $SIZE body, ${SECS}s, $CONNS connections, one worker)"
perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
  grep -v '^#' | grep -v '^$' | head -"$TOP" || true
echo "== by shared object"
perf report -i "$WORK/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15 || true
