// rayts: Ray for TypeScript. The package root re-exports the public API.
export {
  init, shutdown, isInitialized, remote, importModule, put, get, wait, cancel, kill, getActor, exitActor,
  getRuntimeContext, nodes, clusterResources, availableResources, debugStats, storeStats,
} from './api/api.js';
export type { RuntimeContext, NodeInfo, StoreStats, StoreObjectInfo } from './api/api.js';
export { ObjectRef } from './api/object_ref.js';
export { memorySummary, formatMemorySummary, _internal } from './api/memory.js';
export type { MemorySummary, ObjectSummary, ObjectLocation } from './api/memory.js';
export {
  RemoteFunction, MultiReturnRemoteFunction, NoReturnRemoteFunction, StreamingRemoteFunction, ObjectRefGenerator,
} from './api/remote_function.js';
export type { RemoteArgs } from './api/remote_function.js';
export { ActorClass } from './api/actor.js';
export type {
  ActorHandle, ActorMethod, AnyActorHandle, MultiReturnActorMethod, NoReturnActorMethod, StreamingActorMethod, UntypedActorHandle,
} from './api/actor.js';
export {
  RayError, RayTaskError, WorkerCrashedError, ActorDiedError, ObjectLostError, OwnerDiedError,
  GetTimeoutError, TaskCancelledError, ObjectStoreFullError, OutOfMemoryError, RaySystemError,
} from './api/errors.js';
export type { SchedulingStrategy, NodeAffinityStrategy } from './api/scheduling.js';
export type { WorkerExit } from './api/errors.js';
export type { TaskOptions, ActorOptions, ActorMethodOptions, InitOptions, GetOptions, WaitOptions, CancelOptions, RuntimeEnv } from './api/options.js';
