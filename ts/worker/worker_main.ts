// Entry point of a worker process (spawned by the node server). Connects the
// CoreWorker to the node socket, then executes the tasks pushed to it.
import * as path from 'node:path';
import { Runtime } from '../runtime/runtime.js';
import { setCurrentRuntime } from '../runtime/current.js';
import { Executor } from './executor.js';
import { installLogPrefix } from './log_prefix.js';

const nodeSocket = process.env.RAYTS_NODE_SOCKET;
const sessionDir = process.env.RAYTS_SESSION_DIR;
const workerId = process.env.RAYTS_WORKER_ID;
if (!nodeSocket || !sessionDir || !workerId) {
  process.stderr.write('rayts worker: RAYTS_NODE_SOCKET, RAYTS_SESSION_DIR and RAYTS_WORKER_ID must be set (workers are started by the node server)\n');
  process.exit(2);
}
const rt = new Runtime({
  nodeSocket,
  listenPath: path.join(sessionDir, 'sockets', `w-${workerId.slice(0, 16)}.sock`),
  isDriver: false,
  workerId,
  // Cluster mode: the node's IP, for the TCP listener (the token comes from the node).
  ...(process.env.RAYTS_NODE_IP ? { nodeIp: process.env.RAYTS_NODE_IP } : {}),
  // ray.init({ lineageMaxBytes }) applies to the objects workers own too.
  ...(process.env.RAYTS_LINEAGE_MAX_BYTES ? { lineageMaxBytes: Number(process.env.RAYTS_LINEAGE_MAX_BYTES) } : {}),
});
setCurrentRuntime(rt);
installLogPrefix();
rt.keepAlive();
// A task or actor method that ends the process: callers learn the exit code.
process.on('exit', (code) => {
  if (!rt.closed) rt.core.reportExit(code);
});
const executor = new Executor(rt);
// An error thrown outside any await chain (a timer, an event handler) or a
// promise rejected with no handler, while a task runs: that task fails with
// it (RayTaskError carrying its name, message and stack), as if it had
// thrown; a retry (retryExceptions) runs on another worker. Then the
// worker exits, as Node's default does for both: the process may be in any
// state, and the task's own code may still be running (its reply would
// come late, and the worker runs one task at a time). The node server
// starts a new worker; tasks pipelined behind it are retried elsewhere.
const fatal = (what: string, e: unknown): void => {
  process.stderr.write(`${what} in a task: ${e instanceof Error && e.stack ? e.stack : String(e)}\n`);
  // First tell the callers this worker exits, so that a retry of the task
  // failed next does not go to this worker.
  if (!rt.closed) rt.core.reportExit(1);
  executor.failRunning(e);
  setImmediate(() => process.exit(1));
};
process.on('uncaughtException', (e) => { fatal('Uncaught exception', e); });
process.on('unhandledRejection', (reason) => { fatal('Unhandled promise rejection', reason); });
