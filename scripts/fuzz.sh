#!/usr/bin/env bash
# Builds every libFuzzer target with clang and runs each for a bounded time
# on its committed seed corpus. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
# New inputs go to build-fuzz/corpus/<target>/, never into the seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-${FUZZ_SECONDS:-30}}"
out=build-fuzz
mkdir -p "$out"

CLAUDE=plugins/ai_gateway/claude_provider
# The translation writes its JSON with the core's printer: fuzzed along with it.
PRINT="src/core/json_print.c src/core/grow.c"
# target | sources it exercises | libraries
targets=(
  "fuzz_yaml|src/core/yaml.c src/core/interp.c|-lcjson -lyaml"
  "fuzz_claude_request|$CLAUDE/translate*.c $PRINT|-lcjson"
  "fuzz_claude_response|$CLAUDE/translate*.c $PRINT|-lcjson"
  "fuzz_claude_stream|$CLAUDE/stream.c $CLAUDE/stream_responses.c $CLAUDE/translate*.c $PRINT src/core/json_scan.cc|-lcjson -lsimdjson"
  "fuzz_json_scan|src/core/json_scan.cc|-lcjson -lsimdjson"
)

total_fail=0
for spec in "${targets[@]}"; do
  IFS='|' read -r name sources libs <<<"$spec"
  [ -f "tests/fuzz/$name.c" ] || { echo "skip $name (no source)"; continue; }
  flags=(-g -O1 -D_GNU_SOURCE -fsanitize=address,undefined -fno-sanitize-recover=undefined
    -Iinclude -iquote src/core -I"$CLAUDE")
  # Each source compiled on its own (C or C++: json_scan.cc is simdjson's
  # interface), the target linked by clang++ when there was C++.
  objs=() link=clang
  # shellcheck disable=SC2086
  for f in $sources "tests/fuzz/$name.c"; do
    o="$out/$name-$(basename "$f").o"
    if [[ "$f" == *.cc ]]; then
      clang++ "${flags[@]}" -fsanitize=fuzzer-no-link -std=c++17 -fno-exceptions -fno-rtti -c "$f" -o "$o"
      link=clang++
    else
      clang "${flags[@]}" -fsanitize=fuzzer-no-link -std=c17 -c "$f" -o "$o"
    fi
    objs+=("$o")
  done
  # shellcheck disable=SC2086
  $link "${flags[@]}" -fsanitize=fuzzer "${objs[@]}" $libs -o "$out/$name"
  seeds="tests/fuzz/corpus/${name#fuzz_}"
  work="$out/corpus/$name"
  mkdir -p "$work" "$seeds"
  log="$out/$name.log"
  if "$out/$name" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 "$work" "$seeds" >"$log" 2>&1; then
    runs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "$name: ${runs:-?} executions in ${secs}s, no crash"
  else
    echo "$name: CRASH or failure, see $log"; tail -30 "$log"; total_fail=1
  fi
done
exit "$total_fail"
