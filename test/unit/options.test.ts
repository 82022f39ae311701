import { describe, expect, it } from 'vitest';
import { thrown } from '../support/errors.js';
import {
  validateActorOptions,
  validateCancelOptions,
  validateGetOptions,
  validateInitOptions,
  validateTaskOptions,
  validateWaitOptions,
} from '../../ts/api/options.js';

describe('validateTaskOptions', () => {
  it('accepts every valid option and copies them', () => {
    const given = {
      numCpus: 0.5,
      numGpus: 1,
      resources: { disk: 1, 'custom.res': 0 },
      maxRetries: -1,
      retryExceptions: ['TypeError'],
      numReturns: 2,
      name: 'work',
    };
    const out = validateTaskOptions(given, 'ray.remote');
    expect(out).toStrictEqual(given);
    expect(out).not.toBe(given);
    expect(out.resources).not.toBe(given.resources);
    expect(validateTaskOptions({ numReturns: 'streaming', retryExceptions: true }, 'ray.remote')).toStrictEqual({
      numReturns: 'streaming',
      retryExceptions: true,
    });
    expect(validateTaskOptions(undefined, 'ray.remote')).toStrictEqual({});
    expect(validateTaskOptions({ numCpus: undefined }, 'ray.remote')).toStrictEqual({});
  });

  it('unknown option: TypeError listing known names', () => {
    const e = thrown(() => validateTaskOptions({ numCPUs: 1 }, 'ray.remote'));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toBe(
      "unknown option 'numCPUs' for ray.remote (known: numCpus, numGpus, resources, maxRetries, retryExceptions, numReturns, name, schedulingStrategy); did you mean 'numCpus'?",
    );
    expect(thrown(() => validateTaskOptions({ maxRetry: 1 }, '.options()')).message).toMatch(
      /^unknown option 'maxRetry' for \.options\(\) \(known: .*\); did you mean 'maxRetries'\?$/,
    );
    expect(thrown(() => validateTaskOptions({ runtimeEnv: {} }, 'ray.remote')).message).toMatch(
      /^unknown option 'runtimeEnv' for ray\.remote \(known: numCpus, [^)]*\)$/,
    );
  });

  it('not an object', () => {
    const e = thrown(() => validateTaskOptions(5, 'ray.remote'));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toBe('options for ray.remote must be an object, got 5');
    expect(thrown(() => validateTaskOptions([], 'ray.remote')).message).toBe('options for ray.remote must be an object, got an array');
  });

  it('wrong types: TypeError naming the option', () => {
    const cases: [object, string][] = [
      [{ numCpus: '2' }, "numCpus must be a number, got string '2'"],
      [{ numGpus: true }, 'numGpus must be a number, got boolean true'],
      [{ resources: 3 }, 'resources must be an object mapping resource names to amounts, got 3'],
      [{ resources: { disk: 'x' } }, "resources.disk must be a number, got string 'x'"],
      [{ resources: { CPU: 1 } }, 'resources.CPU is not allowed: use numCpus instead'],
      [{ maxRetries: '3' }, "maxRetries must be a number, got string '3'"],
      [{ retryExceptions: 'TypeError' }, "retryExceptions must be a boolean or an array of error names, got string 'TypeError'"],
      [{ retryExceptions: [1] }, 'retryExceptions[0] must be an error name (string), got 1'],
      [{ numReturns: true }, "numReturns must be a non-negative integer or 'streaming', got boolean true"],
      [{ name: 5 }, 'name must be a string, got 5'],
    ];
    for (const [opts, message] of cases) {
      const e = thrown(() => validateTaskOptions(opts, 'ray.remote'));
      expect(e, message).toBeInstanceOf(TypeError);
      expect(e.message).toBe(message);
    }
  });

  it('bad ranges: RangeError naming the option and the value', () => {
    const cases: [object, string][] = [
      [{ numCpus: -1 }, 'numCpus must be >= 0, got -1'],
      [{ numCpus: Infinity }, 'numCpus must be >= 0, got Infinity'],
      [{ numCpus: NaN }, 'numCpus must be a number, got NaN'],
      [{ numGpus: -0.5 }, 'numGpus must be >= 0, got -0.5'],
      [{ resources: { disk: -1 } }, 'resources.disk must be >= 0, got -1'],
      [{ maxRetries: -2 }, 'maxRetries must be an integer >= -1 (-1 retries forever), got -2'],
      [{ maxRetries: 1.5 }, 'maxRetries must be an integer >= -1 (-1 retries forever), got 1.5'],
      [{ numReturns: -1 }, "numReturns must be a non-negative integer or 'streaming', got -1"],
      [{ numReturns: 1.5 }, "numReturns must be a non-negative integer or 'streaming', got 1.5"],
      [{ numReturns: 'stream' }, "numReturns must be a non-negative integer or 'streaming', got 'stream'"],
      [{ name: '' }, 'name must not be empty'],
      [{ numGpus: 0.0000001 }, 'numGpus: the precision of a fractional resource quantity cannot go beyond 0.0001, got 1e-7'],
      [{ numCpus: 0.00005 }, 'numCpus: the precision of a fractional resource quantity cannot go beyond 0.0001, got 0.00005'],
      [{ resources: { custom_resource: 0.0000001 } },
        'resources.custom_resource: the precision of a fractional resource quantity cannot go beyond 0.0001, got 1e-7'],
    ];
    for (const [opts, message] of cases) {
      const e = thrown(() => validateTaskOptions(opts, 'ray.remote'));
      expect(e, message).toBeInstanceOf(RangeError);
      expect(e.message).toBe(message);
    }
  });
});

