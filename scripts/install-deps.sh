#!/usr/bin/env bash
# Installs the Debian 12 packages attend needs to build, test and benchmark. Idempotent:
# packages already present are skipped, so a second run is quick and changes nothing.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --peer   also PyTorch (CPU) on OpenBLAS, for reference values and peer benchmarks
set -euo pipefail

pkgs=(build-essential cmake ninja-build pkg-config
      libgtest-dev libgmock-dev libbenchmark-dev
      libopenblas-openmp-dev libdnnl-dev
      zlib1g-dev nlohmann-json3-dev libsentencepiece-dev libyaml-cpp-dev libcli11-dev
      libopenmpi-dev openmpi-bin libboost-dev libcpp-httplib-dev curl
      chromium nodejs python3
      clang libclang-rt-14-dev libomp-14-dev)
# npm ships with some nodejs builds and is Debian's own package otherwise (the browser test's
# puppeteer-core comes from npm: `npm ci --prefix tests/web`).
command -v npm > /dev/null || pkgs+=(npm)
if [[ "${1:-}" == "--peer" ]]; then
  pkgs+=(python3-torch python3-numpy libopenblas0-openmp)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
