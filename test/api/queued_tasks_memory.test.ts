// What a queued task costs the driver that submitted it. A million queued
// tasks must fit in about a gigabyte (issue 12: <= 1 KB each; it was ~1.9 KB:
// per task a 36-byte id slice whose first read materialized an ArrayBuffer
// and backing store, a HeldRef and an unregister token per ObjectRef, and
// 144-byte reference-count records). Measured in a driver of its own (test/
// fixtures/queued_tasks_driver.mjs): N tasks behind a held resource, RSS and
// V8 heap after full collections.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DRIVER = fileURLToPath(new URL('../fixtures/queued_tasks_driver.mjs', import.meta.url));

interface Measured { n: number; rssPerTask: number; heapPerTask: number; externalPerTask: number; queued: number; last: string }

function measure(n: number): Measured {
  const r = spawnSync(process.execPath, ['--expose-gc', DRIVER, String(n)], { cwd: ROOT, encoding: 'utf8', timeout: 140_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Measured;
}

describe('queued tasks in the driver', () => {
  it('1,000,000 queued tasks: V8 heap <= 300 B and RSS <= 1,024 B per task (were 445 and 1,920)', () => {
    const m = measure(1_000_000);
    console.log(`1M queued tasks: RSS ${m.rssPerTask.toFixed(0)} B/task, V8 heap ${m.heapPerTask.toFixed(0)} B/task, ` +
      `external ${m.externalPerTask.toFixed(0)} B/task; core queue ${m.queued}`);
    expect(m.queued).toBeGreaterThanOrEqual(1_000_000); // they are queued, not run
    expect(m.last).toMatch(/^[0-9a-f]{40}$/);            // and their refs were alive when measured
    // Measured 189 and 976-983 here (1,145 before the actor-only fields
    // left SubmitRequest and an argument's bytes moved into its record:
    // ~770 B malloc in the core per task: PendingTask 272, ref-count 128,
    // store 96, task map 48, argument 64, queue 16).
    expect(m.heapPerTask).toBeLessThanOrEqual(300);
    expect(m.rssPerTask).toBeLessThanOrEqual(1024);
  }, 150_000);
});
