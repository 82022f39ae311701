// `rayts start`, `rayts status`, `rayts stop`: the daemons of a cluster.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import * as path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { headToken, noTokenMessage, readToken, tokenFilePath } from '../cluster/auth.js';
import { startNodeDaemon, type NodeDaemonOptions } from '../cluster/daemon.js';
import { listDaemons, processAlive } from '../cluster/daemon_procs.js';
import { daemonRoot, findLocalCluster, type NodeFile } from '../cluster/node_files.js';
import { createSessionDir } from '../api/session.js';
import { distDir } from '../here.js';
import { formatStatus, queryStatus } from '../cluster/status.js';

interface StartFlags {
  head?: boolean; address?: string; port: number; numCpus?: number; numGpus?: number; resources?: Record<string, number>;
  objectStoreMemory?: number; nodeIpAddress?: string; tempDir?: string; block?: boolean; sessionDir?: string;
}

function intIn(name: string, min: number, max: number): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}], got '${v}'`);
    return n;
  };
}

function nonNegative(name: string): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number, got '${v}'`);
    return n;
  };
}

function resourcesJson(v: string): Record<string, number> {
  let o: unknown;
  try {
    o = JSON.parse(v);
  } catch {
    throw new InvalidArgumentError(`--resources must be a JSON object of numbers, e.g. '{"disk": 1}', got '${v}'`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new InvalidArgumentError(`--resources must be a JSON object, got '${v}'`);
  for (const [k, n] of Object.entries(o)) {
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`--resources: '${k}' must be a non-negative number, got ${JSON.stringify(n)}`);
    if (k === 'CPU' || k === 'GPU') throw new InvalidArgumentError(`--resources: give ${k} with --num-${k.toLowerCase()}s`);
  }
  return o as Record<string, number>;
}

/** The CLI's ESM entry (both builds start daemons through it). */
export function cliPath(): string {
  return path.join(distDir, '..', 'esm', 'cli', 'cli.js');
}

function daemonOptions(f: StartFlags, token: string): NodeDaemonOptions {
  const o: NodeDaemonOptions = { head: f.head === true, port: f.port, token };
  if (f.address !== undefined) o.address = f.address;
  if (f.numCpus !== undefined) o.numCpus = f.numCpus;
  if (f.numGpus !== undefined) o.numGpus = f.numGpus;
  if (f.resources !== undefined) o.resources = f.resources;
  if (f.objectStoreMemory !== undefined) o.objectStoreMemory = f.objectStoreMemory;
  if (f.nodeIpAddress !== undefined) o.nodeIp = f.nodeIpAddress;
  if (f.tempDir !== undefined) o.tempDir = f.tempDir;
  if (f.sessionDir !== undefined) o.sessionDir = f.sessionDir;
  return o;
}

function say(line: string): void {
  process.stdout.write(`${new Date().toISOString()} rayts: ${line}\n`);
}

/**
 * RAYTS_EXIT_WITH_PARENT_FD=N (internal; Cluster of rayts/testing sets it):
 * fd N is one end of a pipe whose other end only the launching process
 * holds; EOF on it means that process is gone (even SIGKILLed), and
 * `onGone` runs once. A pipe, not PR_SET_PDEATHSIG: that one fires when the
 * thread that forked exits, not the process. takeParentPipe takes the
 * variable out of this process's environment (before the node starts, so
 * its workers do not inherit it).
 */
function takeParentPipe(): number | undefined {
  const raw = process.env.RAYTS_EXIT_WITH_PARENT_FD;
  if (raw === undefined) return undefined;
  delete process.env.RAYTS_EXIT_WITH_PARENT_FD;
  const fd = Number(raw);
  if (Number.isInteger(fd) && fd > 2) return fd;
  process.stderr.write(`rayts start: ignoring RAYTS_EXIT_WITH_PARENT_FD=${raw} (not a file descriptor above 2)\n`);
  return undefined;
}

function watchParentPipe(fd: number | undefined, onGone: () => void): void {
  if (fd === undefined) return;
  let fired = false;
  const gone = (): void => {
    if (fired) return;
    fired = true;
    // Its output pipes may be gone with it: later writes must not throw.
    process.stdout.on('error', () => undefined);
    process.stderr.on('error', () => undefined);
    onGone();
  };
  const pipe = new Socket({ fd, readable: true, writable: false });
  pipe.on('data', () => undefined); // nothing is ever written; flowing mode so 'end' comes
  pipe.once('end', gone);
  pipe.once('close', gone);
  pipe.once('error', gone);
  pipe.unref(); // the daemon's own handles keep it alive, not this one
}

/** --block: this process is the daemon until SIGINT/SIGTERM (or the GCS is lost for good, or its launcher exits). */
async function runBlocking(f: StartFlags, token: string): Promise<void> {
  const parentPipe = takeParentPipe();
  const launcher = process.ppid;
  let node;
  try {
    node = startNodeDaemon(daemonOptions(f, token));
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`rayts start: ${msg}\n`);
    if (process.send) process.send({ ok: false, error: msg }, () => process.disconnect());
    process.exitCode = 1;
    return;
  }
  const info = node.info;
  let code = 0;
  // The handlers go in before "is up" is printed: whoever reads that line
  // may send SIGTERM at once, and without a handler it would kill the daemon.
  const stopped = new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const why = node.fatal();
      if (why !== '') {
        process.stderr.write(`rayts node ${info.nodeId}: stopping: ${why}\n`);
        code = 1;
        done();
      }
    }, 250);
    const onSignal = (sig: NodeJS.Signals): void => {
      say(`${sig}: stopping node ${info.nodeId}`);
      done();
    };
    watchParentPipe(parentPipe, () => {
      say(`the process that started this node (pid ${launcher}) is gone: stopping node ${info.nodeId}`);
      done();
    });
    function done(): void {
      clearInterval(timer);
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      resolve();
    }
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  say(`${info.isHead ? 'head node' : 'node'} ${info.nodeId} is up (pid ${process.pid}); GCS ${info.gcsAddress}; session ${info.sessionDir}`);
  if (process.send) process.send({ ok: true, ...info }, () => process.disconnect());
  await stopped;
  node.stop();
  say(`node ${info.nodeId} stopped`);
  process.exit(code);
}

