#!/usr/bin/env bash
# Instructions per delivered and per persisted message, counted by valgrind's callgrind on a
# fixed small fan-out scenario, so that a regression shows even when wall-clock numbers wander.
#
#   bench/callgrind.sh [--bin build/release/parley] [--bench build/release/parley-bench]
#                      [--members 100] [--lo 10] [--hi 60] [--rate 5] [--via "ws rest"] [--out DIR]
#
# For each send path (WebSocket send_message, REST POST) it runs the same scenario twice against
# a server under `valgrind --tool=callgrind`: one room, --members sockets of as many users, one
# sender, --lo then --hi messages paced at --rate msg/s (slow enough for the server to keep up
# under valgrind, so that no badge is coalesced and the count does not depend on timing).
# Instrumentation is off while users register and sockets open (--instr-atstart=no) and turned
# on once every socket is connected; it counts until the server has exited. What both runs share
# (the settle wait, closing the sockets, shutdown) cancels in the difference, so
#   Ir per message  = (Ir_hi - Ir_lo) / (hi - lo)        (persisting it and fanning it out)
#   Ir per delivery = (Ir_hi - Ir_lo) / ((hi - lo) * members)
# are the server's instructions (all its threads) for one more message. It prints both, one
# RESULT line, and the top functions (self cost) of the --hi run of each path.
set -euo pipefail

BIN=build/release/parley
BENCH=build/release/parley-bench
MEMBERS=100
LO=10
HI=60
RATE=5
VIA="ws rest"
OUT=
TOP=25
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --members) MEMBERS=$2; shift 2 ;;
    --lo) LO=$2; shift 2 ;;
    --hi) HI=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --via) VIA=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --top) TOP=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "callgrind.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in valgrind callgrind_control callgrind_annotate; do
  command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool not found (apt-get install valgrind)" >&2; exit 2; }
done
[[ -x $BIN ]] || { echo "callgrind.sh: no server binary at $BIN (build it, or give --bin)" >&2; exit 2; }
[[ -x $BENCH ]] || { echo "callgrind.sh: no parley-bench at $BENCH (build it, or give --bench)" >&2; exit 2; }
(( HI > LO && LO > 0 && MEMBERS > 0 )) || { echo "callgrind.sh: need 0 < --lo < --hi and --members > 0" >&2; exit 2; }
[[ -n $OUT ]] || OUT=$(mktemp -d /tmp/parley-callgrind-XXXXXX)
mkdir -p "$OUT"

SERVER_PID=
cleanup() { [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

# One run: prints the server's total Ir. $1 = ws|rest, $2 = messages.
run_one() {
  local via=$1 n=$2 dir="$OUT/$1-$2"
  rm -rf "$dir"; mkdir -p "$dir"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/callgrind.out" \
    "$BIN" serve --listen 127.0.0.1:0 --db "sqlite:$dir/parley.db" --rate-limit-per-sec 0 --ws-cooldown-ms 0 \
    --max-connections-per-ip 0 --ws-inbound-per-sec 100000 --ws-inbound-burst 100000 --log-level warn \
    >"$dir/server.out" 2>"$dir/server.err" &
  SERVER_PID=$!
  local url=
  for _ in $(seq 1 600); do
    url=$(grep -o 'listening on http://[0-9.:]*' "$dir/server.out" 2>/dev/null | head -1 | sed 's/listening on //') || true
    [[ -n $url ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "callgrind.sh: the server exited; see $dir/server.err" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n $url ]] || { echo "callgrind.sh: the server did not start; see $dir/server.err" >&2; exit 1; }
  "$BENCH" fanout --url "$url" --server-pid "$SERVER_PID" --members "$MEMBERS" --users "$MEMBERS" --senders 1 \
    --send-via "$via" --rate "$RATE" --messages "$n" --settle 4 --timeout 600 >"$dir/bench.out" 2>"$dir/bench.err" &
  local bench_pid=$!
  for _ in $(seq 1 3000); do
    grep -q '^connected:' "$dir/bench.out" 2>/dev/null && break
    kill -0 "$bench_pid" 2>/dev/null || break
    sleep 0.1
  done
  callgrind_control -i on "$SERVER_PID" >/dev/null
  grep -q '^sending:' "$dir/bench.out" && { echo "callgrind.sh: instrumentation came on after the first send" >&2; exit 1; }
  local rc=0
  wait "$bench_pid" || rc=$?
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=
  if (( rc != 0 )) || ! grep -q 'status=ok' "$dir/bench.out"; then
    echo "callgrind.sh: the $via run with $n messages failed (rc=$rc); see $dir/bench.out and bench.err" >&2
    tail -3 "$dir/bench.out" "$dir/bench.err" >&2
    exit 1
  fi
  grep -h '^RESULT' "$dir/bench.out" >"$dir/result"
  # Sum over the dump files (one per thread only with --separate-threads=yes; here one).
  awk '/^(summary|totals):/ {print $2; exit}' "$dir/callgrind.out"
}

echo "params: members=$MEMBERS users=$MEMBERS senders=1 rate=$RATE lo=$LO hi=$HI via=\"$VIA\" bin=$BIN out=$OUT"
summary=()
for via in $VIA; do
  lo_ir=$(run_one "$via" "$LO")
  hi_ir=$(run_one "$via" "$HI")
  badges_lo=$(grep -o 'unread_updates=[0-9]*' "$OUT/$via-$LO/result" | cut -d= -f2)
  badges_hi=$(grep -o 'unread_updates=[0-9]*' "$OUT/$via-$HI/result" | cut -d= -f2)
  per_msg=$(( (hi_ir - lo_ir) / (HI - LO) ))
  per_delivery=$(( (hi_ir - lo_ir) / ((HI - LO) * MEMBERS) ))
  echo
  echo "== $via: Ir lo=$lo_ir hi=$hi_ir  per message $per_msg  per delivery $per_delivery"
  echo "   unread_count_update frames: lo=$badges_lo hi=$badges_hi (one per delivery when none was coalesced:" \
       "$(( (HI - LO) * MEMBERS )) in the difference)"
  echo "   top functions, self cost, $via run with $HI messages (instrumented from the first connected socket on):"
  callgrind_annotate --threshold=100 "$OUT/$via-$HI/callgrind.out" 2>/dev/null |
    awk '/^-+$/ {d++} d >= 3 && NF' | grep -v '^-' | head -n "$TOP" | sed 's/^/   /' || true
  summary+=("ir_per_message_${via}=$per_msg ir_per_delivery_${via}=$per_delivery badges_${via}=$((badges_hi - badges_lo))")
done
echo
echo "RESULT scenario=callgrind members=$MEMBERS senders=1 rate=$RATE messages=$((HI - LO)) ${summary[*]}"
