// The enums TypeScript names (ts/runtime/native.ts) are exactly the ones the
// addon exports from core/, in the addon's numbering.
import { describe, expect, it } from 'vitest';
import {
  CLUSTER_QUERY_NAMES, ERROR_KIND_NAMES, EVENT_TYPE_NAMES, STATUS_CODE_NAMES, loadAddon,
} from '../../ts/runtime/native.js';

describe('enums exported by the addon', () => {
  const addon = loadAddon();
  const cases: Array<[string, readonly string[], Readonly<Record<string, number>>]> = [
    ['EventType', EVENT_TYPE_NAMES, addon.EventType],
    ['StatusCode', STATUS_CODE_NAMES, addon.StatusCode],
    ['ClusterQuery', CLUSTER_QUERY_NAMES, addon.ClusterQuery],
    ['ErrorKind', ERROR_KIND_NAMES, addon.ErrorKind],
  ];
  for (const [name, names, exported] of cases) {
    it(`${name}: the TypeScript names are the addon's, numbered 0..n-1`, () => {
      expect([...names].sort()).toEqual(Object.keys(exported).sort());
      expect(Object.values(exported).sort((a, b) => a - b)).toEqual(names.map((_, i) => i));
    });
  }
  it('a status code names the condition (not the message text)', () => {
    expect(addon.StatusCode.ObjectExists).not.toBe(addon.StatusCode.ObjectBeingCreated);
  });
});
