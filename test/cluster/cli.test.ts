// The cluster commands of the CLI: `rayts start --head` detaches and prints
// the address, generating the token file (0600); `rayts start --address`
// joins; `rayts status` lists both with their resources (text and JSON) and
// a wrong token is refused there and logged by the GCS; `rayts stop` ends
// the daemons and their workers; a --block daemon stops cleanly on SIGTERM.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childrenOf } from '../support/proc.js';
import { alive } from '../support/process.js';
import { until } from '../support/wait.js';

const CLI = fileURLToPath(new URL('../../dist/esm/cli/cli.js', import.meta.url));
const home = mkdtempSync(path.join(os.tmpdir(), 'rayts-cli-home-'));
const temp = mkdtempSync(path.join(os.tmpdir(), 'rayts-cli-temp-'));
const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
delete env.RAYTS_AUTH_TOKEN;
delete env.RAYTS_ADDRESS;

function rayts(args: string[], extra: NodeJS.ProcessEnv = {}): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...env, ...extra }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The node files of the daemons under the test's temp dir. */
function nodeFiles(): Array<{ pid: number; isHead: boolean; sessionDir: string }> {
  const root = path.join(temp, `rayts-${process.getuid?.() ?? 0}`);
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((n) => n.startsWith('session_')).flatMap((n) => {
    try {
      return [JSON.parse(readFileSync(path.join(root, n, 'node.json'), 'utf8')) as { pid: number; isHead: boolean; sessionDir: string }];
    } catch {
      return [];
    }
  });
}

function daemonPids(): number[] {
  return nodeFiles().map((f) => f.pid);
}

afterAll(() => {
  rayts(['stop', '--temp-dir', temp, '--force']);
  rmSync(home, { recursive: true, force: true });
  rmSync(temp, { recursive: true, force: true });
});

describe('rayts start / status / stop', () => {
  it('a detached head and a joining node, their status, then stop', async () => {
    const head = rayts(['start', '--head', '--port', '0', '--num-cpus', '1', '--resources', '{"disk":2}',
      '--node-ip-address', '127.0.0.1', '--temp-dir', temp]);
    expect(head.err).toBe('');
    expect(head.code).toBe(0);
    const address = /GCS address: (\S+)/.exec(head.out)?.[1] as string;
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    const tokenFile = path.join(home, '.rayts', 'auth_token');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(head.out).toContain('generated now');

    const node = rayts(['start', '--address', address, '--num-cpus', '2', '--node-ip-address', '127.0.0.1', '--temp-dir', temp]);
    expect(node.code).toBe(0);
    expect(node.out).toContain(`joined the cluster at ${address}`);

    const text = rayts(['status', '--address', address]);
    expect(text.code).toBe(0);
    expect(text.out).toContain('Nodes: 2 alive, 0 dead');
    expect(text.out).toMatch(/0\/3 CPU, 0\/2 disk/);
    const json = JSON.parse(rayts(['status', '--address', address, '--json']).out) as {
      nodes: Array<{ alive: boolean; isHead: boolean; resources: Record<string, number>; pid: number }>;
      clusterResources: Record<string, number>;
    };
    expect(json.nodes).toHaveLength(2);
    expect(json.nodes.filter((n) => n.isHead)).toHaveLength(1);
    expect(json.clusterResources).toEqual({ CPU: 3, disk: 2 });

    // A wrong token: refused, and the GCS logs why.
    const wrong = rayts(['status', '--address', address], { RAYTS_AUTH_TOKEN: 'wrong' });
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain("refused this process's auth token");
    const headDir = nodeFiles().find((f) => f.isHead)?.sessionDir as string;
    const log = path.join(headDir, 'logs', 'rayts-node.log');
    await until(() => readFileSync(log, 'utf8').includes('wrong auth token'), 5_000, 'the GCS to log the refused token');

    // The daemons' workers (prestarted, one per CPU) end with them.
    const pids = daemonPids();
    expect(pids).toHaveLength(2);
    const workers = pids.flatMap((p) => childrenOf(p));
    expect(workers.length).toBeGreaterThan(0);
    const stop = rayts(['stop', '--temp-dir', temp]);
    expect(stop.code).toBe(0);
    expect(stop.out).toContain('stopped 2 nodes');
    for (const p of [...pids, ...workers]) await until(() => !alive(p), 10_000, `process ${p} to end`);
    expect(daemonPids()).toEqual([]);
    const after = rayts(['status', '--address', address]);
    expect(after.code).toBe(1);
    expect(after.err).toContain('cannot reach the cluster');
  }, 90_000);

  it('--block stays in the foreground and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI, 'start', '--head', '--port', '0', '--num-cpus', '1', '--block',
      '--node-ip-address', '127.0.0.1', '--temp-dir', temp], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    await until(() => out.includes('is up'), 30_000, 'the node to come up');
    const session = /session (\S+)/.exec(out)?.[1] as string;
    expect(existsSync(session)).toBe(true);
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(out).toContain('stopped');
    expect(existsSync(session)).toBe(false);
  }, 60_000);
});
