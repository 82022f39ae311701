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
new Executor(rt);
