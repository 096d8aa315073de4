#!/usr/bin/env bash
# Where Prism spends its time under load: a one-worker Prism driven by wrk against the nginx
# fake, profiled with perf (CPU time, default) or callgrind (instructions per request).
#
#   bash bench/profile.sh [MODEL] [small|large|stream]     (default: gpt-4o-mini small)
#   stream: the small request with "stream": true, answered by the fake's streamed answer
#   (20 text events in one response, bench/nginx-fake.conf), so the count is what a streamed
#   answer costs to relay (OpenAI) or translate (Claude), every event included.
#   BENCH_PROFILER=perf|callgrind, BENCH_TOP=30, BENCH_KEEP=1 keeps perf.data / the callgrind
#   files in the work directory.
#   perf: BENCH_SECONDS=10, BENCH_CONNECTIONS=64, BENCH_CALLGRAPH=1 (also record call graphs,
#   --call-graph dwarf; slower).
#   callgrind: BENCH_SECONDS=8, BENCH_CONNECTIONS=4. Instruction counts hardly move with the
#   machine's load, so they are the number to compare two builds by on a noisy machine. They
#   are the worker thread's, in user space (Prism, its plugins and its libraries, not the
#   kernel), divided by every request it answered.
#   strace: BENCH_SECONDS=3, BENCH_CONNECTIONS=4. System calls per request, by call, counted
#   with strace -c attached for one load run (strace slows the process; the counts do not move).
#   cpu: BENCH_SECONDS=10, BENCH_CONNECTIONS=64. CPU time per request, user and system, from
#   the process's utime and stime around one load run, and how busy that kept it (near 100%:
#   the process was what limited the rate, so its time per request is what the rate costs),
#   and what the same requests cost the fake provider and wrk, which share the two CPUs.
#   BENCH_TARGET=nginx (callgrind, strace or cpu) measures the nginx proxy_pass hop the same
#   way, one worker in a single process: the floor's own instructions, system calls or CPU time
#   per request.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

MODEL=${1:-gpt-4o-mini}
SIZE=${2:-small}
LUA=post-$SIZE.lua PREFIX=""
case "$SIZE" in
  small | large) ;;
  stream)
    LUA=post-small.lua PREFIX=/stream
    export BENCH_STREAM=1
    ;;
  *) die "the body is small, large or stream, not $SIZE" ;;
esac
PROFILER=${BENCH_PROFILER:-perf}
TOP=${BENCH_TOP:-30}
case "$PROFILER" in
  perf) SECS=${BENCH_SECONDS:-10} CONNS=${BENCH_CONNECTIONS:-64} ;;
  callgrind) SECS=${BENCH_SECONDS:-8} CONNS=${BENCH_CONNECTIONS:-4} ;;
  strace) SECS=${BENCH_SECONDS:-3} CONNS=${BENCH_CONNECTIONS:-4} ;;
  cpu) SECS=${BENCH_SECONDS:-10} CONNS=${BENCH_CONNECTIONS:-64} ;;
  *) die "BENCH_PROFILER is perf, callgrind, strace or cpu, not $PROFILER" ;;
esac

case "$PROFILER" in
  perf) check_tools nginx wrk curl perf ;;
  strace) check_tools nginx wrk curl strace ;;
  cpu) check_tools nginx wrk curl getconf ;;
  *) check_tools nginx wrk curl valgrind callgrind_annotate ;;
esac
TARGET=${BENCH_TARGET:-prism}
case "$TARGET" in
  prism) ;;
  nginx) [ "$PROFILER" != perf ] || die "BENCH_TARGET=nginx is measured with BENCH_PROFILER=callgrind, strace or cpu" ;;
  *) die "BENCH_TARGET is prism or nginx, not $TARGET" ;;
esac
setup_work
read -r P_FAKE P_PRISM <<<"$(free_ports 2)"
start_nginx fake "$BENCH_DIR/nginx-fake.conf" "$P_FAKE"
FAKE_PID=$BG_PID
if [ "$TARGET" = nginx ]; then
  wrapper=""
  [ "$PROFILER" = callgrind ] && wrapper="valgrind --tool=callgrind --callgrind-out-file=$WORK/cg.out-nginx"
  NGINX_WRAPPER="$wrapper" NGINX_GLOBALS="master_process off;" \
    start_nginx hop "$BENCH_DIR/nginx-proxy.conf" "$P_PRISM" "$P_FAKE" 1
