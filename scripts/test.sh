#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Stages, in order:
#   release  release build, every test (GPU-labelled ones skip without a device; the web page in
#            headless Chromium included)
#   python   pytest in the project's virtual environment (tests/python: attend score against
#            sacreBLEU; the Python module, built by the release preset, against the release binary)
#   cuda     the CUDA configuration (-DATTEND_CUDA=ON) compiled with nvcc, its gpu-labelled tests
#            run (they skip cleanly without a GPU); skipped when no CUDA toolkit is installed
#   tsan     ThreadSanitizer build of the decoding and server tests, run under it (two threads
#            decoding with one shared model; one worker thread each, so that only attend's own
#            synchronisation is under test, not the uninstrumented OpenMP runtime)
#   asan     AddressSanitizer + UndefinedBehaviorSanitizer build, every test again
#   fuzz     the libFuzzer targets (fuzz/: request bodies, safetensors, configs and trainer state,
#            corpora and prompts), clang with ASan + UBSan, 15 s each on their seed corpora
# Each stage's wall time is printed at the end, also when a stage fails. Builds go through ccache
# when it is installed (scripts/install-deps.sh installs it): the same sources compiled again, in
# this clone or another, come from the cache.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

stages=()
times=()
stage_name=""
stage_start=0
total_start=$(date +%s)
begin() {
  end_stage
  stage_name=$1
  stage_start=$(date +%s)
  echo "== $1: $2"
}
end_stage() {
  if [[ -n "$stage_name" ]]; then
    stages+=("$stage_name")
    times+=($(($(date +%s) - stage_start)))
    stage_name=""
  fi
}
report() {
  local rc=$?
  [[ -n "$stage_name" ]] && stage_name="$stage_name (failed)"
  end_stage
  echo
  echo "== stage times (wall clock, $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
  printf '%-22s %8s\n' stage "min:s"
  for i in "${!stages[@]}"; do
    printf '%-22s %5d:%02d\n' "${stages[$i]}" $((times[i] / 60)) $((times[i] % 60))
  done
  local total=$(($(date +%s) - total_start))
  printf '%-22s %5d:%02d\n' total $((total / 60)) $((total % 60))
  exit $rc
}
trap report EXIT

begin install "Debian packages and the Python tools (scripts/install-deps.sh)"
scripts/install-deps.sh
if command -v ccache > /dev/null; then
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CMAKE_CUDA_COMPILER_LAUNCHER=ccache CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true
fi
jobs=$(nproc)

begin release "release build and tests"
cmake --preset release > /dev/null
cmake --build --preset release
ctest --preset release -j"$jobs"

begin python "pytest in build/venv (tests/python)"
ATTEND="$root/build/release/attend" PYTHONPATH="$root/build/release/python" \
  build/venv/bin/python -m pytest -q tests/python

export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
if [[ -x "$CUDA_HOME/bin/nvcc" ]]; then
  begin cuda "CUDA build (nvcc: $("$CUDA_HOME/bin/nvcc" --version | tail -1))"
  cmake --preset cuda > /dev/null
  cmake --build --preset cuda
  ctest --test-dir build/cuda -L gpu --output-on-failure
  # Every op with a CPU kernel has a CUDA one (read from the dispatch; needs no GPU).
  build/cuda/tests/test_ops --gtest_filter='OpTable.EveryOpHasACudaKernel' --gtest_brief=1
else
  echo "== cuda: skipped, no nvcc under CUDA_HOME=$CUDA_HOME"
fi

begin tsan "ThreadSanitizer build, decoding-session and server tests"
cmake --preset tsan > /dev/null
cmake --build --preset tsan
OMP_NUM_THREADS=1 ATTEND_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1" \
  ctest --test-dir build/tsan -R '^(Session|Serve)\.' --no-tests=error --output-on-failure

begin asan "AddressSanitizer + UBSan build and tests"
cmake --preset asan > /dev/null
cmake --build --preset asan
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --preset asan -j"$jobs"

begin fuzz "libFuzzer targets, 15 s each"
scripts/fuzz.sh 15 1
end_stage
