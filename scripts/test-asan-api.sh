#!/usr/bin/env bash
# Runs API test files against an ASan+UBSan build of the addon.
#
# The addon is built in build-tests/, next to the gtest suite (test-core.sh
# builds that first), so it links the same sanitized core library and only
# bindings/ is compiled here. node is not instrumented: libasan is preloaded
# (LD_PRELOAD) into it and, through the inherited environment, into every
# worker; RAYTS_ADDON_PATH makes each process load this addon. Leak checking
# is off (node's own allocations would be reported at exit); any other ASan
# report or UBSan finding aborts the process, which fails its test.
# Prints vitest's summary; writes build/vitest-asan.json.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=(test/api/tasks.test.ts test/api/object_paths.test.ts test/api/actors.test.ts test/api/ownership.test.ts
       test/api/wait.test.ts test/api/many_refs.test.ts test/api/task_crashes.test.ts)
# node's own headers (uv.h too: the addon runs the CoreWorker on node's libuv loop)
NAPI_INC="$(node -p "require('path').resolve(process.execPath, '..', '..', 'include', 'node')")"
ADDON_API="$(node -p "require('path').resolve(require('node-addon-api').include_dir)")"
cmake -S . -B build-tests -DRAYTS_BUILD_TESTS=ON -DRAYTS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_JS_INC="$NAPI_INC" -DNODE_ADDON_API_DIR="$ADDON_API" \
  -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/build-tests/addon" >/dev/null
cmake --build build-tests -j"$(nproc)" --target rayts_native
LIBASAN="$(${CXX:-g++} -print-file-name=libasan.so)"
mkdir -p build
RAYTS_ADDON_PATH="$PWD/build-tests/addon/rayts_native.node" LD_PRELOAD="$LIBASAN" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  npx vitest run "${FILES[@]}" --reporter=default --reporter=json --outputFile=build/vitest-asan.json
