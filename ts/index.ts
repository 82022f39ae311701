// rayts: Ray for TypeScript. The package root re-exports the public API.
export {
  init, shutdown, isInitialized, remote, importModule, put, get, wait, cancel, kill, getActor, exitActor,
  getRuntimeContext, nodes, clusterResources, availableResources, debugStats, storeStats,
} from './api.js';
export type { RuntimeContext, NodeInfo, StoreStats, StoreObjectInfo } from './api.js';
export { ObjectRef } from './object_ref.js';
export { memorySummary, formatMemorySummary, _internal } from './memory.js';
export type { MemorySummary, ObjectSummary, ObjectLocation } from './memory.js';
export {
  RemoteFunction, MultiReturnRemoteFunction, StreamingRemoteFunction, ObjectRefGenerator,
} from './remote_function.js';
export type { RemoteArgs } from './remote_function.js';
export { ActorClass } from './actor.js';
export type { ActorHandle, ActorMethod } from './actor.js';
export {
  RayError, RayTaskError, WorkerCrashedError, ActorDiedError, ObjectLostError, OwnerDiedError,
  GetTimeoutError, TaskCancelledError, ObjectStoreFullError, OutOfMemoryError, RaySystemError,
} from './errors.js';
export type { TaskOptions, ActorOptions, InitOptions, GetOptions, WaitOptions, CancelOptions, RuntimeEnv } from './options.js';
