#!/usr/bin/env bash
# Installs what is missing, builds and runs every test through CTest:
#  1. the test build: unit tests (GoogleTest; the store and service tests on SQLite and on a
#     throwaway PostgreSQL that CTest starts and stops, scripts/with-postgres.sh), integration
#     and end-to-end tests (Node's test runner against real servers that the tests start on
#     free ports and stop; the e2e_pg_* ones on PostgreSQL), and the OpenAPI / AsyncAPI
#     document checks;
#  2. a ThreadSanitizer build of the server and the unit tests, running the unit and
#     end-to-end tests again (a data race aborts the server, so the tests fail); the
#     end-to-end suites on PostgreSQL run once, in step 1 (the store's own concurrency tests
#     run under TSan with the unit tests).
# PARLEY_SANITIZE=address|thread runs only that sanitizer build over the whole suite;
# PARLEY_SKIP_TSAN=1 skips step 2.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
(cd tests && npm ci --no-audit --no-fund --loglevel=error)

export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# suite SANITIZER [CTEST_ARGS…]: configure, build and test build/test[-SANITIZER].
suite() {
  local san=$1
  shift
  local dir=build/test${san:+-$san}
  echo "=== ${san:-plain} build in $dir"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_TESTS=ON \
    -DPARLEY_SANITIZE="$san" >/dev/null
  cmake --build "$dir"
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j2 "$@")
}

if [[ -n "${PARLEY_SANITIZE:-}" ]]; then
  suite "$PARLEY_SANITIZE"
  exit 0
fi
suite ""
if [[ "${PARLEY_SKIP_TSAN:-}" != 1 ]]; then
  suite thread -E '_lint$|_check$|^e2e_pg_'
fi
