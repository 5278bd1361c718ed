#!/usr/bin/env bash
# Installs what is missing, builds the test build and runs every test through CTest:
# unit tests (GoogleTest), integration and end-to-end tests (Node, against real servers that
# the tests start themselves on free ports and stop), and the API document lint.
# PARLEY_SANITIZE=address|thread builds and runs the same suite under a sanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
(cd tests && npm ci --no-audit --no-fund --loglevel=error)
san="${PARLEY_SANITIZE:-}"
dir=build/test${san:+-$san}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_TESTS=ON \
  -DPARLEY_SANITIZE="$san" >/dev/null
cmake --build "$dir"
cd "$dir"
ctest --output-on-failure --timeout 600 -j2
