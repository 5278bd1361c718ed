#!/usr/bin/env bash
# scripts/nginx-conf.sh DIR LISTEN UPSTREAM…: writes DIR/nginx.conf (a whole nginx
# configuration whose pid, logs and temporary files stay in DIR) and DIR/parley.conf
# (deploy/nginx/parley.conf with its placeholders filled: nginx listens on LISTEN, e.g.
# 127.0.0.1:8080, and balances over the UPSTREAMs, each HOST:PORT of a `parley serve`).
# Start it with: nginx -p DIR -e DIR/error.log -c DIR/nginx.conf
set -euo pipefail
dir=${1:?usage: nginx-conf.sh DIR LISTEN UPSTREAM…}
listen=${2:?usage: nginx-conf.sh DIR LISTEN UPSTREAM…}
shift 2
(($#)) || { echo "nginx-conf.sh: at least one UPSTREAM" >&2; exit 2; }
site=$(dirname "$0")/../deploy/nginx/parley.conf
servers=""
for u in "$@"; do servers+="    server $u max_fails=3 fail_timeout=5s;\n"; done
mkdir -p "$dir"
for d in body proxy fastcgi uwsgi scgi; do mkdir -p "$dir/$d"; done
chmod 0777 "$dir" "$dir"/{body,proxy,fastcgi,uwsgi,scgi}  # nginx's workers run unprivileged
# The upstream's example servers (the lines after "# PARLEY_UPSTREAMS") become the given ones.
awk -v servers="$servers" -v listen="$listen" '
  /# PARLEY_UPSTREAMS/ { print; printf "%s", servers; skipping = 1; next }
  skipping && /^[[:space:]]*server / { next }
  { skipping = 0; sub(/listen PARLEY_LISTEN;/, "listen " listen ";"); print }
' "$site" >"$dir/parley.conf"
cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log $dir/access.log;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  include $dir/parley.conf;
}
CONF
