// The package works from CommonJS too: require('rayts') gives the same API.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..', '..');

describe('CommonJS entry', () => {
  it("require('rayts') runs a remote function on an embedded cluster", () => {
    const script = `
      const ray = require('rayts');
      (async () => {
        await ray.init({ numCpus: 1, objectStoreMemory: 32 * 1024 * 1024 });
        const mul = ray.remote((a, b) => a * b);
        const v = await mul.remote(6, 7);
        const big = await ray.get(ray.put(new Float64Array(100000).fill(2)));
        process.stdout.write(JSON.stringify({ v, len: big.length, isErr: new ray.RayTaskError('t', { name: 'E', message: 'm' }) instanceof ray.RayError }));
        await ray.shutdown();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const out = execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    expect(JSON.parse(out)).toEqual({ v: 42, len: 100000, isErr: true });
  });
});

describe('CommonJS rayts/testing', () => {
  it("require('rayts/testing') starts a cluster that require('rayts') attaches to", () => {
    const script = `
      const ray = require('rayts');
      const { Cluster } = require('rayts/testing');
      (async () => {
        const c = await Cluster.start({ head: { numCpus: 1 }, authToken: 'cjs-token' });
        process.env.RAYTS_AUTH_TOKEN = 'cjs-token';
        try {
          await ray.init({ address: c.address });
          const v = await ray.remote((a, b) => a * b).remote(6, 7);
          const nodes = (await ray.nodes()).length;
          await ray.shutdown();
          process.stdout.write(JSON.stringify({ v, nodes }));
        } finally {
          await c.shutdown();
        }
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const out = execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(JSON.parse(out)).toEqual({ v: 42, nodes: 1 });
  }, 70_000);
});
