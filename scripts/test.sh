#!/usr/bin/env bash
# Installs what is missing, builds and runs every test, in three passes:
#  1. plain: the test build (build/test): unit tests (GoogleTest), integration and end-to-end
#     tests (Node's test runner against real servers that the tests start on free ports and
#     stop), the benchmark smoke test and the OpenAPI / AsyncAPI document checks;
#  2. tsan: a ThreadSanitizer build (build/test-thread) running the unit and end-to-end tests
#     again (a data race aborts the server, so the tests fail);
#  3. fuzz: scripts/fuzz.sh — the libFuzzer targets (clang-14, ASan+UBSan, build/fuzz) replay
#     their kept corpora and fuzz for PARLEY_FUZZ_SECONDS (default 30) each.
# Each pass prints how long it took. PARLEY_SKIP_TSAN=1, PARLEY_SKIP_FUZZ=1
# skip a pass; PARLEY_SANITIZE=address|thread runs only that sanitizer build over the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
(cd tests && npm ci --no-audit --no-fund --loglevel=error)

export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

timings=()
# timed NAME COMMAND…: runs the command and records how long it took.
timed() {
  local name=$1 start=$SECONDS
  shift
  "$@"
  timings+=("$(printf '%-6s %4d s' "$name" $((SECONDS - start)))")
  echo "=== $name pass took $((SECONDS - start)) s"
}

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
timed plain suite ""
[[ "${PARLEY_SKIP_TSAN:-}" == 1 ]] || timed tsan suite thread -E '_lint$|_check$'
[[ "${PARLEY_SKIP_FUZZ:-}" == 1 ]] || timed fuzz bash scripts/fuzz.sh
printf '%s\n' "=== pass timings" "${timings[@]}"
