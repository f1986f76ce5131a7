#!/usr/bin/env bash
# Quick start: installs the Debian packages, builds attend (release), trains the quick-start
# model (numbers in digits -> English words, configs/quickstart.yaml) and translates a few
# numbers it never saw in training. Extra arguments go to `attend train` (e.g. --train.threads 2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --workflow --preset release
build/release/attend train configs/quickstart.yaml --train.out runs/quickstart --train.overwrite true "$@"
echo "== translating held-out numbers (runs/quickstart/valid.src) with attend translate"
head -5 runs/quickstart/valid.src > runs/quickstart/examples.src
build/release/attend translate -m runs/quickstart -i runs/quickstart/examples.src |
  paste -d '\t' runs/quickstart/examples.src - | sed 's/\t/  ->  /'
