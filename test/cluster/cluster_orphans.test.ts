// The daemons of a Cluster (rayts/testing) never outlive the process that
// started them: a child process starts a 2-node Cluster and is SIGKILLed
// (no shutdown() runs); every daemon it started stops on its own (each
// reads EOF on its lifeline pipe) within a bound, cleanly (its session
// directory removed).
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tempDir } from '../support/fs.js';
import { alive } from '../support/process.js';
import { until } from '../support/wait.js';

const TESTING = pathToFileURL(fileURLToPath(new URL('../../dist/esm/testing/index.js', import.meta.url))).href;
const dir = tempDir('cluster-orphans');
let pids: number[] = [];
let childPid: number | undefined;

afterAll(() => {
  for (const pid of [childPid, ...pids]) {
    if (pid === undefined) continue;
    try {
      process.kill(pid, 'SIGKILL'); // only if the test failed: they should be gone
    } catch {
      // gone, as expected
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

// The node session directories under `dir` (a daemon that stops cleanly removes its own).
function sessionDirs(): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => /(^|\/)session_[^/]+$/.test(f));
}

describe('Cluster daemons', () => {
  it('stop when the process that started them is SIGKILLed', async () => {
    const script = path.join(dir, 'start_cluster.mjs');
    fs.writeFileSync(script, [
      `import { Cluster } from '${TESTING}';`,
      'const c = await Cluster.start({ head: { numCpus: 1 }, nodes: [{ numCpus: 1 }] });',
      'process.stdout.write(JSON.stringify(c.nodes.map((n) => n.pid)) + "\\n");',
      'setInterval(() => undefined, 1000); // until killed',
    ].join('\n'));
    // Its Cluster's temp dir goes under `dir` (os.tmpdir() follows TMPDIR), removed below.
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: dir } });
    childPid = child.pid;
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await until(() => out.includes(']\n') || child.exitCode !== null, 60_000, 'the child to start its cluster');
    const daemons = JSON.parse(/\[[\d,]+\]/.exec(out)?.[0] ?? 'null') as number[] | null;
    expect(daemons, out).not.toBeNull();
    pids = [...(daemons as number[])];
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(alive(pid)).toBe(true);
    expect(sessionDirs()).toHaveLength(2);

    const t0 = performance.now();
    child.kill('SIGKILL');
    await exited;
    await until(() => pids.every((pid) => !alive(pid)), 30_000, `the daemons ${pids.join(', ')} to exit`);
    // They stopped cleanly (not killed): each removed its session directory.
    await until(() => sessionDirs().length === 0, 10_000, 'the session directories to go');
    console.log(`${pids.length} daemons gone ${(performance.now() - t0).toFixed(0)} ms after the SIGKILL`);
  }, 120_000);
});
