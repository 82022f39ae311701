// A cluster across two network namespaces: the head daemon runs in one, a
// node in the other, joined by a veth pair with distinct IPs (10.77.0.1 and
// 10.77.0.2), so every hop between the nodes (lease requests, task pushes,
// replies, object chunks, the GCS) crosses a real network stack instead of
// the loopback. The driver runs in the head's namespace (netns_driver.mjs).
// Tasks pinned to the other node run there; a 16 MiB object put on the head
// is read byte-identical there, and one made there is got byte-identical on
// the head. Needs root and `ip` (iproute2): skipped otherwise, with why.
// The namespaces and links are named after this process's pid, removed in
// afterAll (also on failure), and stale ones of dead runs are removed first.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive } from '../support/process.js';

const CLI = fileURLToPath(new URL('../../dist/esm/cli/cli.js', import.meta.url));
const DRIVER = fileURLToPath(new URL('./netns_driver.mjs', import.meta.url));
const PID = process.pid;
const NS_HEAD = `rtsnet${PID}h`;
const NS_NODE = `rtsnet${PID}n`;
const VETH_HEAD = `rtsv${PID}a`;
const VETH_NODE = `rtsv${PID}b`;
const HEAD_IP = '10.77.0.1';
const NODE_IP = '10.77.0.2';

function ip(args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** Why this test cannot run here, or '' when it can. */
function unsupported(): string {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'needs root (ip netns add)';
  const probe = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return '`ip` (iproute2) is not installed';
  const name = `rtsnet${PID}p`;
  const add = ip(['netns', 'add', name]);
  if (!add.ok) return `ip netns add fails here: ${add.out.trim()}`;
  ip(['netns', 'del', name]);
  return '';
}

/** Namespaces and links left by runs of this test whose process is gone. */
function removeStale(): void {
  const names = ip(['netns', 'list']).out.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '');
  for (const n of names) {
    const m = /^rtsnet(\d+)[hnp]$/.exec(n);
    if (m && !alive(Number(m[1]))) ip(['netns', 'del', n]);
  }
  for (const l of ip(['-o', 'link', 'show']).out.split('\n')) {
    const m = /^\d+:\s+(rtsv(\d+)[ab])[@:]/.exec(l);
    if (m && !alive(Number(m[2]))) ip(['link', 'del', m[1]!]);
  }
}

function setUpNetwork(): void {
  const steps: string[][] = [
    ['netns', 'add', NS_HEAD],
    ['netns', 'add', NS_NODE],
    ['link', 'add', VETH_HEAD, 'type', 'veth', 'peer', 'name', VETH_NODE],
    ['link', 'set', VETH_HEAD, 'netns', NS_HEAD],
    ['link', 'set', VETH_NODE, 'netns', NS_NODE],
    ['-n', NS_HEAD, 'addr', 'add', `${HEAD_IP}/24`, 'dev', VETH_HEAD],
    ['-n', NS_NODE, 'addr', 'add', `${NODE_IP}/24`, 'dev', VETH_NODE],
    ['-n', NS_HEAD, 'link', 'set', VETH_HEAD, 'up'],
    ['-n', NS_NODE, 'link', 'set', VETH_NODE, 'up'],
    ['-n', NS_HEAD, 'link', 'set', 'lo', 'up'],
    ['-n', NS_NODE, 'link', 'set', 'lo', 'up'],
  ];
  for (const s of steps) {
    const r = ip(s);
    if (!r.ok) throw new Error(`ip ${s.join(' ')} failed: ${r.out.trim()}`);
  }
}

function tearDownNetwork(): void {
  ip(['netns', 'del', NS_HEAD]); // deleting a namespace deletes its veth end, and so the pair
  ip(['netns', 'del', NS_NODE]);
  ip(['link', 'del', VETH_HEAD]); // left in this namespace if the setup stopped half-way
  ip(['link', 'del', VETH_NODE]);
}

const skipWhy = unsupported();
const token = randomBytes(32).toString('hex');
const temp = mkdtempSync(path.join(os.tmpdir(), 'rayts-netns-'));
const daemons: ChildProcess[] = [];

interface Up { nodeId: string; gcs: string }

