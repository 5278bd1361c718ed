#!/usr/bin/env bash
# Draws docs/bench-rss-p99.png from a bench/compare.sh results file:
#   left:  server RSS per idle socket (KiB) against the number of sockets (idle runs);
#   right: delivery p99 (ms) against the number of member sockets (fanout runs with one
#          sender at the highest paced rate of that size, i.e. 100k deliveries/s in the
#          full matrix), log scale;
# one line per target (Parley, Node ws, Socket.IO).
#   bash bench/plot.sh [RESULTS_FILE] [OUT.png]
# RESULTS_FILE defaults to the newest build/bench/compare-*.txt. Installs gnuplot-nox (Debian)
# when gnuplot is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
in=${1:-$(ls -t build/bench/compare-*.txt 2>/dev/null | head -n 1)}
png=${2:-docs/bench-rss-p99.png}
[[ -n $in && -f $in ]] || { echo "plot.sh: no results file (run bench/compare.sh first, or give one)" >&2; exit 2; }
command -v gnuplot >/dev/null || bash scripts/install-deps.sh --bench

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One data file per target and panel: "x y" sorted by x (the last RESULT of a point wins).
awk -v dir="$tmp" '
  function kv(line, m,   n, i, a, p) {
    delete m
    n = split(line, a, " ")
    for (i = 2; i <= n; i++) { p = index(a[i], "="); if (p) m[substr(a[i], 1, p - 1)] = substr(a[i], p + 1) }
  }
  /^RESULT scenario=idle / {
    kv($0, m); t = m["target"] == "" ? "parley" : m["target"]
    if (m["status"] == "ok" && m["rss_per_conn_kib"] + 0 > 0) rss[t, m["conns"]] = m["rss_per_conn_kib"]
  }
  /^RESULT scenario=fanout / {
    kv($0, m); t = m["target"] == "" ? "parley" : m["target"]
    if (m["senders"] != 1 || m["rate"] + 0 <= 0 || m["p99_ms"] == "") next
    k = t SUBSEP m["members"]
    if (!(k in best) || m["rate"] + 0 >= best[k] + 0) { best[k] = m["rate"]; p99[k] = m["p99_ms"] }
  }
  END {
    for (k in rss) { split(k, a, SUBSEP); print a[2], rss[k] | ("sort -n > " dir "/idle-" a[1] ".dat") }
    for (k in p99) { split(k, a, SUBSEP); print a[2], p99[k] | ("sort -n > " dir "/p99-" a[1] ".dat") }
  }' "$in"
for f in idle p99; do
  for t in parley ws-peer socketio-peer; do [[ -s $tmp/$f-$t.dat ]] || echo "nan nan" >"$tmp/$f-$t.dat"; done
done
title=$(head -n 1 "$in" | sed 's/^# //; s/"/\\"/g')
mkdir -p "$(dirname "$png")"
gnuplot <<EOF
set terminal pngcairo size 1200,480 font "DejaVu Sans,11"
set output "$png"
set multiplot layout 1,2 title "$title" font ",10"
set grid
set key top right
set style data linespoints
set xlabel "idle sockets"
set ylabel "server RSS per socket (KiB)"
set yrange [0:*]
set xrange [0:20000]
set xtics ("1k" 1000, "5k" 5000, "10k" 10000, "19k" 19000)
set title "Server memory per idle WebSocket"
plot "$tmp/idle-parley.dat" u 1:2 t "Parley" lw 2 pt 7 lc rgb "#1f77b4", \
     "$tmp/idle-ws-peer.dat" u 1:2 t "Node ws" lw 2 pt 5 lc rgb "#2ca02c", \
     "$tmp/idle-socketio-peer.dat" u 1:2 t "Socket.IO" lw 2 pt 9 lc rgb "#d62728"
set xlabel "member sockets (log)"
set ylabel "delivery p99 (ms, log)"
set logscale xy
set xrange [70:7000]
set yrange [*:*]
set xtics ("100" 100, "1k" 1000, "5k" 5000)
set key top left
set title "Fan-out p99, one sender, highest paced rate (compare.sh: 100k deliveries/s)"
plot "$tmp/p99-parley.dat" u 1:2 t "Parley" lw 2 pt 7 lc rgb "#1f77b4", \
     "$tmp/p99-ws-peer.dat" u 1:2 t "Node ws" lw 2 pt 5 lc rgb "#2ca02c", \
     "$tmp/p99-socketio-peer.dat" u 1:2 t "Socket.IO" lw 2 pt 9 lc rgb "#d62728"
unset multiplot
EOF
echo "plot.sh: wrote $png from $in"
