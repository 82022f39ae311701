// A node that loses the GCS keeps running and reconnects (logged): a head
// killed and started again on the same port finds the node registered
// again; a node whose GCS stays away past its reconnect timeout stops,
// saying why.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { until } from '../support/wait.js';

const CLI = fileURLToPath(new URL('../../dist/esm/cli/cli.js', import.meta.url));
const temp = mkdtempSync(path.join(os.tmpdir(), 'rayts-reconnect-'));
const token = randomBytes(16).toString('hex');
const procs: ChildProcess[] = [];

interface Daemon { proc: ChildProcess; out: () => string; exit: Promise<number | null> }

function daemon(args: string[], env: Record<string, string> = {}): Daemon {
  const proc = spawn(process.execPath, [CLI, 'start', ...args, '--block', '--num-cpus', '1', '--node-ip-address', '127.0.0.1',
    '--temp-dir', temp, '--object-store-memory', String(64 << 20)], {
    env: { ...process.env, RAYTS_AUTH_TOKEN: token, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(proc);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, out: () => out, exit };
}

async function status(address: string): Promise<Array<{ nodeId: string; alive: boolean }>> {
  const { queryStatus } = await import('../../dist/esm/cluster/status.js');
  return (await queryStatus(address, token)).nodes;
}

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  rmSync(temp, { recursive: true, force: true });
});

describe('losing the GCS', () => {
  it('a node reconnects to a head started again on the same port', async () => {
    const head = daemon(['--head', '--port', '0']);
    await until(() => head.out().includes('is up'), 30_000, 'the head');
    const address = /GCS (\S+);/.exec(head.out())?.[1] as string;
    const port = address.split(':')[1] as string;
    const node = daemon(['--address', address], { RAYTS_GCS_RECONNECT_TIMEOUT_MS: '30000' });
    await until(() => node.out().includes('is up'), 30_000, 'the node');
    const nodeId = /node (\w+) is up/.exec(node.out())?.[1] as string;

    head.proc.kill('SIGKILL');
    await head.exit;
    await until(() => node.out().includes('lost the GCS'), 10_000, 'the node to log the loss');
    expect(node.proc.exitCode).toBe(null); // keeps running

    const t0 = performance.now();
    const head2 = daemon(['--head', '--port', port]);
    await until(() => head2.out().includes('is up'), 30_000, 'the new head');
    await until(() => node.out().includes('reconnected to the GCS'), 15_000, 'the node to reconnect');
    console.log(`node re-registered ${(performance.now() - t0).toFixed(0)} ms after the new head started`);
    await until(async () => (await status(address)).some((n) => n.nodeId === nodeId && n.alive), 10_000, 'the node alive in the new GCS');
    expect((await status(address)).filter((n) => n.alive)).toHaveLength(2);

    node.proc.kill('SIGTERM');
    expect(await node.exit).toBe(0);
    head2.proc.kill('SIGTERM');
    expect(await head2.exit).toBe(0);
  }, 90_000);

  it('a node whose GCS stays away past its reconnect timeout stops and says why', async () => {
    const head = daemon(['--head', '--port', '0']);
    await until(() => head.out().includes('is up'), 30_000, 'the head');
    const address = /GCS (\S+);/.exec(head.out())?.[1] as string;
    const node = daemon(['--address', address], { RAYTS_GCS_RECONNECT_TIMEOUT_MS: '1000' });
    await until(() => node.out().includes('is up'), 30_000, 'the node');
    head.proc.kill('SIGKILL');
    const t0 = performance.now();
    expect(await node.exit).toBe(1);
    console.log(`node stopped ${(performance.now() - t0).toFixed(0)} ms after its GCS died (reconnect timeout 1000 ms)`);
    expect(node.out()).toMatch(/unreachable for 1 s/);
  }, 60_000);
});
