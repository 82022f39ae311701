// Worker side of the `(name pid=N)` prefix on worker output: before a
// write to stdout or stderr under a name it has not announced on that
// stream, the worker writes a marker line, `\x1e:task_name:<name>` (or
// `\x1e:actor_name:<ClassName>` in an actor's worker), which the node
// server's WorkerLogs consumes (core/raylet/worker_logs.h). Tasks that
// print nothing cost nothing. Writes to a pipe are synchronous on Linux, so
// a line printed just before the task ends or the process exits is in the
// pipe already, and the node server reads the pipe to its end.

const TASK_MARK = '\x1e:task_name:';
const ACTOR_MARK = '\x1e:actor_name:';

let current = '';
let actor = false;

/** The running task's name (ignored in an actor's worker: its class names it). */
export function setTaskName(name: string): void {
  if (!actor) current = name;
}

/** This worker hosts an actor of class `name`: its output is prefixed with it for good. */
export function setActorName(name: string): void {
  actor = true;
  current = name;
}

type Write = NodeJS.WriteStream['write'];

function wrap(stream: NodeJS.WriteStream): void {
  const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
  let announced = '';
  let announcedActor = false;
  stream.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
    if (current !== announced || actor !== announcedActor) {
      announced = current;
      announcedActor = actor;
      // One name per line: a newline inside a name would end the marker.
      write(`${actor ? ACTOR_MARK : TASK_MARK}${current.replace(/[\r\n]/g, ' ')}\n`);
    }
    return write(chunk, ...rest);
  }) as Write;
}

/** Wraps process.stdout and process.stderr (once, in a worker process). */
export function installLogPrefix(): void {
  wrap(process.stdout);
  wrap(process.stderr);
}
