#!/usr/bin/env bash
# Builds the gtest suite of core/ with AddressSanitizer + UBSan and runs it
# with ctest. Prints ctest's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-tests -DRAYTS_BUILD_TESTS=ON -DRAYTS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-tests -j"$(nproc)" --target rayts_core_tests
cd build-tests && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$(nproc)"
