#!/usr/bin/env bash
# Parley side by side with Node `ws` and Socket.IO 4 (bench/peers/), in one run, one command:
#   bash bench/compare.sh            # the full matrix (~15 min on 2 cores)
#   bash bench/compare.sh --quick    # a short one (~3 min): fewer sizes, 1 s of sends per run
#   bash bench/compare.sh --table FILE   # only print the table of an earlier results file
# Options: --out FILE (results; default build/bench/compare-DATE.txt), --targets "parley ws-peer
# socketio-peer", --only idle|fanout, --repeat N (every run N times; the table shows the last).
#
# It builds parley and parley-bench (Release, build/release) when they are missing or stale,
# runs `npm ci` in bench/peers when its node_modules is missing, then runs every target
# through
#   idle    1k, 5k, 10k, 19k sockets (the fd limit here is 20,000 per process; parley-bench
#           spreads its source addresses over 127.0.0.2, .3, …)
#   fanout  100 / 1k / 5k members, 1 and 10 senders over WebSocket, paced at 20k and 100k
#           deliveries/s and once as fast as the server acknowledges (64 sends in flight per
#           sender)
# with the server pinned to CPU 0 and parley-bench to CPU 1, configuration by configuration
# (Parley, then ws, then Socket.IO, so that a change of load on the machine hits all three
# alike). Every RESULT line goes to the results file with the load average before each run;
# at the end it prints one table (markdown) with the ratios Parley/peer. bench/plot.sh draws
# the PNG from the same file.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

quick=0 out="" only="" repeat=1 table_only=""
targets="parley ws-peer socketio-peer"
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --out) out=$2; shift ;;
    --targets) targets=$2; shift ;;
    --only) only=$2; shift ;;
    --repeat) repeat=$2; shift ;;
    --table) table_only=$2; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
for t in $targets; do
  case $t in parley|ws-peer|socketio-peer) ;; *) echo "compare.sh: unknown target $t" >&2; exit 2 ;; esac
