# shellcheck shell=bash
# Shared by bench/run.sh and bench/soak.sh (sourced, not run).
# Every process started with `start_bg` is stopped by `cleanup` at exit.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
PRISM_BIN=${PRISM_BIN:-$ROOT/build/prism}
GATEWAY_KEY=${BENCH_GATEWAY_KEY:-sk-bench-gateway-key}

PIDS=()
WORK=

die() {
  echo "bench: $*" >&2
  exit 1
}
note() { echo "bench: $*" >&2; }

check_tools() {
  [ -x "$PRISM_BIN" ] || die "$PRISM_BIN not found or not executable: build Prism first (make build), or set PRISM_BIN"
  local missing=()
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || missing+=("$t")
  done
  [ "${#missing[@]}" -eq 0 ] || die "missing: ${missing[*]} (run scripts/install-bench-deps.sh)"
}

NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

# Stops every process we started (TERM, then KILL after 5 s), their children, and
# removes the work directory unless BENCH_KEEP=1.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  local deadline=$((SECONDS + 5))
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      pkill -KILL -P "$pid" 2>/dev/null || true
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ "${BENCH_KEEP:-0}" = 1 ]; then note "logs kept in $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}

setup_work() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/prism-bench.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # As many descriptors as allowed: 10k streams need 10k upstream sockets in Prism.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# start_bg NAME CMD...: runs CMD in the background, output in $WORK/NAME.log; sets BG_PID.
start_bg() {
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  BG_PID=$!
  PIDS+=("$BG_PID")
}

# stop_pid PID: TERM, up to 10 s, then KILL.
stop_pid() {
  local pid=$1 _
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# free_ports N: N distinct free TCP ports on 127.0.0.1.
free_ports() {
  node -e '
    const net = require("net");
    const n = Number(process.argv[1]); const servers = [];
    (async () => {
      for (let i = 0; i < n; i++) {
        const s = net.createServer(); servers.push(s);
        await new Promise((r) => s.listen(0, "127.0.0.1", r));
      }
      console.log(servers.map((s) => s.address().port).join(" "));
      servers.forEach((s) => s.close());
    })();' "$1"
}

# wait_port PORT [SECONDS] [PID]: until something accepts on 127.0.0.1:PORT.
wait_port() {
  local port=$1 limit=${2:-15} pid=${3:-} _
  for _ in $(seq $((limit * 10))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

# start_nginx NAME TEMPLATE PORT [UPSTREAM_PORT] [WORKERS]: sets BG_PID.
# NGINX_WRAPPER, when set, is a command (words split on spaces) that runs nginx, a profiler;
# NGINX_GLOBALS adds directives to -g (e.g. "master_process off;"); NGINX_BUFFERING
# (on by default) is a proxy template's proxy_buffering.
start_nginx() {
  local name=$1 template=$2 port=$3 upstream=${4:-0} workers=${5:-1}
  local prefix="$WORK/$name" user_line="" wrapper=()
  [ -n "${NGINX_WRAPPER:-}" ] && read -r -a wrapper <<<"$NGINX_WRAPPER"
  mkdir -p "$prefix/tmp"
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  sed -e "s#@PREFIX@#$prefix#g" -e "s#@PORT@#$port#g" -e "s#@UPSTREAM_PORT@#$upstream#g" \
    -e "s#@WORKERS@#$workers#g" -e "s#@USER_LINE@#$user_line#g" -e "s#@BUFFERING@#${NGINX_BUFFERING:-on}#g" \
    "$template" >"$prefix/nginx.conf"
  start_bg "$name" "${wrapper[@]}" "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -g "daemon off; ${NGINX_GLOBALS:-}"
  wait_port "$port" 10 "$BG_PID" || die "$name did not start: $(tail -5 "$WORK/$name.log" "$prefix/error.log" 2>/dev/null)"
}

# start_prism NAME PORT WORKERS OPENAI_BASE ANTHROPIC_BASE: sets BG_PID (Prism's own pid).
# PRISM_WRAPPER, when set, is a command (words split on spaces) that runs Prism, a profiler;
# PRISM_CONFIG another config (default: the repository's config.yml); BENCH_ACCESS_LOG=0 serves
# a copy of it with server.log.access off, to measure what the access lines cost.
start_prism() {
  local name=$1 port=$2 workers=$3 openai=$4 anthropic=$5
  local wrapper=() config=${PRISM_CONFIG:-$ROOT/config.yml}
  [ -n "${PRISM_WRAPPER:-}" ] && read -r -a wrapper <<<"$PRISM_WRAPPER"
  case "${BENCH_ACCESS_LOG:-1}" in
    1) ;;
    0)
      grep -q '^  log:' "$config" && die "BENCH_ACCESS_LOG=0: $config has its own server.log section"
      sed 's/^server:$/server:\n  log:\n    access: false/' "$config" >"$WORK/config-$name.yml"
      config=$WORK/config-$name.yml
      ;;
    *) die "BENCH_ACCESS_LOG is 1 or 0, not $BENCH_ACCESS_LOG" ;;
  esac
  start_bg "$name" env -i PATH="$PATH" HOME="${HOME:-/tmp}" LANG=C.UTF-8 \
    NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost \
    OPENAI_BASE_URL="$openai" OPENAI_API_KEY=sk-bench-upstream \
    ANTHROPIC_BASE_URL="$anthropic" ANTHROPIC_API_KEY=sk-ant-bench-upstream \
    PRISM_API_KEYS="$GATEWAY_KEY" PRISM_UPSTREAM_CLIENT="${BENCH_UPSTREAM_CLIENT:-auto}" \
    "${wrapper[@]}" "$PRISM_BIN" serve --config "$config" --listen "127.0.0.1:$port" --workers "$workers"
  wait_port "$port" 60 "$BG_PID" || die "$name did not start: $(tail -5 "$WORK/$name.log")"
}

