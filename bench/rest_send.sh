#!/usr/bin/env bash
# REST send throughput and latency, with and without group commit.
# Usage: bash bench/rest_send.sh [BIN] [DURATION_S] [CONNECTIONS]
# Starts a throwaway server per run on a temporary SQLite file (synchronous=FULL, WAL),
# registers one user, creates one room and lets wrk POST messages to it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/release/parley}
DUR=${2:-10}
CONNS=${3:-64}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
run() {
  local gc=$1 dir port token room pid
  dir=$(mktemp -d)
  "$BIN" serve --listen 127.0.0.1:0 --db "sqlite:$dir/p.db" --log-level warn --rate-limit-per-sec 0 \
    --group-commit-max "$gc" >"$dir/out" 2>"$dir/err" &
  pid=$!
  for _ in $(seq 50); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
  port=$(grep -o '127.0.0.1:[0-9]*' "$dir/out")
  token=$(curl -s -XPOST "$port/api/auth/register" -d '{"username":"bench","password":"password1"}' |
    sed 's/.*"token":"\([^"]*\)".*/\1/')
  room=$(curl -s -XPOST "$port/api/chatrooms" -H "authorization: Bearer $token" -d '{"name":"bench"}' |
    sed 's/^{"id":"\([0-9]*\)".*/\1/')
  echo -n "group-commit-max=$gc connections=$CONNS: "
  TOKEN=$token ROOM=$room wrk -t2 -c"$CONNS" -d"${DUR}s" -s bench/send.lua "http://$port" | tail -1
  curl -s "$port/metrics" | grep -E '^parley_db_commit_batch_size_(sum|count)' | tr '\n' ' '
  echo
  kill "$pid"; wait "$pid" || true
  rm -rf "$dir"
}
run 256
run 1