done
[[ -z $only || $only == idle || $only == fanout ]] || { echo "compare.sh: --only idle|fanout" >&2; exit 2; }
[[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --repeat N (N >= 1)" >&2; exit 2; }

# table FILE: the markdown tables of a results file's RESULT lines (the last of each
# configuration wins).
table() {
  awk '
    function kv(line, m,   n, i, a, p) {
      delete m
      n = split(line, a, " ")
      for (i = 2; i <= n; i++) { p = index(a[i], "="); if (p) m[substr(a[i], 1, p - 1)] = substr(a[i], p + 1) }
    }
    function name(t) { return t == "parley" ? "Parley" : (t == "ws-peer" ? "Node ws" : "Socket.IO") }
    function ratio(a, b) { return (a + 0 > 0 && b + 0 > 0) ? sprintf("%.2f", a / b) : "–" }
    function num(x) { return x == "" ? "–" : x }
    /^# load/ { load[++nl] = $3 }
    /^RESULT scenario=idle / {
      kv($0, m); t = m["target"] == "" ? "parley" : m["target"]; c = m["conns"]
      if (!(c in seen_c)) { seen_c[c] = 1; conns[++nc] = c }
      rss[c, t] = m["rss_per_conn_kib"]; hs[c, t] = m["handshakes_per_s"]
      bad[c, t] = (m["status"] != "ok" || m["failed"] + 0 > 0 || m["closed"] + 0 > 0) ? " (" m["status"] ", failed " m["failed"] ", closed " m["closed"] ")" : ""
    }
    /^RESULT scenario=fanout / {
      kv($0, m); t = m["target"] == "" ? "parley" : m["target"]
      k = m["members"] SUBSEP m["senders"] SUBSEP m["rate"]
      if (!(k in seen_f)) { seen_f[k] = 1; fk[++nf] = k }
      dps[k, t] = m["deliveries_per_s"]; dpc[k, t] = m["deliveries_per_server_cpu_s"]
      p50[k, t] = m["p50_ms"]; p99[k, t] = m["p99_ms"]; scpu[k, t] = m["server_cpu_s"]
      chk[k, t] = m["lost"] "/" m["dup"] "/" m["disorder"] "/" m["closed"] (m["send_failed"] + 0 > 0 ? ", " m["send_failed"] " sends unacked" : "")
      st[k, t] = m["status"]; msgs[k, t] = m["messages"]
    }
    END {
      nt = split("parley ws-peer socketio-peer", T, " ")
      if (nc) {
        print "Idle sockets: server RSS per socket (KiB) and handshakes/s"
        print ""
        print "| sockets | Parley KiB | Node ws KiB | Socket.IO KiB | Parley/ws | Parley/Socket.IO | Parley hs/s | ws hs/s | Socket.IO hs/s | Parley/ws | Parley/Socket.IO |"
        print "|---|---|---|---|---|---|---|---|---|---|---|"
        for (i = 1; i <= nc; i++) {
          c = conns[i]
          printf "| %s | %s%s | %s%s | %s%s | %s | %s | %s | %s | %s | %s | %s |\n", c,
            num(rss[c, "parley"]), bad[c, "parley"], num(rss[c, "ws-peer"]), bad[c, "ws-peer"], num(rss[c, "socketio-peer"]), bad[c, "socketio-peer"],
            ratio(rss[c, "parley"], rss[c, "ws-peer"]), ratio(rss[c, "parley"], rss[c, "socketio-peer"]),
            num(hs[c, "parley"]), num(hs[c, "ws-peer"]), num(hs[c, "socketio-peer"]),
            ratio(hs[c, "parley"], hs[c, "ws-peer"]), ratio(hs[c, "parley"], hs[c, "socketio-peer"])
        }
        print ""
      }
      if (nf) {
        print "Fan-out over WebSocket (rate: messages/s in all, 0 = as fast as acknowledged; checks: lost/dup/disorder/closed, and sends not acknowledged within the 20 s drain)"
        print ""
        print "| members | senders | rate | target | messages | deliveries/s | server CPU s | deliveries per server-CPU-s | Parley ÷ this | p50 ms | p99 ms | Parley p99 ÷ this | checks | status |"
        print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        for (i = 1; i <= nf; i++) {
          k = fk[i]; split(k, kk, SUBSEP)
          for (j = 1; j <= nt; j++) {
            t = T[j]
            if (!((k, t) in dps)) continue
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", kk[1], kk[2], kk[3], name(t),
              msgs[k, t], dps[k, t], scpu[k, t], dpc[k, t], t == "parley" ? "" : ratio(dpc[k, "parley"], dpc[k, t]),
              p50[k, t], p99[k, t], t == "parley" ? "" : ratio(p99[k, "parley"], p99[k, t]), chk[k, t], st[k, t]
          }
        }
        print ""
      }
      if (nl) {
        lo = hi = load[1]
        for (i = 2; i <= nl; i++) { if (load[i] + 0 < lo + 0) lo = load[i]; if (load[i] + 0 > hi + 0) hi = load[i] }
        printf "1-minute load average before the runs: %s–%s\n", lo, hi
      }
    }' "$1"
}

if [[ -n $table_only ]]; then
  table "$table_only"
  exit 0
fi

# Debian packages (only what is missing), the build (incremental: a no-op when up to date)
# and the peers' packages.
bash scripts/install-deps.sh --bench
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$ROOT")}
if [[ ! -f build/release/build.ninja ]]; then
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF >/dev/null
fi
cmake --build build/release --target parley parley-bench
B=$ROOT/build/release/parley-bench S=$ROOT/build/release/parley
if [[ " $targets " == *-peer* ]]; then
  command -v node >/dev/null || { echo "compare.sh: the peers need Node.js (node) on PATH" >&2; exit 1; }
  if [[ ! -d bench/peers/node_modules || bench/peers/package-lock.json -nt bench/peers/node_modules ]]; then
    (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

mkdir -p build/bench
out=${out:-build/bench/compare-$(date -u +%Y%m%dT%H%M%SZ).txt}
log=${out%.txt}.log
{
  echo "# bench/compare.sh$( ((quick)) && echo ' --quick') on $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes'), $(date -u '+%F %T UTC')"
  echo "# $(nproc) CPUs; server pinned to CPU 0, parley-bench to CPU 1; node $(node --version 2>/dev/null || echo -)"
} >"$out"
: >"$log"

# run TARGET SCENARIO ARGS…: one parley-bench run; its RESULT line (or a note) into $out.
failures=0
run() {
  local target=$1 scenario=$2
  shift 2
  local server=(--server-bin "$S")
  [[ $target == parley ]] || server=()
  local i
  for ((i = 0; i < repeat; i++)); do
    echo "# load $(cut -d' ' -f1 /proc/loadavg) before: $target $scenario $*" >>"$out"
    printf '%-14s %-6s %s\n' "$target" "$scenario" "$*"
    local res rc=0
    res=$("$B" "$scenario" --target "$target" "${server[@]}" --server-cpu 0 --client-cpu 1 "$@" 2>>"$log" | tee -a "$log") || rc=$?
    local line
    line=$(grep '^RESULT ' <<<"$res" | tail -n 1 || true)
    if [[ -n $line ]]; then
      echo "$line" >>"$out"
      echo "    ${line#RESULT }" | cut -c1-220
    else
      echo "# no RESULT line (exit $rc): $target $scenario $*" >>"$out"
      echo "    no RESULT line (exit $rc); see $log"
    fi
    ((rc == 0)) || failures=$((failures + 1))
  done
}

if ((quick)); then
  idle_conns=(1000 10000) members_list=(1000) secs=1 max_deliveries=200000
else
  idle_conns=(1000 5000 10000 19000) members_list=(100 1000 5000) secs=3 max_deliveries=1000000
fi

if [[ -z $only || $only == idle ]]; then
  for n in "${idle_conns[@]}"; do
    for t in $targets; do run "$t" idle --conns "$n" --hold 2 --timeout 180; done
  done
fi
if [[ -z $only || $only == fanout ]]; then
  for m in "${members_list[@]}"; do
    for k in 1 10; do
      # Paced at 20k and 100k deliveries/s (rate = deliveries / members), then back to back.
      for d in 20000 100000 0; do
        if ((d > 0)); then
          rate=$((d / m)) msgs=$((d / m * secs))
        else
          rate=0 msgs=$((max_deliveries / m))
        fi
        ((msgs >= 2 * k)) || msgs=$((2 * k))
        for t in $targets; do
          # Parley: 100 users own the member sockets (socket i is user i mod 100), to keep the
          # registrations short; the peers have no users.
          users=()
          [[ $t != parley ]] || users=(--users $((m < 100 ? m : 100)))
          run "$t" fanout --members "$m" "${users[@]}" --senders "$k" --send-via ws --rate "$rate" \
            --messages "$msgs" --settle 1 --drain-timeout 20 --timeout 180
        done
      done
    done
  done
fi
echo "# load $(cut -d' ' -f1 /proc/loadavg) after" >>"$out"

echo
table "$out"
echo
echo "results: $out (parley-bench output: $log)"
((failures == 0)) || echo "$failures run(s) exited non-zero (loss, a closed socket, a timeout or a failed start): see the status column and $log"
