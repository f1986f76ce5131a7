#!/usr/bin/env bash
# Quick start: installs the Debian packages, builds attend (release) and runs the demo job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --workflow --preset release
build/release/attend demo "$@"
