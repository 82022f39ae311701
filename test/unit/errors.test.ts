import { describe, expect, it } from 'vitest';
import {
  ActorDiedError,
  GetTimeoutError,
  ObjectLostError,
  ObjectStoreFullError,
  OwnerDiedError,
  RayError,
  RaySystemError,
  RayTaskError,
  TaskCancelledError,
  WorkerCrashedError,
  type ErrorRecord,
} from '../../ts/api/errors.js';
import { MAX_DEPENDENCY_NESTING, MAX_ERROR_DETAIL_BYTES, dependencyRecord, errorFromRecord, recordFromThrown } from '../../ts/api/error_records.js';
import { deserialize, serializeToBytes, type RefHooks } from '../../ts/codec/serialization.js';

const noRefs: RefHooks = {
  isRef: () => false,
  encodeRef: () => new Uint8Array(),
  decodeRef: () => ({}),
};

describe('error classes', () => {
  it('each has its name, is a RayError and an Error', () => {
    const all: [RayError, string][] = [
      [new RayTaskError('f', { name: 'Error', message: 'm' }), 'RayTaskError'],
      [new WorkerCrashedError(), 'WorkerCrashedError'],
      [new ActorDiedError('a1'), 'ActorDiedError'],
      [new ObjectLostError('o1'), 'ObjectLostError'],
      [new OwnerDiedError('o2'), 'OwnerDiedError'],
      [new GetTimeoutError('timed out', 5), 'GetTimeoutError'],
      [new TaskCancelledError(), 'TaskCancelledError'],
      [new ObjectStoreFullError(), 'ObjectStoreFullError'],
      [new RaySystemError('x'), 'RaySystemError'],
    ];
    for (const [e, name] of all) {
      expect(e.name).toBe(name);
      expect(e).toBeInstanceOf(RayError);
      expect(e).toBeInstanceOf(Error);
      expect(Object.keys(e)).not.toContain('name');
      expect(String(e).startsWith(name) || String(e).startsWith('RayTaskError(')).toBe(true);
    }
    expect(new RayError('base').name).toBe('RayError');
  });

  it('RayTaskError carries the remote error like Ray does', () => {
    const remote = new TypeError('bad input');
    const e = new RayTaskError('square', { name: remote.name, message: remote.message, stack: remote.stack });
    expect(e.message).toBe(`RayTaskError(TypeError): task square failed: bad input\n${remote.stack}`);
    expect(e.cause).toBeInstanceOf(TypeError);
    expect(e.cause).toMatchObject({ name: 'TypeError', message: 'bad input', stack: remote.stack });
    expect(e.rootCause).toBe(e.cause);
    expect(e.taskName).toBe('square');
    expect(e.stack!.startsWith('RayTaskError(TypeError): task square failed: bad input')).toBe(true);
    expect(e.stack).toContain('errors.test.ts'); // local frames kept
  });

  it('ids are kept', () => {
    expect(new ObjectLostError('ab12').objectId).toBe('ab12');
    expect(new ObjectLostError('ab12').message).toContain('ab12');
    expect(new OwnerDiedError('cd34').objectId).toBe('cd34');
    const died = new ActorDiedError('ff00', 'killed', { name: 'Error', message: 'oom' });
    expect(died.actorId).toBe('ff00');
    expect(died.cause).toStrictEqual({ name: 'Error', message: 'oom' });
  });
});

