// Shared helpers of the reliability ("chaos") suite: scale, worker discovery,
// a SIGKILL chaos monkey, memory sampling and the figures report.
import { appendFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * RAYTS_CHAOS_SCALE=ci (set by scripts/test-all.sh) runs the bounded form
 * that .ci/run can afford; unset (npm run test:chaos) runs the sizes.
 */
export const CI = process.env.RAYTS_CHAOS_SCALE === 'ci';
export const scaled = (full: number, ci: number): number => (CI ? ci : full);

/** Pids of this process's children that are rayts workers (embedded mode). */
export function workerPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may contain spaces, so split after ')'
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== process.pid) continue;
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmd.includes('worker_main')) out.push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** SIGKILLs one random worker every `periodMs` until stopped. */
export function startChaosMonkey(periodMs: number): { stop(): number; killed(): number } {
  let killed = 0;
  const timer = setInterval(() => {
    const pids = workerPids();
    if (pids.length === 0) return;
    const pid = pids[Math.floor(Math.random() * pids.length)]!;
    try {
      process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      // already gone
    }
  }, periodMs);
  return {
    stop(): number {
      clearInterval(timer);
      return killed;
    },
    killed: (): number => killed,
  };
}

/**
 * The side effects tasks left in `dir`: one file per task id, a line per run
 * holding the task's input. `files`: how many; `inputs`: the inputs named;
 * `mixed`: files naming more than one input; `reruns`: runs past the first.
 */
export function sideEffects(dir: string): { files: number; inputs: Set<number>; mixed: number; reruns: number } {
  const names = readdirSync(dir);
  const inputs = new Set<number>();
  let mixed = 0;
  let reruns = 0;
  for (const f of names) {
    const lines = readFileSync(path.join(dir, f), 'utf8').trim().split('\n');
    if (new Set(lines).size !== 1) mixed++;
    inputs.add(Number(lines[0]));
    reruns += lines.length - 1;
  }
  return { files: names.length, inputs, mixed, reruns };
}

/** Resident set size of a process in bytes (VmRSS). */
export function rssOf(pid: number = process.pid): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

const reportFile = path.resolve(process.cwd(), 'build', 'chaos-report.jsonl');

/** Appends one figures record to build/chaos-report.jsonl and prints it. */
export function report(name: string, figures: Record<string, number | string>): void {
  const line = JSON.stringify({ name, scale: CI ? 'ci' : 'full', at: new Date().toISOString(), ...figures });
  mkdirSync(path.dirname(reportFile), { recursive: true });
  appendFileSync(reportFile, line + '\n');
  console.log(`[chaos] ${line}`);
}

export const MiB = 1024 * 1024;