# check_chat NAME URL MODEL [CURL ARGS...]: one request must answer 200 with a chat completion.
check_chat() {
  local name=$1 url=$2 model=$3
  shift 3
  local code
  code=$(curl -s -o "$WORK/check-$name.json" -w '%{http_code}' --max-time 10 -X POST "$url" \
    -H 'Content-Type: application/json' -H "Authorization: Bearer $GATEWAY_KEY" "$@" \
    -d "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}") || code=000
  [ "$code" = 200 ] && grep -q '"chat.completion"' "$WORK/check-$name.json" ||
    die "$name: $url answered $code: $(head -c 300 "$WORK/check-$name.json" 2>/dev/null)"
}

# check_stream NAME URL MODEL: one streamed request must answer 200 with chunks and [DONE].
check_stream() {
  local name=$1 url=$2 model=$3 code
  code=$(curl -s -N -o "$WORK/check-$name.sse" -w '%{http_code}' --max-time 10 -X POST "$url" \
    -H 'Content-Type: application/json' -H "Authorization: Bearer $GATEWAY_KEY" \
    -d "{\"model\":\"$model\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}") || code=000
  [ "$code" = 200 ] && grep -q '"chat.completion.chunk"' "$WORK/check-$name.sse" &&
    grep -q '^data: \[DONE\]' "$WORK/check-$name.sse" ||
    die "$name: $url answered $code: $(head -c 300 "$WORK/check-$name.sse" 2>/dev/null)"
}

# rss_kib PID: VmRSS in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# wrk_json OUTFILE: the WRK_RESULT line of a wrk run as a JSON object (empty when missing).
wrk_json() {
  local line
  line=$(grep '^WRK_RESULT ' "$1" | tail -1) || return 0
  echo "$line" | sed -e 's/^WRK_RESULT //' -e 's/\([a-z0-9_]*\)=\([0-9.]*\)/"\1":\2,/g' -e 's/, *$//' -e 's/^/{/' -e 's/$/}/' -e 's/, /,/g'
}

machine_json() {
  local cpu mem
  cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
  mem=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
  printf '{"kind":"meta","nproc":%s,"cpu":"%s","mem":"%s","kernel":"%s","load":"%s","prism":"%s","commit":"%s","wrk":"%s","nginx":"%s","node":"%s","date":"%s"}\n' \
    "$(nproc)" "$cpu" "$mem" "$(uname -r)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$PRISM_BIN" \
    "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')" \
    "$(wrk -v 2>&1 | head -1 | awk '{print $2}')" "$("$NGINX" -v 2>&1 | sed 's#.*/##')" "$(node --version)" "$(date -u +%Y-%m-%dT%H:%MZ)"
}

# CPU accounting, to tell how much of the machine other processes took during a
# measurement. cpu_mark sets CPU_MARK to "busy ours children" (clock ticks): busy is the
# whole machine's user, system and steal time (/proc/stat; interrupts left out), ours the
# processes we started and their children, children this shell's reaped children (wrk,
# curl). It must run in this shell, not in $(...): a subshell has no reaped children.
# foreign_cpu MARK1 MARK2 SECONDS prints what the rest used, in percent of one CPU.
cpu_mark() {
  local busy ours=0 pid p kids t
  busy=$(awk '/^cpu / {print $2+$3+$4+$9}' /proc/stat)
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    kids=$(pgrep -P "$pid" 2>/dev/null | tr '\n' ' ') || true
    for p in $pid $kids; do
      t=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null) || t=0
      ours=$((ours + ${t:-0}))
    done
  done
  # `times` prints the children's user and system time on its second line (XmY.YYYs).
  times >"$WORK/.times"
  t=$(sed -n 2p "$WORK/.times" | awk -v hz="$(getconf CLK_TCK)" '{
      s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); s += a[1] * 60 + a[2] }
      printf "%d", s * hz }')
  # shellcheck disable=SC2034 # read by the callers
  CPU_MARK="$busy $ours $t"
}
foreign_cpu() {
  local a b
  read -r -a a <<<"$1"
  read -r -a b <<<"$2"
  awk -v busy=$((b[0] - a[0])) -v ours=$((b[1] - a[1])) -v kids=$((b[2] - a[2])) -v secs="$3" \
    -v hz="$(getconf CLK_TCK)" 'BEGIN { f = (busy - ours - kids) / (secs * hz) * 100; if (f < 0) f = 0; printf "%.0f", f }'
}

# jget JSON KEY: the number under "KEY" in a flat JSON object (the WRK_RESULT ones).
jget() { echo "$1" | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p"; }