/** `rayts start --block` inside namespace `ns`; resolves when it says it is up. */
function startDaemon(ns: string, args: string[]): Promise<Up> {
  const env = { ...process.env, RAYTS_AUTH_TOKEN: token, HOME: temp };
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, 'start', '--block', '--temp-dir', temp, ...args],
    { env, stdio: ['ignore', 'pipe', 'pipe'] });
  daemons.push(proc);
  let log = '';
  return new Promise<Up>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the daemon in ${ns} did not come up in 30 s:\n${log}`)), 30_000);
    const onData = (d: Buffer): void => {
      log = (log + d.toString()).slice(-8192);
      const m = /node ([0-9a-f]+) is up \(pid \d+\); GCS (\S+);/.exec(log);
      if (m) {
        clearTimeout(timer);
        proc.stdout?.removeListener('data', onData);
        proc.stdout?.resume();
        proc.stderr?.resume();
        resolve({ nodeId: m[1]!, gcs: m[2]! });
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-8192); });
    proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`the daemon in ${ns} exited (${sig ?? `code ${code}`}) before it was up:\n${log}`));
    });
  });
}

async function stopDaemons(): Promise<void> {
  // The node first (it unregisters), then the head.
  for (const p of daemons.splice(0).reverse()) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

let head: Up;
let node: Up;

describe.skipIf(skipWhy !== '')(`a cluster across two network namespaces${skipWhy ? ` (skipped: ${skipWhy})` : ''}`, () => {
  beforeAll(async () => {
    removeStale();
    try {
      setUpNetwork();
      head = await startDaemon(NS_HEAD, ['--head', '--port', '0', '--node-ip-address', HEAD_IP, '--num-cpus', '1',
        '--object-store-memory', String(128 << 20)]);
      node = await startDaemon(NS_NODE, ['--address', head.gcs, '--node-ip-address', NODE_IP, '--num-cpus', '2',
        '--object-store-memory', String(128 << 20)]);
    } catch (e) {
      await stopDaemons();
      tearDownNetwork();
      throw e;
    }
  }, 60_000);

  afterAll(async () => {
    try {
      await stopDaemons();
    } finally {
      tearDownNetwork();
      rmSync(temp, { recursive: true, force: true });
    }
  }, 40_000);

  it('runs tasks on the node across the veth pair and moves objects both ways byte-identical', async () => {
    expect(head.gcs.startsWith(`${HEAD_IP}:`)).toBe(true);
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn('ip', ['netns', 'exec', NS_HEAD, process.execPath, DRIVER, head.gcs, node.nodeId],
        { env: { ...process.env, RAYTS_AUTH_TOKEN: token, HOME: temp }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`the driver took over 40 s:\n${stderr}`)); }, 40_000);
      p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      p.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-8192); });
      p.once('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(stdout);
        else reject(new Error(`the driver exited with ${code}:\n${stderr}\n${stdout}`));
      });
    });
    const line = out.trim().split('\n').pop() ?? '';
    const r = JSON.parse(line) as {
      tasks: Array<[number, string]>;
      put: { expected: string; there: string; node: string };
      result: { expected: string; got: string; length: number };
      nodes: Array<{ nodeId: string; alive: boolean; nodeIp: string; nodeManagerAddress: string }>;
      pulled: number;
    };
    expect(r.tasks).toEqual(Array.from({ length: 20 }, (_, i) => [i * 2, node.nodeId]));
    expect(r.put.node).toBe(node.nodeId);
    expect(r.put.there).toBe(r.put.expected);
    expect(r.result.length).toBe(16 << 20);
    expect(r.result.got).toBe(r.result.expected);
    expect(r.pulled).toBeGreaterThanOrEqual(1); // the head pulled the result from the other namespace
    const byId = new Map(r.nodes.map((n) => [n.nodeId, n]));
    expect(byId.get(head.nodeId)?.nodeIp).toBe(HEAD_IP);
    expect(byId.get(node.nodeId)?.nodeIp).toBe(NODE_IP);
    expect(byId.get(node.nodeId)?.nodeManagerAddress.startsWith(`${NODE_IP}:`)).toBe(true);
    expect([...byId.values()].every((n) => n.alive)).toBe(true);
  }, 60_000);
});