/** Without --block: start the daemon detached, wait until it is up, print how to use it. */
async function startDetached(f: StartFlags, token: string, tokenNote: string): Promise<void> {
  const root = daemonRoot(f.tempDir);
  const sessionDir = createSessionDir(root);
  const logFile = path.join(sessionDir, 'logs', 'rayts-node.log');
  const log = openSync(logFile, 'a', 0o600);
  const startAt = process.argv.indexOf('start');
  const args = [cliPath(), 'start', ...process.argv.slice(startAt + 1), '--block', '--session-dir', sessionDir];
  const child = spawn(process.execPath, args, {
    detached: true, stdio: ['ignore', log, log, 'ipc'], env: { ...process.env, RAYTS_AUTH_TOKEN: token },
  });
  closeSync(log);
  const result = await new Promise<{ ok: true; info: NodeFile } | { ok: false; error: string }>((resolve) => {
    const timer = setTimeout(() => resolve({ ok: false, error: `the node did not come up within 60 s (log: ${logFile})` }), 60_000);
    child.once('message', (m: { ok: boolean; error?: string } & NodeFile) => {
      clearTimeout(timer);
      resolve(m.ok ? { ok: true, info: m } : { ok: false, error: m.error ?? 'failed' });
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ ok: false, error: `the node exited (${sig ?? `code ${code}`}) before it was up; log: ${logFile}` });
    });
  });
  if (!result.ok) {
    process.stderr.write(`rayts start: ${result.error}\n`);
    if (child.exitCode === null) child.kill('SIGKILL');
    process.exitCode = 1;
    return;
  }
  child.unref();
  child.disconnect();
  const i = result.info;
  const lines = i.isHead
    ? [`Started the head node ${i.nodeId} (pid ${child.pid}) of a rayts cluster.`,
      `GCS address: ${i.gcsAddress}`,
      '',
      `  Add a node:        rayts start --address ${i.gcsAddress}`,
      `  Connect a driver:  await ray.init({ address: '${i.gcsAddress}' })   ('auto' finds it on this machine)`,
      '  Status:            rayts status',
      '  Stop:              rayts stop',
      '',
      tokenNote]
    : [`Started node ${i.nodeId} (pid ${child.pid}), joined the cluster at ${i.gcsAddress}.`];
  lines.push(`Logs: ${path.join(i.sessionDir, 'logs')}`);
  process.stdout.write(lines.join('\n') + '\n');
}

