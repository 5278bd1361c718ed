#!/usr/bin/env bash
# scripts/cluster.sh [N]: several instances behaving as one, on this machine — a throwaway
# PostgreSQL 15 (scripts/with-postgres.sh; fsync off: a demonstration, not a deployment), a
# redis-server, N `parley serve` instances (default 2, at most 8) on one database, one bus and
# one key, and nginx in front of them (deploy/nginx/parley.conf through scripts/nginx-conf.sh),
# all on free loopback ports. Prints `cluster ready: http://127.0.0.1:PORT` and the
# instances' addresses, then waits; Ctrl-C (or SIGTERM) stops everything and removes its files.
# PARLEY_BIN=path uses that binary instead of building build/release/parley.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2}
[[ "$n" =~ ^[1-8]$ ]] || { echo "cluster.sh: N must be 1 to 8" >&2; exit 2; }

bash scripts/install-deps.sh --test >/dev/null
bin=${PARLEY_BIN:-}
if [[ -z "$bin" ]]; then
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF >/dev/null
  cmake --build build/release --target parley >/dev/null
  bin=build/release/parley
fi

work=$(mktemp -d /tmp/parley-cluster.XXXXXX)
pids=()
stop() {
  trap - INT TERM EXIT
  echo "cluster: stopping"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bash scripts/with-postgres.sh stop "$work/pg" || true
  rm -rf "$work"
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

# A port nothing listens on now (bash's /dev/tcp; a race with another process is possible),
# below the kernel's range of ephemeral ports, which outgoing connections take without
# listening (a probe would find them free and the bind would fail).
ephemeral_low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
  local p span=$((ephemeral_low > 12000 ? ephemeral_low - 10000 : 20000))
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % span))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "cluster.sh: no free port" >&2
  return 1
}
# wait_for FILE PATTERN: until a line of FILE matches (30 s at most); prints the match.
wait_for() {
  for _ in $(seq 1 300); do
    if grep -m1 -oE "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "cluster.sh: timed out waiting for $2 in $1:" >&2
  cat "$1" >&2 || true
  return 1
}

bash scripts/with-postgres.sh start "$work/pg" >/dev/null
psql_url="postgres://parley@/postgres?host=$work/pg"
db_url="postgres://parley@/parley?host=$work/pg"
/usr/lib/postgresql/15/bin/psql "$psql_url" -qc 'CREATE DATABASE parley' >/dev/null

# Another port when the chosen one was taken meanwhile (redis-server then exits at once).
for try in 1 2 3 4 5; do
  redis_port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --daemonize no \
    >"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 1 300); do
    grep -q 'Ready to accept connections' "$work/redis.log" && break
    kill -0 "$redis_pid" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q 'Ready to accept connections' "$work/redis.log"; then break; fi
  kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  [[ $try -lt 5 ]] || { echo "cluster.sh: redis-server did not start:" >&2; cat "$work/redis.log" >&2; exit 1; }
done
pids+=("$redis_pid")

head -c 48 /dev/urandom | base64 | tr -d '\n' >"$work/jwt.key"
chmod 600 "$work/jwt.key"
upstreams=()
for i in $(seq 1 "$n"); do
  "$bin" serve --listen 127.0.0.1:0 --db "$db_url" --bus "redis://127.0.0.1:$redis_port" \
    --jwt-secret-file "$work/jwt.key" --trusted-proxy 127.0.0.1 >"$work/parley-$i.out" 2>"$work/parley-$i.log" &
  pids+=($!)
done
for i in $(seq 1 "$n"); do
  addr=$(wait_for "$work/parley-$i.out" 'listening on http://[^ ]+')
  upstreams+=("${addr#listening on http://}")
done

nginx_port=$(free_port)
bash scripts/nginx-conf.sh "$work/nginx" "127.0.0.1:$nginx_port" "${upstreams[@]}"
nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
pids+=($!)
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$nginx_port") 2>/dev/null && break
  sleep 0.1
done

echo "cluster ready: http://127.0.0.1:$nginx_port"
echo "instances: ${upstreams[*]} (logs in $work)"
echo "database: $db_url; bus: redis://127.0.0.1:$redis_port"
# Until a signal, or until any part exits by itself.
wait -n "${pids[@]}" || true
echo "cluster: a process exited on its own; see $work"
