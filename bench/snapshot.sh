#!/usr/bin/env bash
# Copies the built package (dist/, the native addon, package.json) and the
# built benchmark (bench/dist/) into a private directory so a long benchmark
# run is not disturbed by concurrent rebuilds of /work/main/dist or build/
# (scripts/build-ts.mjs deletes dist/, a clean native build deletes
# build/Release).
# Usage: bench/snapshot.sh [DIR]   then: node DIR/dist/esm/cli/cli.js microbenchmark
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-/tmp/rayts-bench-snapshot}"
addon="$root/build/Release/rayts_native.node"
for f in "$addon" "$root/dist/esm/cli/cli.js" "$root/dist/esm/index.js" "$root/bench/dist/microbenchmark.js"; do
  [ -f "$f" ] || { echo "snapshot: $f is missing (a build is running or never ran); the old snapshot is kept" >&2; exit 1; }
done
tmp="$(mktemp -d "${dir}.new.XXXXXX")"
mkdir -p "$tmp/build/Release" "$tmp/bench"
cp -a "$root/package.json" "$root/dist" "$tmp/"
cp -a "$addon" "$tmp/build/Release/"
cp -a "$root/bench/dist" "$tmp/bench/"
ln -s "$root/node_modules" "$tmp/node_modules"
rm -rf "$dir"
mv "$tmp" "$dir"
echo "$dir"
