#!/usr/bin/env bash
# Installs the Debian 12 packages Parley needs to build, run and test (--test) or benchmark
# against its peers (--bench: Node, gnuplot). Only what is missing
# is installed; `apt-get update` runs once, and only when something is missing.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev sqlite3 libpq-dev libsodium-dev libssl-dev libjwt-dev
  libspdlog-dev libfmt-dev libcli11-dev libhiredis-dev
  libicu-dev
)
if [[ "${1:-}" == "--test" ]]; then
  # redis-server: the e2e tests of --bus redis:// run their own on a free port (a system
  # service the package may start is not used). e2fsprogs: tests/e2e/storage_faults.test.mjs
  # builds an ext4 image to turn read-only. postgresql-15: the tests start a throwaway server
  # of their own (scripts/with-postgres.sh); the package's system service is not used.
  PKGS+=(libgtest-dev libgmock-dev libbenchmark-dev curl procps nginx e2fsprogs redis-server postgresql-15)
  # The fuzz targets (scripts/fuzz.sh): clang with libFuzzer and the sanitizer runtimes.
  PKGS+=(clang-14 libclang-rt-14-dev)
  # The web client's browser tests (tests/e2e/web_client.test.mjs): Debian's chromium, driven
  # by playwright-core from npm (no downloaded browsers).
  PKGS+=(chromium)
  # Node and npm: any installed build will do (some machines carry a nodejs that bundles npm
  # and conflicts with Debian's npm package); Debian's otherwise.
  command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
  command -v npm >/dev/null 2>&1 || PKGS+=(npm)
fi
if [[ "${1:-}" == "--bench" ]]; then
  # bench/compare.sh runs the peers (bench/peers/) on Node; bench/plot.sh draws with gnuplot.
  PKGS+=(gnuplot-nox procps)
  command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
  command -v npm >/dev/null 2>&1 || PKGS+=(npm)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Servers the tests start themselves (nginx, …) must not be started as system services by
  # their packages: a policy-rc.d that refuses service starts, for the install only.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
  fi
  trap 'if ((made_policy)); then rm -f "$policy"; fi' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
