#!/usr/bin/env bash
# Two builds of Prism side by side, in the same minutes, with the nginx hop as the yardstick.
# On a machine whose speed moves from one minute to the next, two tables taken an hour apart
# cannot show a change of a few percent; this can. Both builds and the nginx hop run at once
# (one worker each) against one fake, and short wrk runs take turns: hop, other build, this
# build, round after round. Each round's ratio to the hop and this build's ratio to the other
# are per round, so a slow minute slows all three alike.
#
#   bash bench/compare.sh OTHER    OTHER: another checkout with its own build, e.g.
#                                  git worktree add /tmp/base REV && make -C /tmp/base build
#   BENCH_ROUNDS=5, BENCH_SECONDS=5 (each wrk run), BENCH_CONNECTIONS=64,
#   BENCH_SIZES="small large" (also: stream, the small request answered as 20 streamed events),
#   BENCH_COMPARE_MODELS="gpt-4o-mini claude-sonnet-4-5"
set -euo pipefail
source "$(dirname "$0")/lib.sh"

OTHER=$(cd "${1:?usage: bash bench/compare.sh OTHER_CHECKOUT}" && pwd)
[ -x "$OTHER/build/prism" ] || die "$OTHER/build/prism not found: build that checkout first"
ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-64}
SIZES=${BENCH_SIZES:-small large}
MODELS=${BENCH_COMPARE_MODELS:-gpt-4o-mini claude-sonnet-4-5}
rev() { git -C "$1" rev-parse --short HEAD 2>/dev/null || echo "$1"; }
BASE_REV=$(rev "$OTHER")
THIS_REV=$(rev "$ROOT")

check_tools nginx wrk curl
setup_work
read -r P_FAKE P_HOP P_BASE P_THIS P_BASE_S P_THIS_S <<<"$(free_ports 6)"
start_nginx fake "$BENCH_DIR/nginx-fake.conf" "$P_FAKE"
start_nginx hop "$BENCH_DIR/nginx-proxy.conf" "$P_HOP" "$P_FAKE" 1
PRISM_BIN=$OTHER/build/prism PRISM_CONFIG=$OTHER/config.yml \
  start_prism base "$P_BASE" 1 "http://127.0.0.1:$P_FAKE/v1" "http://127.0.0.1:$P_FAKE"
start_prism this "$P_THIS" 1 "http://127.0.0.1:$P_FAKE/v1" "http://127.0.0.1:$P_FAKE"
for m in $MODELS; do
  check_chat "base-$m" "http://127.0.0.1:$P_BASE/v1/chat/completions" "$m"
  check_chat "this-$m" "http://127.0.0.1:$P_THIS/v1/chat/completions" "$m"
done
# Streamed answers: one more Prism of each build, its providers pointed at the fake's streams.
if [[ " $SIZES " == *" stream "* ]]; then
  PRISM_BIN=$OTHER/build/prism PRISM_CONFIG=$OTHER/config.yml \
    start_prism base-s "$P_BASE_S" 1 "http://127.0.0.1:$P_FAKE/stream/v1" "http://127.0.0.1:$P_FAKE/stream"
  start_prism this-s "$P_THIS_S" 1 "http://127.0.0.1:$P_FAKE/stream/v1" "http://127.0.0.1:$P_FAKE/stream"
  for m in $MODELS; do
    check_stream "base-s-$m" "http://127.0.0.1:$P_BASE_S/v1/chat/completions" "$m"
    check_stream "this-s-$m" "http://127.0.0.1:$P_THIS_S/v1/chat/completions" "$m"
  done
fi

# rps SIZE MODEL PORT [PATH]: requests per second of one wrk run.
rps() {
  local out="$WORK/wrk-$1-$2-$3.txt" lua="post-$1.lua" stream=0
  [ "$1" = stream ] && lua=post-small.lua stream=1
  BENCH_MODEL=$2 BENCH_KEY=$GATEWAY_KEY BENCH_STREAM=$stream BENCH_PATH=${4:-/v1/chat/completions} \
    wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$BENCH_DIR/$lua" "http://127.0.0.1:$3" >"$out" 2>&1 || true
  local v
  v=$(jget "$(wrk_json "$out")" rps | cut -d. -f1)
  [ -n "$v" ] || die "wrk gave no result: $(tail -3 "$out")"
  echo "$v"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "| body, path | nginx hop | $BASE_REV | $THIS_REV | $THIS_REV / $BASE_REV, per round |"
echo "| --- | ---: | ---: | ---: | --- |"
for size in $SIZES; do
  for m in $MODELS; do
    hop=() base=() this=() per=()
    pb=$P_BASE pt=$P_THIS hop_path=/v1/chat/completions
    [ "$size" = stream ] && pb=$P_BASE_S pt=$P_THIS_S hop_path=/stream/v1/chat/completions
    for r in $(seq "$ROUNDS"); do
      hop+=("$(rps "$size" "$m" "$P_HOP" "$hop_path")")
      base+=("$(rps "$size" "$m" "$pb")")
      this+=("$(rps "$size" "$m" "$pt")")
      per+=("$(ratio "${this[-1]}" "${base[-1]}")")
      note "$size $m round $r: hop ${hop[-1]}, $BASE_REV ${base[-1]}, $THIS_REV ${this[-1]} req/s"
    done
    h=$(echo "${hop[*]}" | median) b=$(echo "${base[*]}" | median) t=$(echo "${this[*]}" | median)
    echo "| $size, $m | $h | $b ($(ratio "$b" "$h")x) | $t ($(ratio "$t" "$h")x) | ${per[*]} |"
  done
done
