// OOM protection: the node's memory monitor kills the worker of a task that
// pushes node memory past memoryUsageThreshold; the task is retried under
// maxRetries, then get rejects with OutOfMemoryError naming the task, the
// worker's RSS and the usage vs threshold.
//
// Deterministic on a shared machine: the threshold is set just above the
// usage the monitor itself reads at the start (debugStats: memoryUsed /
// memoryTotal), plus HEADROOM; the task allocates and touches 3 x HEADROOM,
// so it crosses the line even if the rest of the machine frees HEADROOM
// meanwhile. While it holds the memory no other task is leased, so it is
// the only candidate to kill.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ray from 'rayts';
import { rejection } from '../support/errors.js';
import { filesIn, tempDir } from '../support/fs.js';

const MiB = 1024 * 1024;
const HEADROOM = 512 * MiB;

async function nodeMemory(): Promise<{ used: number; total: number; threshold: number; kills: number }> {
  const s = (await ray.debugStats()).node;
  return { used: s.memoryUsed!, total: s.memoryTotal!, threshold: s.memoryThreshold!, kills: s.oomKills! };
}

/**
 * Allocates and touches `bytes` (unless the marker `spare-after` says this
 * attempt number may skip it), then holds it for up to 30 s.
 */
const hog = async (dir: string, bytes: number, spareFrom: number): Promise<string> => {
  const fs = await import('node:fs');
  const n = fs.readdirSync(dir).filter((f) => f.startsWith('try-')).length + 1;
  fs.writeFileSync(`${dir}/try-${n}`, String(process.pid));
  if (spareFrom !== 0 && n >= spareFrom) return `spared on try ${n}`;
  const chunks: Buffer[] = [];
  for (let left = bytes; left > 0; left -= 64 * 1024 * 1024) {
    const b = Buffer.allocUnsafeSlow(Math.min(left, 64 * 1024 * 1024));
    b.fill(1); // touch every page: resident
    chunks.push(b);
  }
  await new Promise((r) => setTimeout(r, 30_000));
  return `survived holding ${chunks.length} chunks`;
};

let threshold = 0.95;

beforeAll(async () => {
  // Read the monitor's own view of node memory, then restart with a threshold just above it.
  await ray.init({ numCpus: 1, objectStoreMemory: 32 * MiB });
  const m = await nodeMemory();
  await ray.shutdown();
  threshold = Math.min(0.99, (m.used + HEADROOM) / m.total);
  await ray.init({ numCpus: 1, objectStoreMemory: 32 * MiB, memoryUsageThreshold: threshold });
});
afterAll(() => ray.shutdown());

describe('memory monitor', () => {
  it('runs with the threshold given to init', async () => {
    const m = await nodeMemory();
    expect(m.threshold).toBeCloseTo(threshold, 5);
    expect(m.total).toBeGreaterThan(0);
  });

  it('a task past the threshold is killed; after its retries get rejects with OutOfMemoryError', async () => {
    const dir = tempDir('oom-exhausted');
    const before = (await nodeMemory()).kills;
    const f = ray.remote({ maxRetries: 1, name: 'memoryHog' }, hog);
    const err = await rejection(ray.get(f.remote(dir, 3 * HEADROOM, 0), { timeoutMs: 60_000 }));
    expect(err).toBeInstanceOf(ray.OutOfMemoryError);
    expect(err).toBeInstanceOf(ray.RayError);
    expect(err.message).toContain('memoryHog');
    expect(err.message).toMatch(/RSS \d+ MiB/);
    expect(err.message).toMatch(/memory usage \d+ MiB \/ \d+ MiB/);
    expect(err.message).toContain(threshold.toFixed(3));
    // Tried twice (maxRetries: 1), on two workers, each killed by the monitor.
    const pids = filesIn(dir, 'try-').map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
    expect(pids).toHaveLength(2);
    expect(new Set(pids).size).toBe(2);
    expect((await nodeMemory()).kills - before).toBe(2);
  });

  it('a killed task is retried under its budget and can then succeed', async () => {
    const dir = tempDir('oom-retried');
    const f = ray.remote({ maxRetries: 2 }, hog);
    expect(await ray.get(f.remote(dir, 3 * HEADROOM, 2), { timeoutMs: 60_000 })).toBe('spared on try 2');
    expect(filesIn(dir, 'try-')).toHaveLength(2);
  });

  it('tasks below the threshold are left alone', async () => {
    expect(await ray.get(ray.remote(() => 'fine').remote(), { timeoutMs: 30_000 })).toBe('fine');
  });
});

describe('memoryUsageThreshold validation', () => {
  it('init rejects a threshold outside (0, 1] naming the option', async () => {
    await expect(ray.init({ memoryUsageThreshold: 1.5 })).rejects.toThrow(RangeError);
    await expect(ray.init({ memoryUsageThreshold: 0 })).rejects.toThrow(/memoryUsageThreshold/);
    await expect(ray.init({ memoryUsageThreshold: 'high' as unknown as number })).rejects.toThrow(TypeError);
  });
});
