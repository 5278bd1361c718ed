#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang-14, ASan+UBSan) in build/fuzz, replays each
# target's kept corpus (fuzz/corpus/<target>/: seeds and crash regressions), then fuzzes each
# target for PARLEY_FUZZ_SECONDS (default 30). Any crash, sanitizer report, broken invariant,
# leak or hang (an input running longer than 10 s) fails the run; the input that caused it is
# written to build/fuzz/work/<target>/artifacts/. Inputs the fuzzer finds go to
# build/fuzz/work/<target>/corpus/ (kept between local runs; fuzz/corpus/ only changes by hand).
# Usage: scripts/fuzz.sh [TARGET…]   (targets: http ws jwt ws_frames; default all)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${PARLEY_FUZZ_SECONDS:-30}
targets=("$@")
((${#targets[@]})) || targets=(http ws jwt ws_frames)

CC=clang-14 CXX=clang++-14 cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPARLEY_TESTS=OFF -DPARLEY_FUZZ=ON >/dev/null
cmake --build build/fuzz --target fuzzers

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
summary=()
for t in "${targets[@]}"; do
  bin=build/fuzz/fuzz/fuzz_$t
  work=build/fuzz/work/$t
  mkdir -p "$work/corpus" "$work/artifacts"
  dict=()
  [[ -f fuzz/$t.dict ]] && dict=(-dict="fuzz/$t.dict")
  echo "=== fuzz_$t: replaying fuzz/corpus/$t"
  "$bin" -runs=0 -timeout=10 -artifact_prefix="$work/artifacts/" "fuzz/corpus/$t" >"$work/replay.log" 2>&1 || {
    tail -n 60 "$work/replay.log"
    echo "fuzz_$t FAILED on its kept corpus: see $work/replay.log"
    exit 1
  }
  grep -E '^#[0-9]+[[:space:]]+DONE' "$work/replay.log" | tail -n 1
  echo "=== fuzz_$t: fuzzing for ${secs} s"
  "$bin" -max_total_time="$secs" -timeout=10 -print_final_stats=1 "${dict[@]}" \
    -artifact_prefix="$work/artifacts/" "$work/corpus" "fuzz/corpus/$t" >"$work/log" 2>&1 || {
    tail -n 60 "$work/log"
    echo "fuzz_$t FAILED: see $work/log and $work/artifacts/"
    exit 1
  }
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -n 1)
  summary+=("fuzz_$t: $execs executions in ${secs} s ($rate/s), $cov, no crash")
  echo "${summary[-1]}"
done
printf '%s\n' "=== fuzz summary" "${summary[@]}"
