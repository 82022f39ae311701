// Closed inbound connections are removed: the links a process accepted on
// its listen socket (TaskReceiver's inbound links, `inboundLinks` in
// ray.debugStats().core) are counted while open and forgotten once the
// peer closes, whether the peer is a bare socket that connects and leaves
// or an owner that connects anew for every lease it is granted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { readdirSync } from 'node:fs';
import * as ray from 'rayts';
import { until } from '../support/wait.js';

const inbound = async (): Promise<number> => (await ray.debugStats()).core.inboundLinks!;

function driverSocket(): string {
  const root = path.join(os.tmpdir(), `rayts-${process.getuid!()}`);
  const dir = readdirSync(root).find((n) => n.startsWith(`session_${process.pid}_`));
  if (!dir) throw new Error(`no session directory of pid ${process.pid} in ${root}`);
  return path.join(root, dir, 'sockets', 'driver.sock');
}

function connect(sock: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

describe('inbound links', () => {
  beforeAll(async () => { await ray.init({ numCpus: 1 }); });
  afterAll(async () => { await ray.shutdown(); });

  it('200 bare connections to the driver\'s listen socket are counted while open and all gone once closed', async () => {
    const N = 200;
    const start = await inbound();
    const sock = driverSocket();
    const open: net.Socket[] = [];
    for (let i = 0; i < N; i++) open.push(await connect(sock));
    await until(async () => (await inbound()) === start + N, 10_000, `${N} more inbound links`);
    for (const s of open) s.destroy();
    await until(async () => (await inbound()) === start, 10_000, `inbound links back to ${start} after the closes`);
    // And again: a second round neither finds nor leaves anything behind.
    for (let i = 0; i < N; i++) (await connect(sock)).destroy();
    await until(async () => (await inbound()) === start, 10_000, `inbound links back to ${start} after a second round`);
  });

  it('a worker leased 30 times in a row (a new connection from its owner each time) holds only the open ones', async () => {
    const probe = ray.remote(async () => {
      const r = await import('rayts');
      return { pid: process.pid, links: (await r.debugStats()).core.inboundLinks };
    });
    const seen = new Map<number, number[]>();
    for (let i = 0; i < 30; i++) {
      const { pid, links } = await ray.get(probe.remote(), { timeoutMs: 30_000 });
      seen.set(pid, [...(seen.get(pid) ?? []), links!]);
      // The lease goes back once idle (50 ms), closing its connection: the
      // next task gets a new lease and a new connection.
      await until(async () => (await ray.debugStats()).core.leases === 0, 10_000, 'the lease to go back');
    }
    const [pid, counts] = [...seen].sort((a, b) => b[1].length - a[1].length)[0]!;
    expect(counts.length, `rounds on worker ${pid}`).toBeGreaterThanOrEqual(10);
    // Growing by one per lease would reach the number of rounds; the open
    // lease connection (and at most a link or two more) is all there is.
    for (const [, c] of seen) expect(Math.max(...c)).toBeLessThanOrEqual(3);
    expect(counts[counts.length - 1]).toBeLessThanOrEqual(counts[0]!);
  }, 120_000);
});
