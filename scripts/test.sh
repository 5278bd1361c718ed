#!/usr/bin/env bash
# Installs what is missing, builds and runs every test, in four passes:
#  1. plain: the test build (build/test): unit tests (GoogleTest; the store and service tests
#     on SQLite and on a throwaway PostgreSQL that CTest starts and stops,
#     scripts/with-postgres.sh), integration and end-to-end tests (Node's test runner against
#     real servers that the tests start on free ports and stop; the e2e_pg_* ones on
#     PostgreSQL), the benchmark smoke test and the OpenAPI / AsyncAPI document checks;
#  2. asan: an AddressSanitizer + UndefinedBehaviorSanitizer build (build/test-address, GCC;
#     the server and the unit tests only) running the unit, integration and end-to-end tests
#     again. Every report (also one in a server process whose exit status no test reads,
#     e.g. a leak at exit) is written under build/test-address/sanitizer-reports/, and any
#     report fails the pass;
#  3. tsan: a ThreadSanitizer build (build/test-thread; the server and the unit tests only)
#     running the unit and end-to-end tests again (a data race aborts the server, so the
#     tests fail);
#     the end-to-end suites on PostgreSQL (e2e_pg_*) run in pass 1 only; the store's own tests
#     on PostgreSQL (concurrency included) run in every pass with the unit tests;
#  4. fuzz: scripts/fuzz.sh — the libFuzzer targets (clang-14, ASan+UBSan, build/fuzz) replay
#     their kept corpora and fuzz for PARLEY_FUZZ_SECONDS (default 30) each.
# Each pass prints how long it took. PARLEY_SKIP_ASAN=1, PARLEY_SKIP_TSAN=1, PARLEY_SKIP_FUZZ=1
# skip a pass; PARLEY_SANITIZE=address|thread runs only that sanitizer build over the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
(cd tests && npm ci --no-audit --no-fund --loglevel=error)
# The benchmark peers (Node ws, Socket.IO) for the bench_smoke runs against them.
(cd bench/peers && npm ci --no-audit --no-fund --loglevel=error)

export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

timings=()
# timed NAME COMMAND…: runs the command and records how long it took.
timed() {
  local name=$1 start=$SECONDS status=0
  shift
  "$@" || status=$?
  timings+=("$(printf '%-6s %4d s' "$name" $((SECONDS - start)))")
  if ((status)); then echo "=== $name pass FAILED after $((SECONDS - start)) s"; else echo "=== $name pass took $((SECONDS - start)) s"; fi
  return $status
}

# suite SANITIZER [CTEST_ARGS…]: configure, build and test build/test[-SANITIZER]. With
# SUITE_TARGETS set, only those targets are built.
suite() {
  local san=$1
  shift
  local dir=build/test${san:+-$san}
  local targets=()
  [[ -z "${SUITE_TARGETS:-}" ]] || targets=(--target $SUITE_TARGETS)
  echo "=== ${san:-plain} build in $dir"
  # Explicit `|| return`: set -e does not apply inside a function called from `a || b`.
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_TESTS=ON \
    -DPARLEY_SANITIZE="$san" >/dev/null || return
  cmake --build "$dir" "${targets[@]}" || return
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j2 "$@")
}

# The ASan+UBSan suite: reports go to files as well as failing the process, so that none is
# missed where a test does not look at a process's exit status.
asan_suite() {
  local reports=$PWD/build/test-address/sanitizer-reports
  rm -rf "$reports"
  mkdir -p "$reports"
  local status=0
  ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$reports/asan" UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$reports/ubsan" \
    suite address "$@" || status=$?
  if compgen -G "$reports/*" >/dev/null; then
    echo "=== sanitizer reports:"
    for f in "$reports"/*; do
      echo "--- $f"
      head -n 80 "$f"
    done
    return 1
  fi
  return $status
}

if [[ -n "${PARLEY_SANITIZE:-}" ]]; then
  if [[ "$PARLEY_SANITIZE" == address ]]; then asan_suite; else suite "$PARLEY_SANITIZE"; fi
  exit
fi
timed plain suite ""
# The ASan build is the costliest (GCC instruments Beast's coroutines heavily): it builds only
# the server and the unit tests, and skips the benchmark smoke test with the doc checks.
if [[ "${PARLEY_SKIP_ASAN:-}" != 1 ]]; then
  SUITE_TARGETS="parley parley_unit_tests" timed asan asan_suite -E '_lint$|_check$|^bench_smoke$|^e2e_pg_'
fi
# The TSan build likewise: the server and the unit tests (the benchmark client is a fifth of
# the build; the server's concurrency is exercised by the end-to-end tests).
if [[ "${PARLEY_SKIP_TSAN:-}" != 1 ]]; then
  SUITE_TARGETS="parley parley_unit_tests" timed tsan suite thread -E '_lint$|_check$|^bench_smoke$|^e2e_pg_'
fi
if [[ "${PARLEY_SKIP_FUZZ:-}" != 1 ]]; then timed fuzz bash scripts/fuzz.sh; fi
printf '%s\n' "=== pass timings" "${timings[@]}"
