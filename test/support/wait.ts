// Bounded waits on a condition, a marker file or a process exit: the way a
// test waits for something to happen instead of sleeping a fixed time.
import * as fs from 'node:fs';
import { alive } from './process.js';

const POLL_MS = 20;

/** Resolves after `ms`. For pacing a loop or holding a task busy, never as synchronisation. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every 20 ms for up to `ms`; true once it holds, false if it never did. */
export async function eventually(cond: () => Promise<boolean> | boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await sleep(POLL_MS);
  }
}

/** Polls `cond` until it holds; rejects after `ms` naming `what` it waited for. */
export async function until(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  if (!(await eventually(cond, ms))) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Resolves with the file's contents once it exists; rejects after timeoutMs. */
export async function waitForFile(file: string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${file}`);
      await sleep(POLL_MS);
    }
  }
}

/** Resolves once process `pid` has exited (see alive); rejects after timeoutMs. */
export async function waitForExit(pid: number, timeoutMs = 20_000): Promise<void> {
  if (!(await eventually(() => !alive(pid), timeoutMs))) throw new Error(`process ${pid} still alive after ${timeoutMs} ms`);
}
