// The test-only hooks of the addon (ray._internal.deleteFromStore) exist
// only in builds with RAYTS_TEST_HOOKS (a checkout's `npm run build`, the
// gtest build), not in the prebuilt addons nor a build from source at
// install. Tests that need them skip, with this reason, on an addon without.
import * as ray from 'rayts';

export const hasTestHooks = ray._internal.hasTestHooks();
export const NEEDS_TEST_HOOKS = 'needs the addon\'s test hooks (RAYTS_TEST_HOOKS, on in `npm run build`)';
if (!hasTestHooks) console.warn(`skipping the tests that lose store copies: this addon ${NEEDS_TEST_HOOKS.slice(6)}`);