else
  [ "$PROFILER" = callgrind ] &&
    PRISM_WRAPPER="valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=$WORK/cg.out"
  start_prism prism "$P_PRISM" 1 "http://127.0.0.1:$P_FAKE$PREFIX/v1" "http://127.0.0.1:$P_FAKE$PREFIX"
fi
PRISM_PID=$BG_PID
# The nginx hop passes the path on as it is: it asks the fake's streamed answer itself.
BENCH_PATH=/v1/chat/completions
[ "$TARGET" = nginx ] && BENCH_PATH=$PREFIX/v1/chat/completions
export BENCH_PATH
if [ "$SIZE" = stream ]; then
  check_stream "$TARGET" "http://127.0.0.1:$P_PRISM$BENCH_PATH" "$MODEL"
else
  check_chat "$TARGET" "http://127.0.0.1:$P_PRISM$BENCH_PATH" "$MODEL"
fi

load() {
  BENCH_MODEL=$MODEL BENCH_KEY=$GATEWAY_KEY wrk -t1 -c"$CONNS" -d"$1" -s "$BENCH_DIR/$LUA" \
    "http://127.0.0.1:$P_PRISM" | grep WRK_RESULT
}
# Per request, from callgrind_annotate's listing on stdin: self instructions by shared object.
by_object() {
  grep -E '^ *[0-9,]+ \([ 0-9.]+%\)  .*\[/.*\]$' |
    awk -v n="$1" '{v=$1; gsub(",","",v); o=$NF; gsub(/[\[\]]/,"",o); sub(/.*\//,"",o); s[o]+=v}
      END {for (k in s) if (s[k] / n >= 50) printf "%10.0f  %s\n", s[k] / n, k}' | sort -rn
}

warmup=$(load 2s)
if [ "$PROFILER" = perf ]; then
  graph=()
  [ "${BENCH_CALLGRAPH:-0}" = 1 ] && graph=(--call-graph dwarf)
  start_bg perf perf record -q -F 999 "${graph[@]}" -o "$WORK/perf.data" -p "$PRISM_PID"
  PERF_PID=$BG_PID
  sleep 0.5
  load "${SECS}s"
  kill -INT "$PERF_PID"
  wait "$PERF_PID" 2>/dev/null || true
  echo "== top $TOP by self time ($MODEL, $SIZE body, ${SECS}s, $CONNS connections, one worker)"
  perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
    grep -v '^#' | grep -v '^$' | head -"$TOP" || true
  echo "== by shared object"
  perf report -i "$WORK/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15 || true
  exit 0
fi

if [ "$PROFILER" = strace ]; then
  # -f: the worker threads (Prism) or the one process (nginx, master_process off).
  start_bg strace strace -c -f -o "$WORK/strace.out" -p "$PRISM_PID"
  STRACE_PID=$BG_PID
  sleep 0.5
  result=$(load "${SECS}s")
  sleep 0.2
  kill -INT "$STRACE_PID"
  wait "$STRACE_PID" 2>/dev/null || true
  requests=$(echo "$result" | sed 's/.*requests=\([0-9]*\).*/\1/')
  [ "${requests:-0}" -gt 0 ] || die "no requests were answered: $result"
  echo "== system calls per request ($TARGET, $MODEL, $SIZE body, $CONNS connections, ${SECS}s: $requests requests)"
  # strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall.
  awk -v n="$requests" '$1 ~ /^[0-9.]+$/ && (NF == 5 || NF == 6) {
      errs = NF == 6 ? $5 : 0
      if ($NF == "total") total = $4
      else printf "%8.2f  %s%s\n", $4 / n, $NF, errs ? sprintf(" (%.2f failed)", errs / n) : "" }
    END {printf "%8.2f  total\n", total / n}' "$WORK/strace.out"
  exit 0
fi

