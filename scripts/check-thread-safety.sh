#!/usr/bin/env bash
# Compiles core/ with clang's thread-safety analysis as errors
# (-Werror=thread-safety): GUARDED_BY / REQUIRES annotations
# (core/common/thread_annotations.h) are checked by the compiler. Syntax
# only (no object files); needs the generated FlatBuffers headers of a
# prior build (build/generated, made by `npm run build:native`).
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=""
for c in clang++ clang++-16 clang++-15 clang++-14; do
  if command -v "$c" >/dev/null 2>&1; then cxx="$c"; break; fi
done
if [ -z "$cxx" ]; then
  echo "check-thread-safety: clang++ not found (apt-get install -y clang)" >&2
  exit 1
fi
gen=build/generated
[ -f "$gen/protocol/messages_generated.h" ] || { echo "check-thread-safety: $gen is missing; run npm run build:native first" >&2; exit 1; }
files=$(git ls-files 'core/*.cc' 2>/dev/null || find core -name '*.cc')
# shellcheck disable=SC2086
printf '%s\n' $files | xargs -P "$(nproc)" -n 4 "$cxx" -std=c++20 -fsyntax-only -I. -I"$gen" \
  -DASIO_STANDALONE -DASIO_NO_DEPRECATED -DASIO_HAS_STD_ALIGNED_ALLOC=1 -Wthread-safety -Werror=thread-safety -Wno-unknown-warning-option
echo "check-thread-safety: ok ($(printf '%s\n' $files | wc -l) files, $cxx)"
