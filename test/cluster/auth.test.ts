// Token authentication on the GCS's TCP port: a driver with a wrong token
// fails init() saying the token was refused, a process with no token is
// told how to get one, garbage and silent connections are closed, and the
// cluster goes on serving the right token. The node servers' and the
// CoreWorkers' TCP ports close garbage the same way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import * as ray from 'rayts';
import { Cluster } from 'rayts/testing';

let cluster: Cluster;
const TOKEN = randomBytes(16).toString('hex');
const savedToken = process.env.RAYTS_AUTH_TOKEN;
const savedHome = process.env.HOME;
let home: string;

function withToken<T>(token: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (token === undefined) delete process.env.RAYTS_AUTH_TOKEN;
  else process.env.RAYTS_AUTH_TOKEN = token;
  return fn().finally(() => { process.env.RAYTS_AUTH_TOKEN = TOKEN; });
}

/** Opens a TCP connection to 127.0.0.1:port (the GCS, a node server, a CoreWorker), writes `bytes` (if any), resolves with how long the server took to close it. */
function closedAfter(port: number, bytes: Buffer | undefined, limitMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`not closed within ${limitMs} ms`)); }, limitMs);
    s.on('connect', () => { if (bytes) s.write(bytes); });
    s.on('error', () => { /* a reset counts as closed */ });
    s.on('close', () => { clearTimeout(timer); resolve(performance.now() - t0); });
    s.resume();
  });
}

beforeAll(async () => {
  // An empty HOME: no ~/.rayts/auth_token to fall back on.
  home = mkdtempSync(path.join(os.tmpdir(), 'rayts-auth-home-'));
  process.env.HOME = home;
  process.env.RAYTS_AUTH_TOKEN = TOKEN;
  cluster = await Cluster.start({
    authToken: TOKEN,
    head: { numCpus: 1, env: { RAYTS_GCS_HANDSHAKE_TIMEOUT_MS: '300' } },
    nodes: [{ numCpus: 1 }],
  });
}, 60_000);

afterAll(async () => {
  await ray.shutdown();
  await cluster?.shutdown();
  if (savedToken === undefined) delete process.env.RAYTS_AUTH_TOKEN;
  else process.env.RAYTS_AUTH_TOKEN = savedToken;
  process.env.HOME = savedHome;
  rmSync(home, { recursive: true, force: true });
}, 30_000);

describe('auth', () => {
  it('a wrong token fails init() with "refused"; no token says how to get one', async () => {
    await withToken('not-the-token', async () => {
      await expect(ray.init({ address: cluster.address })).rejects.toThrow(/refused this process's auth token/);
    });
    expect(ray.isInitialized()).toBe(false);
    await withToken(undefined, async () => {
      await expect(ray.init({ address: cluster.address })).rejects.toThrow(/no auth token .*RAYTS_AUTH_TOKEN/);
    });
    expect(ray.isInitialized()).toBe(false);
  }, 30_000);

  it('garbage, an oversized frame length and a silent connection are closed; the cluster is unharmed', async () => {
    const port = Number(cluster.address.split(':').pop());
    const garbage = await closedAfter(port, randomBytes(64 * 1024), 5_000);
    const huge = Buffer.alloc(8);
    huge.writeUInt32LE(0x7fffffff, 0); // a 2 GiB frame before auth: over the handshake limit
    const oversized = await closedAfter(port, huge, 5_000);
    const silent = await closedAfter(port, undefined, 5_000); // handshake timeout 300 ms
    console.log(`closed: garbage after ${garbage.toFixed(0)} ms, oversized length after ${oversized.toFixed(0)} ms, ` +
      `silent after ${silent.toFixed(0)} ms`);
    expect(silent).toBeGreaterThanOrEqual(250);
    // Many garbage connections at once: each closed, none harms the others.
    await Promise.all(Array.from({ length: 20 }, () => closedAfter(port, randomBytes(1024), 5_000)));

    await ray.init({ address: cluster.address });
    expect((await ray.nodes()).filter((n) => n.alive)).toHaveLength(2);
    expect(await ray.remote((x: number) => x * 2).remote(21)).toBe(42);
    await ray.shutdown();
  }, 30_000);

  it('the node servers\' and a driver\'s TCP ports close garbage and an oversized first frame; tasks go on', async () => {
    await ray.init({ address: cluster.address });
    const ports = (await ray.nodes()).filter((n) => n.alive).map((n) => Number(n.nodeManagerAddress.split(':').pop()));
    // The driver's own address: its unix socket, then @ip:port for processes of other nodes.
    const self = /@127\.0\.0\.1:(\d+)$/.exec((await ray.memorySummary()).address);
    expect(self).not.toBeNull();
    ports.push(Number(self?.[1]));
    expect(ports).toHaveLength(3);
    const huge = Buffer.alloc(8);
    huge.writeUInt32LE(0x7fffffff, 0);
    for (const port of ports) {
      await closedAfter(port, randomBytes(4096), 5_000);
      await closedAfter(port, huge, 5_000);
    }
    // Both nodes still lease: one task needs a whole node's CPU each.
    const where = ray.remote({ numCpus: 1 }, async () => {
      await new Promise((r) => setTimeout(r, 300));
      return (await import('rayts')).getRuntimeContext().nodeId;
    });
    expect(new Set(await ray.get([where.remote(), where.remote()])).size).toBe(2);
    await ray.shutdown();
  }, 30_000);
});
