#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this):
#   1. release build, every test (GPU-labelled ones skip without a device; the web page in
#      headless Chromium included)
#   2. CUDA configuration (-DATTEND_CUDA=ON) compiled with nvcc, its gpu-labelled tests run
#      (they skip cleanly on a machine without a GPU); skipped when no CUDA toolkit is installed
#   3. ThreadSanitizer build of the decoding and server tests, run under it (two threads
#      decoding with one shared model; one worker thread each, so that only attend's own
#      synchronisation is under test, not the uninstrumented OpenMP runtime)
#   4. AddressSanitizer + UndefinedBehaviorSanitizer build, every test again
#   5. the libFuzzer targets (fuzz/: request bodies, safetensors, configs and trainer state,
#      corpora and prompts), clang with ASan + UBSan, 15 s each on their seed corpora
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# puppeteer-core, pinned by tests/web/package-lock.json, drives Chromium in the web-page test.
npm ci --prefix tests/web --no-audit --no-fund --loglevel=error
jobs=$(nproc)

echo "== release build and tests"
cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release -j"$jobs"

export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
if [[ -x "$CUDA_HOME/bin/nvcc" ]]; then
  echo "== CUDA build (nvcc: $("$CUDA_HOME/bin/nvcc" --version | tail -1))"
  cmake --preset cuda >/dev/null
  cmake --build --preset cuda
  ctest --test-dir build/cuda -L gpu --output-on-failure
else
  echo "== CUDA build skipped: no nvcc under CUDA_HOME=$CUDA_HOME"
fi

echo "== ThreadSanitizer build, decoding-session and server tests"
cmake --preset tsan >/dev/null
cmake --build --preset tsan
OMP_NUM_THREADS=1 ATTEND_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1" \
  ctest --test-dir build/tsan -R '^(Session|Serve)\.' --no-tests=error --output-on-failure

echo "== AddressSanitizer + UBSan build and tests"
cmake --preset asan >/dev/null
cmake --build --preset asan
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --preset asan -j"$jobs"

echo "== libFuzzer targets"
scripts/fuzz.sh 15 1