describe('schedulingStrategy', () => {
  const node = '0123456789abcdef0123456789abcdef';
  it('accepts DEFAULT, SPREAD and a node affinity, for tasks and actors', () => {
    expect(validateTaskOptions({ schedulingStrategy: 'SPREAD' }, 'ray.remote')).toStrictEqual({ schedulingStrategy: 'SPREAD' });
    expect(validateTaskOptions({ schedulingStrategy: 'DEFAULT' }, 'ray.remote').schedulingStrategy).toBe('DEFAULT');
    expect(validateTaskOptions({ schedulingStrategy: { nodeId: node, soft: true } }, '.options()').schedulingStrategy)
      .toStrictEqual({ nodeId: node, soft: true });
    expect(validateActorOptions({ schedulingStrategy: { nodeId: node } }, 'A.options()').schedulingStrategy)
      .toStrictEqual({ nodeId: node });
  });
  it('anything else is a TypeError or RangeError naming the option', () => {
    const cases: Array<[unknown, ErrorConstructor, RegExp]> = [
      ['PACK', RangeError, /^schedulingStrategy must be 'DEFAULT', 'SPREAD' or \{ nodeId, soft \}, got 'PACK'$/],
      [3, TypeError, /^schedulingStrategy must be .* got number$/],
      [null, TypeError, /^schedulingStrategy must be .* got null$/],
      [{ nodeId: 7 }, TypeError, /^schedulingStrategy\.nodeId must be a node id/],
      [{ nodeId: 'node-2' }, RangeError, /^schedulingStrategy\.nodeId must be a node id \(32 lowercase hex digits/],
      [{ nodeId: node, soft: 'yes' }, TypeError, /^schedulingStrategy\.soft must be a boolean, got string$/],
      [{ nodeId: node, hard: true }, TypeError, /^schedulingStrategy: unknown field 'hard'/],
    ];
    for (const [v, cls, msg] of cases) {
      const e = thrown(() => validateTaskOptions({ schedulingStrategy: v }, 'ray.remote'));
      expect(e).toBeInstanceOf(cls);
      expect(e.message).toMatch(msg);
      expect(thrown(() => validateActorOptions({ schedulingStrategy: v }, 'A.options()'))).toBeInstanceOf(cls);
    }
  });
});

describe('validateActorOptions', () => {
  it('accepts the actor options of the API contract', () => {
    const given = {
      name: 'c1',
      namespace: 'ns',
      lifetime: 'detached' as const,
      maxRestarts: 2,
      maxTaskRetries: 1,
      maxConcurrency: 8,
      numCpus: 0,
      getIfExists: true,
    };
    expect(validateActorOptions(given, 'Counter.options()')).toStrictEqual(given);
  });
  it('rejects bad ones', () => {
    expect(thrown(() => validateActorOptions({ lifetime: 'forever' }, 'ray.remote')).message).toBe(
      "lifetime must be 'detached' or 'non_detached', got 'forever'",
    );
    expect(thrown(() => validateActorOptions({ maxConcurrency: 0 }, 'ray.remote'))).toBeInstanceOf(RangeError);
    expect(thrown(() => validateActorOptions({ getIfExists: true }, 'ray.remote')).message).toBe('getIfExists requires a name');
    expect(thrown(() => validateActorOptions({ numReturns: 1 }, 'ray.remote')).message).toMatch(/^unknown option 'numReturns' for ray\.remote/);
  });

  // Ray: python/ray/tests/test_basic.py::test_invalid_arguments ("Check invalid resource quantity").
  it('resource quantities finer than 0.0001 are a RangeError naming the option; 0.0001 and 0 pass', () => {
    for (const opts of [{ numCpus: 0.00001 }, { numGpus: 1e-7 }, { resources: { r: 0.00009 } }]) {
      const e = thrown(() => validateActorOptions(opts, 'ray.remote'));
      expect(e).toBeInstanceOf(RangeError);
      expect(e.message).toContain(Object.keys(opts)[0]!);
      expect(e.message).toContain('cannot go beyond 0.0001');
    }
    expect(validateActorOptions({ numCpus: 0.0001, numGpus: 0, resources: { r: 0.5 } }, 'ray.remote'))
      .toStrictEqual({ numCpus: 0.0001, numGpus: 0, resources: { r: 0.5 } });
    expect(validateTaskOptions({ numCpus: 0.0001 }, '.options()')).toStrictEqual({ numCpus: 0.0001 });
  });
});

describe('validateInitOptions', () => {
  it('accepts valid options', () => {
    const given = {
      address: '10.0.0.1:6379',
      numCpus: 4,
      numGpus: 0,
      resources: { disk: 2 },
      objectStoreMemory: 64 * 1024 * 1024,
      namespace: 'prod',
      runtimeEnv: { envVars: { A: '1' }, workingDir: '/srv/app' },
      logToDriver: false,
      objectSpillingDirectory: '/mnt/spill',
      objectSpillingMaxBytes: 0,
      lineageMaxBytes: 0,
    };
    expect(validateInitOptions(given)).toStrictEqual(given);
    expect(validateInitOptions({ address: 'auto' })).toStrictEqual({ address: 'auto' });
    expect(validateInitOptions({ address: 'localhost:1' })).toStrictEqual({ address: 'localhost:1' });
    expect(validateInitOptions(undefined)).toStrictEqual({});
  });
  it('rejects bad options with precise errors', () => {
    const cases: [object, typeof TypeError | typeof RangeError, string][] = [
      [{ adress: 'x:1' }, TypeError, "unknown option 'adress' for ray.init (known: address, numCpus, numGpus, resources, objectStoreMemory, namespace, runtimeEnv, logToDriver, handleSignals, memoryUsageThreshold, objectSpillingDirectory, objectSpillingMaxBytes, lineageMaxBytes); did you mean 'address'?"],
      [{ address: 6379 }, TypeError, "address must be a string ('host:port' or 'auto'), got 6379"],
      [{ address: 'localhost' }, RangeError, "address must be 'host:port' or 'auto', got 'localhost'"],
      [{ address: 'h:70000' }, RangeError, "address must be 'host:port' or 'auto', got 'h:70000'"],
      [{ numCpus: -2 }, RangeError, 'numCpus must be >= 0, got -2'],
      [{ objectStoreMemory: 1000 }, RangeError, 'objectStoreMemory must be an integer number of bytes >= 1048576 (1 MiB), got 1000'],
      [{ objectStoreMemory: '1G' }, TypeError, "objectStoreMemory must be a number, got string '1G'"],
      [{ namespace: 1 }, TypeError, 'namespace must be a string, got 1'],
      [{ runtimeEnv: { env: {} } }, TypeError, "unknown option 'env' for runtimeEnv (known: envVars, workingDir)"],
      [{ runtimeEnv: { envVars: { A: 1 } } }, TypeError, 'runtimeEnv.envVars.A must be a string, got 1'],
      [{ runtimeEnv: null }, TypeError, 'runtimeEnv must be an object, got null'],
      [{ runtimeEnv: { workingDir: 3 } }, TypeError, 'runtimeEnv.workingDir must be a string, got 3'],
      [{ logToDriver: 'yes' }, TypeError, "logToDriver must be a boolean, got string 'yes'"],
      [{ memoryUsageThreshold: 1.2 }, RangeError, 'memoryUsageThreshold must be a fraction of node memory in (0, 1], got 1.2'],
      [{ memoryUsageThreshold: '0.5' }, TypeError, "memoryUsageThreshold must be a number, got string '0.5'"],
      [{ objectSpillingDirectory: '' }, RangeError, 'objectSpillingDirectory must not be empty'],
      [{ objectSpillingDirectory: 5 }, TypeError, 'objectSpillingDirectory must be a string, got 5'],
      [{ objectSpillingMaxBytes: -1 }, RangeError, 'objectSpillingMaxBytes must be a non-negative integer number of bytes (0 turns spilling off), got -1'],
      [{ objectSpillingMaxBytes: '1G' }, TypeError, "objectSpillingMaxBytes must be a number, got string '1G'"],
      [{ lineageMaxBytes: -1 }, RangeError, 'lineageMaxBytes must be a non-negative integer number of bytes, got -1'],
      [{ lineageMaxBytes: 1.5 }, RangeError, 'lineageMaxBytes must be a non-negative integer number of bytes, got 1.5'],
      [{ lineageMaxBytes: '64M' }, TypeError, "lineageMaxBytes must be a number, got string '64M'"],
    ];
    for (const [opts, cls, message] of cases) {
      const e = thrown(() => validateInitOptions(opts));
      expect(e, message).toBeInstanceOf(cls);
      expect(e.message).toBe(message);
    }
  });
});

describe('get / wait / cancel options', () => {
  it('get', () => {
    expect(validateGetOptions({ timeoutMs: 500 })).toStrictEqual({ timeoutMs: 500 });
    expect(validateGetOptions({ timeoutMs: 0 })).toStrictEqual({ timeoutMs: 0 });
    expect(validateGetOptions({ timeoutMs: Infinity })).toStrictEqual({ timeoutMs: Infinity });
    expect(validateGetOptions(undefined)).toStrictEqual({});
    const e = thrown(() => validateGetOptions({ timeoutMs: -1 }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('timeoutMs must be >= 0 (or Infinity to wait forever), got -1');
    expect(thrown(() => validateGetOptions({ timeout: 5 })).message).toBe("unknown option 'timeout' for ray.get (known: timeoutMs); did you mean 'timeoutMs'?");
    expect(thrown(() => validateGetOptions({ timeoutMs: '5' }))).toBeInstanceOf(TypeError);
  });
  it('wait', () => {
    expect(validateWaitOptions({ numReturns: 2, timeoutMs: 10, fetchLocal: false }, 3)).toStrictEqual({
      numReturns: 2,
      timeoutMs: 10,
      fetchLocal: false,
    });
    expect(thrown(() => validateWaitOptions({ numReturns: 0 })).message).toBe('numReturns must be a positive integer, got 0');
    expect(thrown(() => validateWaitOptions({ numReturns: 5 }, 3)).message).toBe('numReturns must be <= the number of refs (3), got 5');
    expect(thrown(() => validateWaitOptions({ fetchLocal: 1 })).message).toBe('fetchLocal must be a boolean, got 1');
    expect(thrown(() => validateWaitOptions({ timeoutMs: NaN }))).toBeInstanceOf(RangeError);
  });
  it('cancel', () => {
    expect(validateCancelOptions({ force: true, recursive: false })).toStrictEqual({ force: true, recursive: false });
    expect(thrown(() => validateCancelOptions({ force: 'yes' })).message).toBe("force must be a boolean, got string 'yes'");
    expect(thrown(() => validateCancelOptions({ recurse: true })).message).toBe(
      "unknown option 'recurse' for ray.cancel (known: force, recursive); did you mean 'recursive'?",
    );
  });
});
