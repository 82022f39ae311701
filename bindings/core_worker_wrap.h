// NativeCoreWorker: the JS face of core/core_worker. Calls from JS are short
// non-blocking operations on the CoreWorker (plasma create/get are a short
// blocking round trip to the node server, see BlockingChannel). The
// CoreWorker's sockets run on this thread's libuv loop (UvLoop): a frame is
// read, handled and its events handed to JS in one loop callback. Events
// reach JS as batches: `onEvents` is called (MakeCallback) at the end of the
// loop turn that queued them, or on the next turn when a JS call queued
// them; it drains every queued event with drainEvents(). A stall service
// thread reads the sockets when JS keeps this thread busy (see
// LoopTransport "Stalls"). Converting arguments, return values and the
// event batch between JS and core types is in core_worker_convert.cc.
// The class is declared here and defined by concept in core_worker_wrap.cc
// (construction, events, control plane), core_worker_objects.cc (objects and
// references) and core_worker_tasks.cc (tasks, actors, execution replies).
// Thread safety: JS thread only, like all of bindings/, except the stall
// service thread (it calls LoopTransport::ServiceNow) and `notify` (any
// thread: it goes through UvLoop::Soon).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "bindings/core_worker_convert.h"
#include "bindings/napi_api.h"
#include "bindings/uv_loop.h"
#include "core/core_worker/core_worker.h"

namespace rayts::bindings {

class CoreWorkerWrap : public Napi::ObjectWrap<CoreWorkerWrap> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new NativeCoreWorker({nodeSocket, listenPath, isDriver, jobId, workerId?}, onEvents, kick)
  //   kick(): called when frames were queued this turn; it must arrange one
  //   flush() call at the end of the turn (a microtask).
  explicit CoreWorkerWrap(const Napi::CallbackInfo& info);

  ~CoreWorkerWrap() override;

  // Events queued for JS: who delivers them, from any thread (notify).
  struct Delivery;
  // Reads the sockets from another thread while JS keeps the loop busy.
  struct StallService;

 private:
  void DeliverEvents();  // loop thread, no lock held
  void StopRuntime();
  // Frames were queued by the call just made: have JS flush at turn end.
  void MaybeKick() {
    if (core_ && core_->TakeHostFlushRequest() && !kick_.IsEmpty()) kick_.Call({});
  }

  Napi::Value Flush(const Napi::CallbackInfo& info) {
    if (core_ && !down_) core_->FlushOutbox();
    return info.Env().Undefined();
  }