describe('records', () => {
  it('recordFromThrown + errorFromRecord round-trip a task error', () => {
    let thrownError: unknown;
    try {
      JSON.parse('{');
    } catch (e) {
      thrownError = e;
    }
    const rec = recordFromThrown(thrownError, 'parse');
    expect(rec).toMatchObject({ kind: 'task', name: 'SyntaxError', taskName: 'parse' });
    expect(rec.stack).toContain('SyntaxError');
    // plain data: survives the value codec
    const back = deserialize(serializeToBytes(rec, noRefs), noRefs) as ErrorRecord;
    expect(back).toStrictEqual(rec);
    const e = errorFromRecord(back);
    expect(e).toBeInstanceOf(RayTaskError);
    const te = e as RayTaskError;
    expect(te.cause.name).toBe('SyntaxError');
    expect(te.taskName).toBe('parse');
    expect(te.message).toMatch(/^RayTaskError\(SyntaxError\): task parse failed: /);
  });

  it('a thrown string or other non-Error still gives a useful record', () => {
    const s = recordFromThrown('boom', 'f');
    expect(s).toMatchObject({ kind: 'task', name: 'Error', message: 'boom', taskName: 'f' });
    expect(errorFromRecord(s).message).toContain('task f failed: boom');
    const n = recordFromThrown(42, 'g');
    expect(n.message).toBe('a non-Error value was thrown (number): 42');
    const o = recordFromThrown({ code: 7 }, 'h');
    expect(o.message).toBe('a non-Error value was thrown (object): { code: 7 }');
    expect(recordFromThrown(undefined, 'u').message).toBe('a non-Error value was thrown (undefined): undefined');
    expect(recordFromThrown(null, 'n').message).toBe('a non-Error value was thrown (null): null');
    const like = recordFromThrown({ name: 'HttpError', message: 'not found' }, 'i');
    expect(like).toMatchObject({ name: 'HttpError', message: 'not found' });
    const hostile = {
      get message(): string {
        throw new Error('no');
      },
    };
    expect(recordFromThrown(hostile, 'j').kind).toBe('task');
  });

  it('errorFromRecord maps every kind', () => {
    const base = { name: 'Error', message: 'msg' };
    expect(errorFromRecord({ ...base, kind: 'worker_crashed', taskName: 't' })).toBeInstanceOf(WorkerCrashedError);
    const died = errorFromRecord({ ...base, kind: 'actor_died', actorId: 'a9' });
    expect(died).toBeInstanceOf(ActorDiedError);
    expect((died as ActorDiedError).actorId).toBe('a9');
    const lost = errorFromRecord({ ...base, kind: 'object_lost', objectId: 'o9' });
    expect(lost).toBeInstanceOf(ObjectLostError);
    expect((lost as ObjectLostError).objectId).toBe('o9');
    const owner = errorFromRecord({ ...base, kind: 'owner_died', objectId: 'o8' });
    expect(owner).toBeInstanceOf(OwnerDiedError);
    expect((owner as OwnerDiedError).objectId).toBe('o8');
    expect(errorFromRecord({ ...base, kind: 'cancelled' })).toBeInstanceOf(TaskCancelledError);
    expect(errorFromRecord({ ...base, kind: 'store_full' })).toBeInstanceOf(ObjectStoreFullError);
    expect(errorFromRecord({ ...base, kind: 'system' })).toBeInstanceOf(RaySystemError);
    expect(errorFromRecord({ ...base, kind: 'task', taskName: 'x' })).toBeInstanceOf(RayTaskError);
  });

  // Ray: python/ray/tests/test_basic.py::test_failed_task (CustomException's self.field = 1 reaches the caller).
  it('a record of a thrown error keeps its own fields and cause; built-in classes come back as themselves', () => {
    class QuotaError extends RangeError {
      readonly limit = 5;
      constructor(m: string) {
        super(m);
        this.name = 'QuotaError';
      }
    }
    const thrownError = Object.assign(new QuotaError('over quota'), {
      code: 'E_QUOTA',
      when: new Date(0),
      sizes: new Map([['a', 1]]),
      callback: () => 1,  // does not serialize: left out, alone
    });
    Object.defineProperty(thrownError, 'cause', { value: new TypeError('inner'), enumerable: false });
    const rec = recordFromThrown(thrownError, 'quota');
    const back = JSON.parse(JSON.stringify(rec)) as ErrorRecord;  // records travel as JSON
    const e = errorFromRecord(back) as RayTaskError;
    expect(e).toBeInstanceOf(RayTaskError);
    expect(e.cause.name).toBe('QuotaError');
    const c = e.cause as unknown as Record<string, unknown>;
    expect(c.limit).toBe(5);
    expect(c.code).toBe('E_QUOTA');
    expect(c.when).toStrictEqual(new Date(0));
    expect(c.sizes).toStrictEqual(new Map([['a', 1]]));
    expect('callback' in e.cause).toBe(false);
    expect(e.cause.cause).toBeInstanceOf(TypeError);
    expect((e.cause.cause as Error).message).toBe('inner');
    // Fields past MAX_ERROR_DETAIL_BYTES stay behind; name, message and stack still travel.
    const huge = Object.assign(new TypeError('big'), { blob: 'x'.repeat(MAX_ERROR_DETAIL_BYTES + 1) });
    const hugeRec = recordFromThrown(huge, 'big');
    expect(hugeRec.error).toBeUndefined();
    expect((errorFromRecord(hugeRec) as RayTaskError).cause).toBeInstanceOf(TypeError);
    const builtin = errorFromRecord(recordFromThrown(new RangeError('r'), 'f')) as RayTaskError;
    expect(builtin.cause).toBeInstanceOf(RangeError);
    expect(builtin.rootCause).toBe(builtin.cause);
  });

  // Ray: python/ray/tests/test_traceback.py::test_dep_failure (f(a(b())): each error nests the upstream one).
  it('a dependency record nests the upstream record; a chain deeper than the cap restarts from its first error', () => {
    const root = recordFromThrown(new RangeError('bad input'), 'f');
    const g = dependencyRecord('g', root);
    const h = dependencyRecord('h', JSON.parse(JSON.stringify(g)) as ErrorRecord);
    expect(g).toMatchObject({ kind: 'task', dependency: 1, taskName: 'g', cause: root });
    expect(h).toMatchObject({ kind: 'task', dependency: 1, taskName: 'h', cause: g });
    // The shape core/common/error_record.h writes and reads (DependencyErrorJson).
    expect(JSON.stringify(g).startsWith(
      '{"kind":"task","name":"RayTaskError","message":"a result it depends on failed","dependency":1,"taskName":"g","cause":{',
    )).toBe(true);
    const e = errorFromRecord(h) as RayTaskError;
    expect(e.taskName).toBe('h');
    expect(e.cause).toBeInstanceOf(RayTaskError);
    expect((e.cause as RayTaskError).taskName).toBe('g');
    expect(((e.cause as RayTaskError).cause as RayTaskError).taskName).toBe('f');
    expect(e.rootCause).toBeInstanceOf(RangeError);
    expect(e.rootCause.message).toBe('bad input');
    expect(e.message).toMatch(/^RayTaskError\(RangeError\): task h failed: a result it depends on failed: RayTaskError\(RangeError\): task g failed: /);
    // Past MAX_DEPENDENCY_NESTING records the chain restarts from its first error, counting the tasks between.
    let rec = root;
    for (let i = 0; i < MAX_DEPENDENCY_NESTING + 5; i++) rec = dependencyRecord(`t${i}`, rec);
    let depth = 0;
    for (let r: ErrorRecord | undefined = rec; r?.dependency !== undefined; r = r.cause) depth++;
    expect(depth).toBeLessThanOrEqual(MAX_DEPENDENCY_NESTING);
    const deep = errorFromRecord(rec) as RayTaskError;
    expect(deep.rootCause).toBeInstanceOf(RangeError);
    expect(deep.message).toMatch(/through \d+ more failed tasks/);
    // A RayError rebuilt from a record and thrown again by a task's code: a dependency record too.
    const rethrown = recordFromThrown(errorFromRecord(root), 'k');
    expect(rethrown).toMatchObject({ dependency: 1, taskName: 'k', cause: root });
  });
});
