#!/usr/bin/env bash
# bench/cluster_fanout.sh [RATE…]: `parley-bench fanout` across instances — scripts/cluster.sh
# starts PostgreSQL, Redis, N instances (PARLEY_INSTANCES, default 2) and nginx; the receivers
# (MEMBERS sidebar sockets, default 1000) connect through nginx, which spreads them over the
# instances, and one sender posts over REST through nginx at each RATE (messages/s, default
# "10 50 100 200") for DURATION seconds (default 10). Around each run it reads what the bench
# client cannot see: Redis PUBLISH calls and output bytes (INFO), the PostgreSQL transactions
# committed (pg_stat_database), and the CPU seconds of the instances and of Redis, and prints
# them per chat message next to the client's RESULT line.
# PARLEY_BIN / PARLEY_BENCH: the binaries (default build/release/…; built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PARLEY_BIN:-build/release/parley}
bench=${PARLEY_BENCH:-build/release/parley-bench}
if [[ ! -x "$bin" || ! -x "$bench" ]]; then
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF >/dev/null
  cmake --build build/release --target parley parley-bench >/dev/null
fi
n=${PARLEY_INSTANCES:-2}
members=${MEMBERS:-1000}
duration=${DURATION:-10}
rates=("$@")
[[ ${#rates[@]} -gt 0 ]] || rates=(10 50 100 200)

log=$(mktemp /tmp/parley-cluster-bench.XXXXXX)
# Its own session, so that the whole cluster gets the SIGTERM at the end.
PARLEY_BIN=$bin PARLEY_RATE_LIMIT_PER_SEC=0 PARLEY_WS_COOLDOWN_MS=0 PARLEY_LOG_LEVEL=warn \
  setsid bash scripts/cluster.sh "$n" >"$log" 2>&1 &
cluster=$!
finish() {
  kill -TERM "$cluster" 2>/dev/null || true
  wait "$cluster" 2>/dev/null || true
  rm -f "$log"
}
trap finish EXIT
for _ in $(seq 1 600); do
  grep -q '^database: ' "$log" && break
  kill -0 "$cluster" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^cluster ready: //p' "$log")
redis_port=$(sed -n 's/.*bus: redis:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$log")
db_url=$(sed -n 's/^database: \([^;]*\);.*/\1/p' "$log")
[[ -n "$url" && -n "$redis_port" && -n "$db_url" ]] || { cat "$log" >&2; exit 1; }
instances=$(pgrep -f -- "--bus redis://127.0.0.1:$redis_port" | tr '\n' ' ')
echo "cluster: $url, instances (pids) $instances, redis port $redis_port"

ticks=$(getconf CLK_TCK)
cpu_of() {  # CPU seconds (user + system) of the given pids
  local t=0
  for p in "$@"; do
    local f
    read -r -a f <"/proc/$p/stat"
    t=$((t + f[13] + f[14]))
  done
  awk -v t="$t" -v k="$ticks" 'BEGIN { printf "%.2f", t / k }'
}
redis_stat() { redis-cli -p "$redis_port" INFO "$1" | tr -d '\r' | sed -n "s/^$2//p"; }
publishes() { redis_stat commandstats 'cmdstat_publish:calls=' | cut -d, -f1; }
out_bytes() { redis_stat stats 'total_net_output_bytes:'; }
redis_cpu() { awk -v u="$(redis_stat cpu 'used_cpu_user:')" -v s="$(redis_stat cpu 'used_cpu_sys:')" 'BEGIN { printf "%.2f", u + s }'; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
commits() { /usr/lib/postgresql/15/bin/psql "$db_url" -Atc "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"; }

snapshot() { echo "$(publishes) $(out_bytes) $(commits) $(cpu_of $instances) $(redis_cpu)"; }
for rate in "${rates[@]}"; do
  # Counted from the first send (registrations, the room, the connects and the badge reads
  # they set off, given SETTLE seconds, default 3, are not part of it) to the end of the run,
  # drain included.
  before="" result=""
  while IFS= read -r line; do
    [[ "$line" == sending:* ]] && before=$(snapshot)
    [[ "$line" == RESULT* ]] && result=$line
  done < <("$bench" fanout --url "$url" --members "$members" --senders 1 --rate "$rate" --duration "$duration" --settle "${SETTLE:-3}")
  after=$(snapshot)
  echo "$result"
  [[ -n "$before" && -n "$result" ]] || continue
  read -r p0 b0 x0 c0 r0 <<<"$before"
  read -r p1 b1 x1 c1 r1 <<<"$after"
  msgs=$(sed -n 's/.* messages=\([0-9]*\) .*/\1/p' <<<"$result")
  deliveries=$(sed -n 's/.* deliveries=\([0-9]*\) .*/\1/p' <<<"$result")
  [[ "${msgs:-0}" -gt 0 ]] || continue
  echo "PER_MESSAGE rate=$rate messages=$msgs redis_publishes=$(calc "(${p1:-0} - ${p0:-0}) / $msgs")" \
    "redis_out_bytes=$(( (b1 - b0) / msgs ))" \
    "pg_commits=$(calc "($x1 - $x0) / $msgs")" \
    "instances_cpu_s=$(calc "$c1 - $c0") redis_cpu_s=$(calc "$r1 - $r0")" \
    "deliveries_per_instance_cpu_s=$(calc "$deliveries / ($c1 - $c0 + 0.001)" 0)"
done
