// Retries: retryExceptions (true / a list of error names / a name not in the
// list), maxRetries exhausted (RayTaskError with the original as cause;
// WorkerCrashedError after worker deaths, each try on a new worker), and -1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as ray from 'rayts';
import { rejection } from '../support/errors.js';
import { filesIn, tempDir } from '../support/fs.js';

beforeAll(() => ray.init({ numCpus: 2, objectStoreMemory: 64 * 1024 * 1024 }));
afterAll(() => ray.shutdown());

/** Records one attempt (a file per try) and throws `name` until attempt `okAt` (never if 0). */
const flaky = async (dir: string, name: string, okAt: number): Promise<number> => {
  const fs = await import('node:fs');
  const n = fs.readdirSync(dir).filter((f) => f.startsWith('try-')).length + 1;
  fs.writeFileSync(`${dir}/try-${n}`, String(process.pid));
  if (okAt !== 0 && n >= okAt) return n;
  const e = new Error(`attempt ${n} failed`);
  e.name = name;
  throw e;
};

/** Records its worker's pid, then dies (SIGKILL) until attempt `okAt` (never if 0). */
const crashy = async (dir: string, okAt: number): Promise<number> => {
  const fs = await import('node:fs');
  const n = fs.readdirSync(dir).filter((f) => f.startsWith('pid-')).length + 1;
  fs.writeFileSync(`${dir}/pid-${n}`, String(process.pid));
  if (okAt !== 0 && n >= okAt) return n;
  process.kill(process.pid, 'SIGKILL');
  return -1;
};

describe('retryExceptions', () => {
  it('true: any thrown error is retried until it succeeds', async () => {
    const dir = tempDir('retry-true');
    const f = ray.remote({ retryExceptions: true, maxRetries: 3 }, flaky);
    expect(await ray.get(f.remote(dir, 'Error', 3), { timeoutMs: 30_000 })).toBe(3);
    expect(filesIn(dir, 'try-')).toHaveLength(3);
  });

  it('a list: an error whose name is listed is retried', async () => {
    const dir = tempDir('retry-list');
    const f = ray.remote({ retryExceptions: ['FlakyError', 'OtherError'], maxRetries: 2 }, flaky);
    expect(await ray.get(f.remote(dir, 'FlakyError', 2), { timeoutMs: 30_000 })).toBe(2);
    expect(filesIn(dir, 'try-')).toHaveLength(2);
  });

  it('a list: an error whose name is not listed fails at once with RayTaskError', async () => {
    const dir = tempDir('retry-notlisted');
    const f = ray.remote({ retryExceptions: ['FlakyError'], maxRetries: 3 }, flaky);
    const err = await rejection(ray.get(f.remote(dir, 'TypeError', 0), { timeoutMs: 30_000 }));
    expect(err).toBeInstanceOf(ray.RayTaskError);
    expect((err.cause as { name: string }).name).toBe('TypeError');
    expect(filesIn(dir, 'try-')).toHaveLength(1);
  });

  it('without retryExceptions a thrown error is not retried', async () => {
    const dir = tempDir('retry-none');
    const f = ray.remote({ maxRetries: 3 }, flaky);
    expect(await rejection(ray.get(f.remote(dir, 'Error', 0), { timeoutMs: 30_000 }))).toBeInstanceOf(ray.RayTaskError);
    expect(filesIn(dir, 'try-')).toHaveLength(1);
  });

  it('after maxRetries + 1 tries get rejects with RayTaskError whose cause is the original error', async () => {
    const dir = tempDir('retry-exhausted');
    const f = ray.remote({ retryExceptions: true, maxRetries: 2 }, flaky);
    const err = await rejection(ray.get(f.remote(dir, 'FlakyError', 0), { timeoutMs: 30_000 }));
    expect(err).toBeInstanceOf(ray.RayTaskError);
    const cause = err.cause as { name: string; message: string };
    expect(cause.name).toBe('FlakyError');
    expect(cause.message).toBe('attempt 3 failed');
    expect(filesIn(dir, 'try-')).toHaveLength(3);
  });

  it('maxRetries: -1 retries until it succeeds', async () => {
    const dir = tempDir('retry-forever');
    const f = ray.remote({ retryExceptions: true, maxRetries: -1 }, flaky);
    expect(await ray.get(f.remote(dir, 'Error', 6), { timeoutMs: 30_000 })).toBe(6);
  });

  it('options() can turn retryExceptions on for one call site', async () => {
    const dir = tempDir('retry-options');
    const base = ray.remote({ maxRetries: 1 }, flaky);
    expect(await ray.get(base.options({ retryExceptions: true }).remote(dir, 'Error', 2), { timeoutMs: 30_000 })).toBe(2);
  });

  it('bad retryExceptions values are rejected where given', () => {
    expect(() => ray.remote({ retryExceptions: [''] }, flaky)).toThrow(RangeError);
    expect(() => ray.remote({ retryExceptions: [3 as unknown as string] }, flaky)).toThrow(/retryExceptions\[0\]/);
    expect(() => ray.remote({ retryExceptions: 'yes' as unknown as boolean }, flaky)).toThrow(TypeError);
  });
});

describe('worker deaths', () => {
  it('maxRetries exhausted: WorkerCrashedError after maxRetries + 1 tries, each on a new worker', async () => {
    const dir = tempDir('crash-exhausted');
    const f = ray.remote({ maxRetries: 2 }, crashy);
    const err = await rejection(ray.get(f.remote(dir, 0), { timeoutMs: 60_000 }));
    expect(err).toBeInstanceOf(ray.WorkerCrashedError);
    const pids = filesIn(dir, 'pid-').map((f) => fs.readFileSync(`${dir}/${f}`, 'utf8'));
    expect(pids).toHaveLength(3);
    expect(new Set(pids).size).toBe(3);
  });

  it('maxRetries: -1 retries worker deaths until it succeeds', async () => {
    const dir = tempDir('crash-forever');
    const f = ray.remote({ maxRetries: -1 }, crashy);
    expect(await ray.get(f.remote(dir, 4), { timeoutMs: 60_000 })).toBe(4);
  });

  it('maxRetries: 0 fails on the first death', async () => {
    const dir = tempDir('crash-once');
    const f = ray.remote({ maxRetries: 0 }, crashy);
    expect(await rejection(ray.get(f.remote(dir, 0), { timeoutMs: 60_000 }))).toBeInstanceOf(ray.WorkerCrashedError);
    expect(filesIn(dir, 'pid-')).toHaveLength(1);
  });
});
