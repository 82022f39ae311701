#!/usr/bin/env bash
# Runs `npm run lint` (eslint, tsc --noEmit over ts/ and test/, the native
# signature check), then the suites (gtest via ctest, TypeScript via vitest,
# the wall-clock timing files alone,
# a set of API test files against an ASan+UBSan addon, and the chaos suite
# in ci scale), and ends with one line: "N passed, N
# failed" totalling all; a lint failure counts as one failure. The tests run
# even when lint fails, so one run reports both.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
rc=0
lint_failed=0
npm run lint --silent 2>&1 | tee build/lint.log || { lint_failed=1; rc=1; echo "test-all: npm run lint FAILED (see build/lint.log)"; }
bash scripts/test-core.sh 2>&1 | tee build/ctest.log || rc=1
npx vitest run --reporter=default --reporter=json --outputFile=build/vitest.json 2>&1 || rc=1
# Wall-clock bounds on the caller's own thread (test/timing), one file at a
# time after the main suite.
npx vitest run --config vitest.timing.config.ts --reporter=default --reporter=json --outputFile=build/timing.json 2>&1 || rc=1
# API test files of tasks, objects, actors and refs against an ASan+UBSan
# build of the addon (next to the gtest build: only bindings/ compiles here).
bash scripts/test-asan-api.sh 2>&1 || rc=1
# The reliability suite in its bounded form (test/chaos, ~2 minutes).
RAYTS_CHAOS_SCALE=ci npx vitest run --config vitest.chaos.config.ts --reporter=default --reporter=json --outputFile=build/chaos.json 2>&1 || rc=1
LINT_FAILED=$lint_failed node -e '
const fs = require("fs");
let p = 0, f = 0;
if (process.env.LINT_FAILED === "1") f += 1;
const log = fs.existsSync("build/ctest.log") ? fs.readFileSync("build/ctest.log", "utf8") : "";
const m = /(\d+)% tests passed, (\d+) tests failed out of (\d+)/.exec(log);
if (m) { f += +m[2]; p += +m[3] - +m[2]; } else { f += 1; }
for (const file of ["build/vitest.json", "build/timing.json", "build/vitest-asan.json", "build/chaos.json"]) {
  try {
    const j = JSON.parse(fs.readFileSync(file, "utf8"));
    p += j.numPassedTests; f += j.numFailedTests;
    if (j.numTotalTests === 0) f += 1;
  } catch { f += 1; }
}
console.log(`${p} passed, ${f} failed`);
process.exit(f > 0 ? 1 : 0);
' || rc=1
exit $rc
