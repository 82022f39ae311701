#!/usr/bin/env bash
# The two Quick start commands:
#   bash scripts/quickstart.sh demo   install, build, run the demo on an embedded cluster
#   bash scripts/quickstart.sh test   install, build, run every test (ctest + vitest)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  demo) bash scripts/setup.sh && node examples/demo.mjs ;;
  test) bash scripts/setup.sh && bash scripts/test-all.sh ;;
  *) echo "usage: bash scripts/quickstart.sh demo|test" >&2; exit 2 ;;
esac
