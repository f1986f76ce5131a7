#!/usr/bin/env bash
# The proof of the CUDA backend in one command, for a short GPU session (issue 39).
#
#   scripts/gpu-check.sh --pack   here, on the Debian machine with the project's packages:
#                                 writes build/device-deps/deps.tar.xz (oneDNN, OpenBLAS and the
#                                 runtime libraries they need, SentencePiece, yaml-cpp, zlib,
#                                 nlohmann-json's headers, GoogleTest's sources; ~14 MB) for the
#                                 device tool to carry (carry: ["build/device-deps"])
#   scripts/gpu-check.sh          on the GPU machine (or here, as a dry run: every GPU test then
#                                 skips): unpacks those, builds build/device-check with
#                                 -DATTEND_CUDA=ON -DATTEND_DEVICE_CHECK=ON (the CUDA toolkit, a
#                                 C++20 compiler and CMake are all it needs there: the layers up
#                                 to training, without MPI, serving or the command line), runs
#                                 the device tests and prints one table: each op-table case on
#                                 cpu_f32 and cuda_f32 against the f64 reference, then the CUDA
#                                 runtime, whole-model, decoding and trainer tests against the
#                                 CPU; with a GPU and torch, the fused attention against
#                                 PyTorch's SDPA first. Exits non-zero when a test fails.
#
# Environment: CUDA_HOME (default /usr/local/cuda), CUDA_ARCH (default 90: H100/H200), OUT (when
# set, the table and the logs are written there too), JOBS (default: all cores), ATTN_SIZES
# (the benchmark's sequence lengths, default 512,1024,2048,4096,8192).
# What it does not check yet: bf16 tensors, sampling, int8 products, the command line on the
# device (its build needs Boost and CLI11), NCCL with several ranks, and the training and
# decoding speed figures; docs/cuda.md says where each stands.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
deps_dir=build/device-deps

if [[ "${1:-}" == "--pack" ]]; then
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/root/lib" "$stage/root/include"
  lib=/usr/lib/x86_64-linux-gnu
  cp -L "$lib/libdnnl.so.2" "$stage/root/lib/"
  ln -s libdnnl.so.2 "$stage/root/lib/libdnnl.so"
  cp -L "$lib/openblas-openmp/libopenblas.so.0" "$stage/root/lib/"
  ln -s libopenblas.so.0 "$stage/root/lib/libopenblas.so"
  # What those two load that a machine without Debian's packages may lack.
  for so in libgfortran.so.5 libquadmath.so.0 libOpenCL.so.1; do cp -L "$lib/$so" "$stage/root/lib/"; done
  # The layers up to training: SentencePiece, yaml-cpp, zlib (and nlohmann-json's headers).
  for so in libsentencepiece.so.0 libsentencepiece_train.so.0 libyaml-cpp.so.0.7 libz.so.1; do
    cp -L "$lib/$so" "$stage/root/lib/"
    ln -s "$so" "$stage/root/lib/${so%%.so*}.so"
  done
  cp -r /usr/include/oneapi /usr/include/yaml-cpp /usr/include/nlohmann "$stage/root/include/"
  cp /usr/include/{sentencepiece_processor.h,sentencepiece_trainer.h,zlib.h,zconf.h} \
    "$stage/root/include/"
  cp /usr/include/x86_64-linux-gnu/openblas-openmp/{cblas.h,f77blas.h,openblas_config.h} \
    "$stage/root/include/"
  cp -r /usr/src/googletest "$stage/googletest"
  mkdir -p "$deps_dir"
  tar -C "$stage" -cJf "$deps_dir/deps.tar.xz" root googletest
  echo "wrote $deps_dir/deps.tar.xz ($(du -h "$deps_dir/deps.tar.xz" | cut -f1)); carry build/device-deps"
  exit 0
fi

start=$(date +%s)
stamp() { echo "== $1 ($(($(date +%s) - start)) s)"; }
export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
jobs="${JOBS:-$(nproc)}"
out="${OUT:-}"
log_dir="${out:-build/device-check}"
mkdir -p build/device-check "$log_dir"

stamp "machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  echo "gpu: none (nvidia-smi not found): a dry run, the GPU tests will skip"
fi
"$CUDA_HOME/bin/nvcc" --version | tail -1

deps_root=""
gtest_source=""
if [[ -f "$deps_dir/deps.tar.xz" ]]; then
  stamp "unpacking $deps_dir/deps.tar.xz"
  rm -rf "$deps_dir/unpacked" && mkdir -p "$deps_dir/unpacked"
  tar -C "$deps_dir/unpacked" -xJf "$deps_dir/deps.tar.xz"
  deps_root="$root/$deps_dir/unpacked/root"
  gtest_source="$root/$deps_dir/unpacked/googletest"
  export LD_LIBRARY_PATH="$deps_root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  echo "no $deps_dir/deps.tar.xz: using the installed oneDNN, OpenBLAS and GoogleTest"
fi

stamp "configure (build/device-check)"
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
cmake -S . -B build/device-check "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DATTEND_CUDA=ON -DATTEND_DEVICE_CHECK=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" \
  -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc" -DATTEND_DEPS_ROOT="$deps_root" \
  -DATTEND_GTEST_SOURCE="$gtest_source" > "$log_dir/configure.log" 2>&1 ||
  { tail -30 "$log_dir/configure.log"; exit 1; }

stamp "build ($jobs jobs)"
cmake --build build/device-check -j "$jobs" > "$log_dir/build.log" 2>&1 ||
  { grep -E -B2 -A8 'error' "$log_dir/build.log" | head -80; exit 1; }

stamp "tests"
status=0
for t in test_ops test_gpu; do
  build/device-check/tests/$t --gtest_output="xml:$log_dir/$t.xml" > "$log_dir/$t.log" 2>&1 ||
    status=1
done

if command -v nvidia-smi > /dev/null && python3 -c 'import torch' 2> /dev/null; then
  stamp "fused attention against PyTorch's SDPA (tools/bench_cuda_attention.py)"
  timeout 300 python3 tools/bench_cuda_attention.py build/device-check/bench/cuda_attention \
    --sizes "${ATTN_SIZES:-512,1024,2048,4096,8192}" --rounds 3 | tee "$log_dir/attention.md" ||
    echo "the attention benchmark failed or ran past 300 s (its table so far is above)"
fi

stamp "table"
python3 scripts/gpu_check_table.py "$log_dir/test_ops.xml" "$log_dir/test_gpu.xml" \
  > "$log_dir/table.md" || status=1
cat "$log_dir/table.md"
stamp "done"
if [[ $status -ne 0 ]]; then
  echo "FAILED: see the table above and $log_dir/test_*.log"
  grep -h -A12 '\[  FAILED  \]\|Failure' "$log_dir"/test_*.log | head -60 || true
fi
exit $status