  bool Alive(Napi::Env env) {
    if (!core_ || down_) {
      Napi::Error::New(env, "rayts: the runtime of this process is shut down").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  Napi::Value Info(const Napi::CallbackInfo& info);

  // One external ArrayBuffer over the whole shared-memory region: values in
  // plasma are read as views over it with no copy. The buffer keeps the
  // CoreWorker (and so the mapping) alive.
  Napi::Value StoreBuffer(const Napi::CallbackInfo& info);

  Napi::Value NextPutId(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    return IdToBuffer(env, core_->objects().NextPutId());
  }

  // putInline(data) -> undefined: the new id is written to the scratch
  // buffer (setScratch), which JS copies out; no Buffer made per call.
  Napi::Value PutInline(const Napi::CallbackInfo& info);

  // setScratch(u8): a JS-owned buffer the addon writes ids into.
  Napi::Value SetScratch(const Napi::CallbackInfo& info);
  // Optional arguments, documented in core_worker_objects.cc: setScratch(u8,
  // kind) also sets the id arena (1) or the value arena (2);
  // putInline(data, idOffset) writes the id into the id arena;
  // tryGet(id, valueOffset) copies an inline value into the value arena and
  // returns its size; plasmaCreate(id, size, spill, sources) flushes the
  // outbox and advises huge pages for untouched large sources.

  // plasmaCreate(id, size) -> offset
  Napi::Value PlasmaCreate(const Napi::CallbackInfo& info);

  Napi::Value PlasmaSeal(const Napi::CallbackInfo& info);

  // plasmaGet(id) -> [offset, size]
  Napi::Value PlasmaGet(const Napi::CallbackInfo& info);

  Napi::Value PlasmaRelease(const Napi::CallbackInfo& info);

  // tryGet(id) -> null (unknown) | false (pending) | true (ready, in plasma)
  //             | Buffer (ready inline value) | {error: string} (ready error)
  Napi::Value TryGet(const Napi::CallbackInfo& info);

  Napi::Value Subscribe(const Napi::CallbackInfo& info);

  Napi::Value AddLocalRef(const Napi::CallbackInfo& info);

  // addLocalRefs(ids, ownerIndex, owners): the refs decoded from one value,
  // counted at once. ids: concatenated 20-byte ids; ownerIndex[i] indexes
  // owners (the distinct owner addresses; '' = this process).
  Napi::Value AddLocalRefs(const Napi::CallbackInfo& info);

  // Weak handles without KeepDuringJob: after a full GC, sweepWeak() tells
  // at once which tracked objects were collected (a FinalizationRegistry
  // would only say so on a later turn, and a WeakRef made in this job keeps
  // its target alive until the job ends). Used for large refs and views
  // under store pressure.
  Napi::Value TrackWeak(const Napi::CallbackInfo& info);
  Napi::Value UntrackWeak(const Napi::CallbackInfo& info) {
    weak_.erase(info[0].ToNumber().Uint32Value());
    return info.Env().Undefined();
  }
  Napi::Value SweepWeak(const Napi::CallbackInfo& info);

  // readyMask(ids) -> Uint8Array, 1 where the object is ready in this process
  // (2: ready, in plasma on another node).
  //   ids: the object ids concatenated (20 bytes each), one native call for all.
  Napi::Value ReadyMask(const Napi::CallbackInfo& info);
  // fetchLocal(ids): ray.wait fetchLocal; a Local event per id once it is on
  // this node (ids concatenated as for readyMask).
  Napi::Value FetchLocal(const Napi::CallbackInfo& info);

  Napi::Value RemoveLocalRefs(const Napi::CallbackInfo& info);

  // core_worker_refs.cc: addLocalRefsPacked(ids, ownerIndex, owners) and
  // removeLocalRefsPacked(ids), ids concatenated (no N-API call per ref).
  Napi::Value AddLocalRefsPacked(const Napi::CallbackInfo& info);
  Napi::Value RemoveLocalRefsPacked(const Napi::CallbackInfo& info);

  // registerTaskClass(hash, source, moduleUrl, exportName, name, resources) -> class id
  //   resources: [name, amount, name, amount, ...]
  Napi::Value RegisterTaskClass(const Napi::CallbackInfo& info);

  // Writes the ids to the scratch buffer (returns undefined) or a new Buffer.
  Napi::Value IdsOut(Napi::Env env, const TaskID& first, const std::vector<ObjectID>& ids);

  // createActor(classId, args) -> actor id (16) + ready id (20), via scratch
  Napi::Value CreateActor(const Napi::CallbackInfo& info);

  // submitActorTask(classId, actorId, method, args, numReturns, maxPending?, maxTaskRetries?, concurrencyGroup?, name?)
  //   -> task id + return ids
  Napi::Value SubmitActorTask(const Napi::CallbackInfo& info);

  // GCS errors reach JS as an Error with .code (the Status code name), which
  // the callers in ts/ branch on (AlreadyExists, NotFound).
  static void ThrowGcs(Napi::Env env, const Status& s) {
    Napi::Error e = Napi::Error::New(env, s.message());
    e.Set("code", Napi::String::New(env, StatusCodeName(s.code())));
    e.ThrowAsJavaScriptException();
  }

  // gcsRegisterActor(actorId, name, namespace, className, detached, getIfExists, maxRestarts, info)
  //   -> null (registered as asked) | [existingActorId, existingInfo] (getIfExists found it)
  Napi::Value GcsRegisterActor(const Napi::CallbackInfo& info);

  // gcsGetNamedActor(namespace, name) -> [actorId, info]; throws NotFound.
  Napi::Value GcsGetNamedActor(const Napi::CallbackInfo& info);

  // gcsKillActor(actorId, cause) / gcsReportActorDead(actorId, cause)
  Napi::Value GcsKillActor(const Napi::CallbackInfo& info) { return GcsActorCall(info, /*kill=*/true); }
  Napi::Value GcsReportActorDead(const Napi::CallbackInfo& info) { return GcsActorCall(info, /*kill=*/false); }
  Napi::Value GcsActorCall(const Napi::CallbackInfo& info, bool kill);

  Napi::Value ReportExit(const Napi::CallbackInfo& info) {
    if (core_ && !down_) core_->receiver().ReportExit(info[0].ToNumber().Int32Value());
    return info.Env().Undefined();
  }

  Napi::Value SetActorToken(const Napi::CallbackInfo& info);
  Napi::Value SetActorOwner(const Napi::CallbackInfo& info);

  Napi::Value KillActor(const Napi::CallbackInfo& info);

  // submitTask(classId, args, numReturns, maxRetries)
  //   args: Array<Buffer (by value) | [id: Buffer, owner: string] (by ref)>
  // -> Buffer: task id (16 bytes) followed by the return ids (20 bytes each)
  Napi::Value SubmitTask(const Napi::CallbackInfo& info);


  Napi::Value CancelTask(const Napi::CallbackInfo& info);

  // taskDone(handle, returns: Array<[data|null, inPlasma, isError, size]>, retryable?, actorExited?)
  Napi::Value TaskDone(const Napi::CallbackInfo& info);

  // reportGeneratorItem(handle, index, data|null, inPlasma, isError, size)
  Napi::Value ReportGeneratorItem(const Napi::CallbackInfo& info);

  Napi::Value SetBlocked(const Napi::CallbackInfo& info) {
    if (core_ && !down_) core_->receiver().SetBlocked(info[0].ToBoolean());
    MaybeKick();
    return info.Env().Undefined();
  }

  // query(kind: ClusterQuery) -> request id; the answer is a Gcs event.
  Napi::Value Query(const Napi::CallbackInfo& info);

  Napi::Value DrainEvents(const Napi::CallbackInfo& info);

  Napi::Value Stats(const Napi::CallbackInfo& info);

  // setRef(true) keeps the Node event loop alive while JS waits on the core.
  Napi::Value SetRef(const Napi::CallbackInfo& info);

  // A ref that pins a large plasma object tells V8 its size, so garbage
  // collection keeps pace with store usage in programs that never call gc().
  Napi::Value AdjustExternalMemory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t delta = static_cast<int64_t>(info[0].ToNumber().DoubleValue());
    return Napi::Number::New(env, static_cast<double>(Napi::MemoryManagement::AdjustExternalMemory(env, delta)));
  }

  // ---- ownership ----

  // stageNested(ids, ownerIndex, owners, slots?): refs found inside the value
  // serialized next (see CoreWorker::StageNested).
  Napi::Value StageNested(const Napi::CallbackInfo& info);

  // reconstruct(id): owner side; throws ObjectLostError if not recomputable.
  Napi::Value Reconstruct(const Napi::CallbackInfo& info);

  Napi::Value ReportLost(const Napi::CallbackInfo& info);

#ifdef RAYTS_TEST_HOOKS
  // loseFromStore(id): test hook (internal), see PlasmaStore::Lose; only in
  // builds with RAYTS_TEST_HOOKS.
  Napi::Value LoseFromStore(const Napi::CallbackInfo& info);
#endif

  Napi::Value MemorySummary(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    return Napi::String::New(env, core_->MemorySummaryJson());
  }

  Napi::Value Shutdown(const Napi::CallbackInfo& info);

  std::unique_ptr<UvLoop> loop_;  // outlives core_ (declared first, destroyed last)
  std::shared_ptr<CoreWorker> core_;
  std::shared_ptr<Delivery> delivery_;
  std::unique_ptr<StallService> stall_;
  std::unique_ptr<EventKeys> keys_;  // made on the first drain, JS thread only
  Napi::FunctionReference on_events_;
  std::unique_ptr<Napi::AsyncContext> async_;
  bool down_ = false;
  std::unordered_map<uint32_t, Napi::ObjectReference> weak_;
  Napi::FunctionReference kick_;
  Napi::ObjectReference scratch_ref_;
  uint8_t* scratch_ = nullptr;
  size_t scratch_len_ = 0;
  // setScratch(buf, kind): arenas the object calls write into (see
  // core_worker_objects.cc): kind 1, new put ids; kind 2, inline values.
  Napi::ObjectReference id_arena_ref_;
  uint8_t* id_arena_ = nullptr;
  size_t id_arena_len_ = 0;
  Napi::ObjectReference value_arena_ref_;
  uint8_t* value_arena_ = nullptr;
  size_t value_arena_len_ = 0;
  uint32_t next_weak_ = 1;
};

}  // namespace rayts::bindings
