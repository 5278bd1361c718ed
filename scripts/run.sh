#!/usr/bin/env bash
# Installs what is missing, builds Release and starts `parley serve` on the embedded SQLite
# default (./data/parley.db). Extra arguments go to `parley serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF >/dev/null
cmake --build build/release --target parley
mkdir -p data
exec ./build/release/parley serve "$@"
