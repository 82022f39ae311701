// Worker output: every line a task or actor prints reaches the driver's
// stdout/stderr with Ray's prefix, `(name pid=N)` for tasks and
// `(ClassName pid=N)` for actors (coloured on a terminal), is kept in the
// session's logs/worker-<id>-<pid>.out/.err (bounded), and is not lost when
// the worker exits at once or the driver shuts down right after the task.
// logToDriver: false keeps it out of the driver. Each case runs a real
// driver process (test/fixtures/log_driver.mjs) and reads what it printed.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DRIVER = fileURLToPath(new URL('../fixtures/log_driver.mjs', import.meta.url));

interface Result {
  taskPid: number;
  actorPid: number;
  files: { name: string; size: number }[];
  taskOut: string;
  taskErr: string;
  actorOut: string;
}

function runDriver(opts: Record<string, unknown>, extra: string[] = [], env: Record<string, string> = {}): Promise<{ out: string; err: string; code: number | null; result: Result }> {
  const child = spawn(process.execPath, [DRIVER, JSON.stringify(opts), ...extra], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`driver did not finish within 60 s:\n${out}\n${err}`)); }, 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (!line) return reject(new Error(`driver printed no RESULT (exit ${code}):\n${out}\n${err}`));
      // `out`: what was printed besides the RESULT line (which quotes the files).
      resolve({ out: out.split('\n').filter((l) => !l.startsWith('RESULT ')).join('\n'), err, code, result: JSON.parse(line.slice(7)) as Result });
    });
  });
}

describe('worker output', () => {
  it('reaches the driver line by line with (name pid=N), (ClassName pid=N) for actors, and is in the log files', async () => {
    const { out, err, code, result } = await runDriver({});
    expect(code).toBe(0);
    expect(out).toContain(`(sayHello pid=${result.taskPid}) hello from task 1\n`);
    expect(err).toContain(`(sayHello pid=${result.taskPid}) err line 1\n`);
    expect(out).toContain(`(Greeter pid=${result.actorPid}) actor says hi\n`);
    // Not a terminal: no colour; markers never printed.
    expect(out).not.toContain('\x1b[');
    expect(out + err).not.toContain('\x1e');
    // The files hold the bare lines.
    expect(result.taskOut).toContain('hello from task 1\n');
    expect(result.taskOut).not.toContain('(sayHello');
    expect(result.taskErr).toContain('err line 1\n');
    expect(result.actorOut).toContain('actor says hi\n');
    for (const f of result.files) expect(f.name).toMatch(/^worker-[0-9a-f]{32}-\d+\.(out|err)(\.1)?$/);
  }, 90_000);

  it('is not lost when the worker exits right after printing, or the driver shuts down right after the task', async () => {
    const { out } = await runDriver({});
    expect(out).toMatch(/\(dies pid=\d+\) last words\n/);
    expect(out).toMatch(/\(quick pid=\d+\) just before shutdown\n/);
  }, 90_000);

  it('logToDriver: false keeps it out of the driver; the log files still have it', async () => {
    const { out, err, result } = await runDriver({ logToDriver: false });
    expect(out).not.toContain('hello from task');
    expect(out).not.toContain('actor says hi');
    expect(out).not.toContain('just before shutdown');
    expect(err).not.toContain('err line');
    expect(result.taskOut).toContain('hello from task 1\n');
    expect(result.taskErr).toContain('err line 1\n');
  }, 90_000);

  it('log files are bounded: past the limit a file is rotated to .1, so a stream keeps at most twice the limit', async () => {
    const limit = 16 * 1024;
    const { result, out } = await runDriver({}, ['big'], { RAYTS_WORKER_LOG_MAX_BYTES: String(limit) });
    // 200 KiB printed by one task: all of it reached the driver...
    expect(out.split('\n').filter((l) => /^\(chatty pid=\d+\) x{1023}$/.test(l))).toHaveLength(200);
    // ...while its files stayed within the bound.
    const outs = result.files.filter((f) => /\.out(\.1)?$/.test(f.name));
    expect(outs.some((f) => f.name.endsWith('.out.1'))).toBe(true);
    for (const f of result.files) expect(f.size).toBeLessThanOrEqual(limit);
  }, 90_000);

  it('is coloured when the driver\'s stream is a terminal', () => {
    const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
    if (!hasScript) {
      console.log('skipped: util-linux script (a pseudo-terminal) is not installed');
      return;
    }
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(DRIVER)} '{}'`;
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const ESC = String.fromCharCode(27);
    expect(r.stdout).toMatch(new RegExp(`${ESC}\\[36m\\(sayHello pid=\\d+\\)${ESC}\\[0m hello from task 1`));
  }, 90_000);
});
