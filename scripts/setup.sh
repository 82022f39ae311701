#!/usr/bin/env bash
# Installs everything rayts needs on a fresh Debian machine with Node 20
# (system packages, npm packages), then builds the addon and the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v flatc >/dev/null 2>&1 || need+=(flatbuffers-compiler)
[ -f /usr/include/flatbuffers/flatbuffers.h ] || need+=(libflatbuffers-dev)
[ -f /usr/include/asio.hpp ] || need+=(libasio-dev)
[ -d /usr/src/googletest ] || [ -f /usr/lib/x86_64-linux-gnu/libgtest.a ] || need+=(libgtest-dev)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v g++ >/dev/null 2>&1 || need+=(g++)
# clang: the thread-safety analysis of core/ (scripts/check-thread-safety.sh, part of npm run lint)
command -v clang++ >/dev/null 2>&1 || command -v clang++-14 >/dev/null 2>&1 || need+=(clang)
# iproute2 (`ip`): the network-namespace test (test/cluster/netns.test.ts) needs it and root; it skips
# without them, so only a root setup installs it.
if [ "$(id -u)" = 0 ] && ! command -v ip >/dev/null 2>&1; then need+=(iproute2); fi
if [ ${#need[@]} -gt 0 ]; then
  echo "rayts setup: installing ${need[*]}"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
  else
    echo "rayts setup: missing system packages; run: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
npm run build --silent
