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
  errorFromRecord,
  recordFromThrown,
  type ErrorRecord,
} from '../../ts/api/errors.js';
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
    expect(e.cause).toStrictEqual({ name: 'TypeError', message: 'bad input', stack: remote.stack });
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
});