export function addClusterCommands(program: Command): void {
  program
    .command('start')
    .description('start a node daemon of a cluster: the head (GCS + node) with --head, or a node that joins the cluster at --address')
    .option('--head', 'start the head node: the GCS (on --port) and a node')
    .option('--address <host:port>', 'join the cluster whose GCS listens there')
    .option('--port <n>', 'head: the GCS port (0: any free port)', intIn('--port', 0, 65535), 6379)
    .option('--num-cpus <n>', 'CPUs of this node (default: the machine\'s)', nonNegative('--num-cpus'))
    .option('--num-gpus <n>', 'GPUs of this node', nonNegative('--num-gpus'))
    .option('--resources <json>', 'custom resources of this node, e.g. \'{"disk": 1}\'', resourcesJson)
    .option('--object-store-memory <bytes>', 'object store size (default: 30% of memory, at most 2 GiB)', intIn('--object-store-memory', 1 << 20, Number.MAX_SAFE_INTEGER))
    .option('--node-ip-address <ip>', 'the IP other nodes reach this one at (default: the first external IPv4 address)')
    .option('--temp-dir <dir>', 'parent of the session directories (default: the system temp dir)')
    .option('--block', 'stay in the foreground as the daemon (Ctrl-C or SIGTERM stops it)')
    .addOption(new Option('--session-dir <dir>', 'internal: the session directory made by the launching rayts start').hideHelp())
    .action(async (f: StartFlags) => {
      if ((f.head === true) === (f.address !== undefined)) {
        process.stderr.write('rayts start: give exactly one of --head (start a cluster) and --address HOST:PORT (join one)\n');
        process.exitCode = 2;
        return;
      }
      let token: string;
      let note = '';
      if (f.head === true) {
        const t = headToken();
        token = t.token;
        note = t.source === 'env'
          ? 'Auth token: taken from RAYTS_AUTH_TOKEN; every node and driver must present it (RAYTS_AUTH_TOKEN or ~/.rayts/auth_token).'
          : `Auth token: ${tokenFilePath()} (${t.source === 'generated' ? 'generated now' : 'existing'}, mode 0600); ` +
            'other machines need it there or in RAYTS_AUTH_TOKEN.';
      } else {
        const t = readToken();
        if (t === undefined) {
          process.stderr.write(`rayts start: ${noTokenMessage(f.address as string)}\n`);
          process.exitCode = 2;
          return;
        }
        token = t;
      }
      if (f.block === true) await runBlocking(f, token);
      else await startDetached(f, token, note);
    });

  program
    .command('status')
    .description('the nodes of a cluster (alive/dead) and its resources, used/total per node and in all')
    .option('--address <host:port>', "the cluster's GCS (default: the cluster started on this machine)")
    .option('--json', 'print it as JSON')
    .action(async (o: { address?: string; json?: boolean }) => {
      const address = o.address ?? findLocalCluster();
      if (address === undefined) {
        process.stderr.write('rayts status: no cluster runs on this machine (start one with rayts start --head), and no --address was given\n');
        process.exitCode = 2;
        return;
      }
      const token = readToken();
      if (token === undefined) {
        process.stderr.write(`rayts status: ${noTokenMessage(address)}\n`);
        process.exitCode = 2;
        return;
      }
      try {
        const s = await queryStatus(address, token);
        process.stdout.write(o.json === true ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s));
      } catch (e) {
        process.stderr.write(`rayts status: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exitCode = 1;
      }
    });

  program
    .command('stop')
    .description("stop this user's rayts node daemons on this machine (and their workers)")
    .option('--temp-dir <dir>', 'only the daemons started with this --temp-dir')
    .option('--grace-ms <n>', 'wait this long after SIGTERM before SIGKILL', intIn('--grace-ms', 0, 600_000), 10_000)
    .option('--force', 'SIGKILL at once')
    .action(async (o: { tempDir?: string; graceMs: number; force?: boolean }) => {
      const want = o.tempDir !== undefined ? path.resolve(o.tempDir) : undefined;
      const procs = listDaemons().filter((d) => want === undefined || d.tempDir === want);
      for (const d of procs) {
        try {
          process.kill(d.pid, o.force === true ? 'SIGKILL' : 'SIGTERM');
        } catch {
          // gone already
        }
      }
      const deadline = Date.now() + o.graceMs;
      let left = procs.filter((d) => processAlive(d.pid));
      while (left.length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        left = left.filter((d) => processAlive(d.pid));
      }
      for (const d of left) {
        try {
          process.kill(d.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      process.stdout.write(procs.length === 0 ? 'rayts stop: no rayts node runs on this machine\n'
        : `rayts stop: stopped ${procs.length} node${procs.length === 1 ? '' : 's'} (pids ${procs.map((d) => d.pid).join(', ')})` +
          `${left.length > 0 ? `; ${left.length} killed after ${o.graceMs} ms` : ''}\n`);
    });
}