if [ "$PROFILER" = cpu ]; then
  # utime and stime (fields 14 and 15, clock ticks) of the whole process: Prism's worker and
  # its idle main thread, or nginx's one process.
  ticks() { awk '{print $14, $15}' "/proc/$PRISM_PID/stat"; }
  # Each thread's too (Prism: the worker, the main thread, the log writer), by thread id.
  thread_ticks() { for t in /proc/"$PRISM_PID"/task/*; do echo "${t##*/} $(awk '{print $14 + $15}' "$t/stat")"; done; }
  # The fake's master and worker together: what the target's upstream requests cost it.
  fake_ticks() { cat /proc/"$FAKE_PID"/stat /proc/"$(pgrep -P "$FAKE_PID" | head -1)"/stat | awk '{t += $14 + $15} END {print t}'; }
  read -r u0 s0 <<<"$(ticks)"
  t0=$(thread_ticks)
  f0=$(fake_ticks)
  # wrk's own CPU time: `times` in the subshell that ran it prints its children's (wrk's) user
  # and system time on its second line (not through a pipe: that runs it in a fresh subshell).
  result=$(load "${SECS}s" && times >"$WORK/wrk.times")
  read -r u1 s1 <<<"$(ticks)"
  t1=$(thread_ticks)
  f1=$(fake_ticks)
  requests=$(echo "$result" | sed 's/.*requests=\([0-9]*\).*/\1/')
  [ "${requests:-0}" -gt 0 ] || die "no requests were answered: $result"
  # "0m1.234s 0m2.345s" -> seconds of user + system.
  wrk_secs=$(awk 'NR == 2 {for (i = 1; i <= 2; i++) {split($i, ms, /[ms]/); t += ms[1] * 60 + ms[2]} print t}' \
    "$WORK/wrk.times")
  echo "== CPU time per request ($TARGET, $MODEL, $SIZE body, $CONNS connections, ${SECS}s: $requests requests)"
  awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v n="$requests" -v hz="$(getconf CLK_TCK)" -v secs="$SECS" \
    -v fake=$((f1 - f0)) -v wrk="$wrk_secs" 'BEGIN {
    printf "%8.2f µs  user\n%8.2f µs  system\n%8.2f µs  total\n", u * 1e6 / hz / n, s * 1e6 / hz / n, (u + s) * 1e6 / hz / n
    printf "%8.0f %%   busy (one CPU = 100%%), %.0f requests/s\n", (u + s) * 100 / hz / secs, n / secs
    # What the same requests cost the processes around the target, sharing its two CPUs.
    printf "%8.2f µs  the fake provider (its upstream requests)\n", fake * 1e6 / hz / n
    printf "%8.2f µs  wrk (the client)\n", wrk * 1e6 / n
    printf "%8.2f µs  all three\n", ((u + s + fake) / hz + wrk) * 1e6 / n }'
  # The busiest thread (Prism's worker): what limits the rate when it is near 100%.
  join <(echo "$t0" | sort) <(echo "$t1" | sort) | sort -k3,3n -k2,2n |
    awk -v n="$requests" -v hz="$(getconf CLK_TCK)" -v secs="$SECS" '{d = $3 - $2; if (d > best) best = d}
      END {printf "%8.2f µs  the busiest thread (%.0f%% busy)\n", best * 1e6 / hz / n, best * 100 / hz / secs}'
  exit 0
fi

# Counted from start to exit: the warm-up and the check request count as requests too, and
# the worker's start and stop add well under 1% (callgrind's dumps taken mid-run put every
# cost on the frames on the stack at that moment, so they are not used).
warm=$(echo "$warmup" | sed 's/.*requests=\([0-9]*\).*/\1/')
result=$(load "${SECS}s")
measured=$(echo "$result" | sed 's/.*requests=\([0-9]*\).*/\1/')
[ "${measured:-0}" -gt 0 ] || die "no requests were answered: $result"
requests=$((warm + measured + 1))
stop_pid "$PRISM_PID"
# One file per thread; the worker's is the busiest.
worker="" best=0
for f in "$WORK"/cg.out-*; do
  n=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
  if [ "${n:-0}" -gt "$best" ]; then worker=$f best=$n; fi
done
[ -n "$worker" ] || die "callgrind wrote nothing"
echo "$MODEL, $SIZE body, $CONNS connections, ${SECS}s: $requests requests, $best instructions in the worker"
echo "instructions per request: $((best / requests))"
echo "== by shared object (self instructions per request)"
callgrind_annotate "$worker" --inclusive=no --threshold=100 --auto=no 2>/dev/null | by_object "$requests"
echo "== top $TOP functions (self instructions per request)"
callgrind_annotate "$worker" --inclusive=no --auto=no 2>/dev/null | grep -E '^ *[0-9,]+ \([ 0-9.]+%\)  ' | grep -v "PROGRAM TOTALS" |
  head -"$TOP" | awk -v n="$requests" '{v=$1; gsub(",","",v); sub(/^ *[0-9,]+ \([^)]*\) +/, ""); printf "%10.0f  %s\n", v / n, $0}'
