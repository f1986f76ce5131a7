#!/usr/bin/env bash
# Runs every libFuzzer target (fuzz/, built with the fuzz preset: clang, ASan + UBSan) for a
# bounded time on its seed corpus, and prints the executions of each and in all.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [JOBS]     default: 20 s, 1 job
# New inputs go to a scratch directory, not into fuzz/corpus/ (add an input there by hand when it
# should stay). A crash stops the script with libFuzzer's report and the crashing input saved in
# build/fuzz/crashes/; make it a regression test (fuzz/corpus/ and a unit test) before fixing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
jobs=${2:-1}
cmake --preset fuzz > /dev/null
cmake --build --preset fuzz
mkdir -p build/fuzz/crashes
total=0
for target in request safetensors config text; do
  work=$(mktemp -d)
  log=build/fuzz/fuzz_$target.log
  status=0
  # -jobs/-workers: independent fuzzing processes sharing the scratch corpus (their logs go
  # to fuzz-N.log in the working directory, so run from the scratch directory).
  (cd "$work" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$OLDPWD/build/fuzz/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$OLDPWD/build/fuzz/crashes/$target-" \
    -jobs="$jobs" -workers="$jobs" "$work" "$OLDPWD/fuzz/corpus/$target") > "$log" 2>&1 || status=$?
  cat "$work"/fuzz-*.log >> "$log" 2>/dev/null || true
  rm -rf "$work"
  if [[ $status -ne 0 ]] || grep -q "ERROR: \(AddressSanitizer\|libFuzzer\|UndefinedBehaviorSanitizer\)\|runtime error:" "$log"; then
    tail -60 "$log"
    echo "fuzz_$target: FAILED (log: $log; input: build/fuzz/crashes/)"
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
  total=$((total + runs))
  echo "fuzz_$target: $runs executions in ${seconds} s x $jobs job(s), no crash"
done
echo "fuzz: $total executions in all, no crash"
