// NativeCoreWorker (core_worker_wrap.h): registration of the methods,
// construction, event delivery, the control plane (GCS calls, queries) and
// shutdown.
#include "bindings/core_worker_wrap.h"

#include "core/core_worker/loop_transport.h"

namespace rayts::bindings {

struct CoreWorkerWrap::Delivery : std::enable_shared_from_this<Delivery> {
  CoreWorkerWrap* wrap = nullptr;  // loop thread; null once the runtime is down
  UvLoop* loop = nullptr;
  LoopTransport* transport = nullptr;
  std::atomic<bool> pending{false};
  std::atomic<bool> scheduled{false};

  // Any thread (the core lock is released).
  void Notify() {
    pending.store(true, std::memory_order_release);
    // Inside a loop turn on the loop thread: its turn-end hook delivers.
    if (loop->InLoopThread() && transport && transport->in_loop_turn()) return;
    Schedule();
  }
  void Schedule() {
    if (scheduled.exchange(true)) return;
    loop->Soon([self = shared_from_this()] {
      self->scheduled.store(false);
      if (self->wrap) self->wrap->DeliverEvents();
    });
  }
};

struct CoreWorkerWrap::StallService {
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::thread thread;

  // The loop is stalled when it is outside its poll phase and has not
  // moved for two checks (50-100 ms): then the sockets are read from here.
  void Start(UvLoop* loop, LoopTransport* t) {
    thread = std::thread([this, loop, t] {
      std::unique_lock<std::mutex> lock(mu);
      uint64_t last = loop->epoch();
      int still = 0;
      for (;;) {
        auto period = still > 0 || !loop->idle() ? std::chrono::milliseconds(50) : std::chrono::milliseconds(250);
        if (cv.wait_for(lock, period, [this] { return stop; })) return;
        uint64_t e = loop->epoch();
        if (e != last || loop->idle()) {
          last = e;
          still = 0;
          continue;
        }
        if (++still < 2) continue;
        lock.unlock();
        t->ServiceNow();
        lock.lock();
      }
    });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    if (thread.joinable()) thread.join();
  }
};

Napi::Function CoreWorkerWrap::Define(Napi::Env env) {
  return DefineClass(
      env, "NativeCoreWorker",
      {InstanceMethod("info", &CoreWorkerWrap::Info),
       InstanceMethod("storeBuffer", &CoreWorkerWrap::StoreBuffer),
       InstanceMethod("putInline", &CoreWorkerWrap::PutInline),
       InstanceMethod("setScratch", &CoreWorkerWrap::SetScratch),
       InstanceMethod("nextPutId", &CoreWorkerWrap::NextPutId),
       InstanceMethod("plasmaCreate", &CoreWorkerWrap::PlasmaCreate),
       InstanceMethod("plasmaSeal", &CoreWorkerWrap::PlasmaSeal),
       InstanceMethod("plasmaGet", &CoreWorkerWrap::PlasmaGet),
       InstanceMethod("plasmaRelease", &CoreWorkerWrap::PlasmaRelease),
       InstanceMethod("tryGet", &CoreWorkerWrap::TryGet),
       InstanceMethod("subscribe", &CoreWorkerWrap::Subscribe),
       InstanceMethod("addLocalRef", &CoreWorkerWrap::AddLocalRef),
       InstanceMethod("removeLocalRefs", &CoreWorkerWrap::RemoveLocalRefs),
       InstanceMethod("addLocalRefs", &CoreWorkerWrap::AddLocalRefs),
       InstanceMethod("addLocalRefsPacked", &CoreWorkerWrap::AddLocalRefsPacked),
       InstanceMethod("removeLocalRefsPacked", &CoreWorkerWrap::RemoveLocalRefsPacked),
       InstanceMethod("readyMask", &CoreWorkerWrap::ReadyMask),
       InstanceMethod("fetchLocal", &CoreWorkerWrap::FetchLocal),
       InstanceMethod("trackWeak", &CoreWorkerWrap::TrackWeak),
       InstanceMethod("untrackWeak", &CoreWorkerWrap::UntrackWeak),
       InstanceMethod("sweepWeak", &CoreWorkerWrap::SweepWeak),
       InstanceMethod("registerTaskClass", &CoreWorkerWrap::RegisterTaskClass),
       InstanceMethod("submitTask", &CoreWorkerWrap::SubmitTask),
       InstanceMethod("createActor", &CoreWorkerWrap::CreateActor),
       InstanceMethod("submitActorTask", &CoreWorkerWrap::SubmitActorTask),
       InstanceMethod("killActor", &CoreWorkerWrap::KillActor),
       InstanceMethod("setActorToken", &CoreWorkerWrap::SetActorToken),
       InstanceMethod("setActorOwner", &CoreWorkerWrap::SetActorOwner),
       InstanceMethod("gcsRegisterActor", &CoreWorkerWrap::GcsRegisterActor),
       InstanceMethod("gcsGetNamedActor", &CoreWorkerWrap::GcsGetNamedActor),
       InstanceMethod("gcsKillActor", &CoreWorkerWrap::GcsKillActor),
       InstanceMethod("gcsReportActorDead", &CoreWorkerWrap::GcsReportActorDead),
       InstanceMethod("reportExit", &CoreWorkerWrap::ReportExit),
       InstanceMethod("cancelTask", &CoreWorkerWrap::CancelTask),
       InstanceMethod("taskDone", &CoreWorkerWrap::TaskDone),
       InstanceMethod("reportGeneratorItem", &CoreWorkerWrap::ReportGeneratorItem),
       InstanceMethod("setBlocked", &CoreWorkerWrap::SetBlocked),
       InstanceMethod("query", &CoreWorkerWrap::Query),
       InstanceMethod("drainEvents", &CoreWorkerWrap::DrainEvents),
       InstanceMethod("stats", &CoreWorkerWrap::Stats),
       InstanceMethod("setRef", &CoreWorkerWrap::SetRef),
       InstanceMethod("adjustExternalMemory", &CoreWorkerWrap::AdjustExternalMemory),
       InstanceMethod("flush", &CoreWorkerWrap::Flush),
       InstanceMethod("shutdown", &CoreWorkerWrap::Shutdown),
       InstanceMethod("stageNested", &CoreWorkerWrap::StageNested),
       InstanceMethod("reconstruct", &CoreWorkerWrap::Reconstruct),
       InstanceMethod("reportLost", &CoreWorkerWrap::ReportLost),
#ifdef RAYTS_TEST_HOOKS
       InstanceMethod("loseFromStore", &CoreWorkerWrap::LoseFromStore),
#endif
       InstanceMethod("memorySummary", &CoreWorkerWrap::MemorySummary)});
}

// new NativeCoreWorker({nodeSocket, listenPath, isDriver, jobId, workerId?}, onEvents, kick)
//   kick(): called when frames were queued this turn; it must arrange one
//   flush() call at the end of the turn (a microtask).
CoreWorkerWrap::CoreWorkerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CoreWorkerWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    ThrowType(env, "NativeCoreWorker expects (options, onEvents)");
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  CoreWorkerOptions opts;
  opts.node_socket = o.Get("nodeSocket").ToString();
  opts.listen_path = o.Get("listenPath").ToString();
  if (o.Has("nodeIp") && o.Get("nodeIp").IsString()) opts.node_ip = o.Get("nodeIp").ToString();
  opts.is_driver = o.Get("isDriver").ToBoolean();
  opts.job_id = o.Has("jobId") ? o.Get("jobId").ToNumber().Uint32Value() : 0;
  if (o.Has("lineageMaxBytes") && o.Get("lineageMaxBytes").IsNumber()) {
    opts.lineage_max_bytes = static_cast<uint64_t>(o.Get("lineageMaxBytes").ToNumber().DoubleValue());
  }
  if (o.Has("workerId") && o.Get("workerId").IsString()) {
    std::string hex = o.Get("workerId").ToString();
    if (hex.size() == 2 * WorkerID::kSize) {
      std::string bin(WorkerID::kSize, '\0');
      for (size_t i = 0; i < WorkerID::kSize; i++) bin[i] = static_cast<char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
      opts.worker_id = WorkerID::FromBinary(bin);
    }
  }
  if (info.Length() >= 3 && info[2].IsFunction()) kick_ = Napi::Persistent(info[2].As<Napi::Function>());
  on_events_ = Napi::Persistent(info[1].As<Napi::Function>());
  async_ = std::make_unique<Napi::AsyncContext>(env, "rayts-events");
  uv_loop_t* uv = nullptr;
  if (napi_get_uv_event_loop(env, &uv) != napi_ok || !uv) {
    ThrowType(env, "NativeCoreWorker: no libuv loop on this thread");
    return;
  }
  loop_ = std::make_unique<UvLoop>(uv);
  delivery_ = std::make_shared<Delivery>();
  delivery_->wrap = this;
  delivery_->loop = loop_.get();
  opts.notify = [d = delivery_]() { d->Notify(); };
  auto cw = CoreWorker::Start(std::move(opts), loop_.get());
  if (!cw.ok()) {
    delivery_->wrap = nullptr;
    ThrowStatus(env, cw.status());
    return;
  }
  core_ = std::shared_ptr<CoreWorker>(std::move(cw).value().release());
  LoopTransport* t = core_->loop_transport();
  delivery_->transport = t;
  t->SetTurnEndHook([d = delivery_.get(), this] {
    if (d->pending.load(std::memory_order_acquire)) DeliverEvents();
  });
  stall_ = std::make_unique<StallService>();
  stall_->Start(loop_.get(), t);
}

CoreWorkerWrap::~CoreWorkerWrap() {
  StopRuntime();
  core_.reset();
  loop_.reset();
}

// Calls onEvents from the loop (not from inside a JS call): the batch of
// events this turn queued. An exception thrown by it is the process's
// uncaught exception, as from any other callback.
void CoreWorkerWrap::DeliverEvents() {
  if (down_ || !delivery_->pending.load(std::memory_order_acquire)) return;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  napi_value recv = env.Global();  // napi_make_callback needs an object
  napi_value result;
  napi_status st = napi_make_callback(env, *async_, recv, on_events_.Value(), 0, nullptr, &result);
  if (st == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

// Stops the sockets and the stall service at once; the objects go on a
// later loop turn (this may run inside one of their own callbacks).
void CoreWorkerWrap::StopRuntime() {
  if (!core_ || down_) return;
  down_ = true;
  if (stall_) stall_->Stop();
  if (delivery_) delivery_->wrap = nullptr;
  core_->Shutdown();
}

Napi::Value CoreWorkerWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("workerId", core_->context().worker_id().Hex());
  o.Set("nodeId", core_->context().node_id().Hex());
  o.Set("jobId", Napi::Number::New(env, core_->context().job_id()));
  o.Set("address", core_->context().address());
  o.Set("sessionDir", core_->context().session_dir());
  o.Set("storeSize", Napi::Number::New(env, static_cast<double>(core_->plasma().size())));
  return o;
}

// One external ArrayBuffer over the whole shared-memory region: values in
// plasma are read as views over it with no copy. The buffer keeps the
// CoreWorker (and so the mapping) alive.
Napi::Value CoreWorkerWrap::StoreBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  // The buffer keeps the mapping (not the CoreWorker) alive: a view that
  // outlives shutdown() still reads the region, while the CoreWorker's
  // sockets, threads and timers go at shutdown.
  auto* hold = new std::shared_ptr<plasma::ShmRegion>(core_->plasma().region());
  return Napi::ArrayBuffer::New(env, core_->plasma().base(), core_->plasma().size(),
                                [](Napi::Env, void*, std::shared_ptr<plasma::ShmRegion>* h) { delete h; }, hold);
}

Napi::Value CoreWorkerWrap::DrainEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  delivery_->pending.store(false, std::memory_order_release);
  if (!core_ || down_) return Napi::Array::New(env, 0);
  std::vector<Event> events = core_->context().DrainEvents();
  if (!keys_) keys_ = std::make_unique<EventKeys>(env);
  return EventsToJs(env, *keys_, events);
}

Napi::Value CoreWorkerWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  auto s = core_->GetStats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("ownedRefs", Napi::Number::New(env, static_cast<double>(s.owned_refs)));
  o.Set("memoryStoreObjects", Napi::Number::New(env, static_cast<double>(s.memory_store_objects)));
  o.Set("queuedTasks", Napi::Number::New(env, static_cast<double>(s.queued_tasks)));
  o.Set("inflightTasks", Napi::Number::New(env, static_cast<double>(s.inflight_tasks)));
  o.Set("leases", Napi::Number::New(env, static_cast<double>(s.leases)));
  o.Set("badDecrements", Napi::Number::New(env, static_cast<double>(s.bad_decrements)));
  o.Set("inboundLinks", Napi::Number::New(env, static_cast<double>(s.inbound_links)));
  return o;
}

// setRef(true) keeps the Node event loop alive while JS waits on the core.
Napi::Value CoreWorkerWrap::SetRef(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_ || down_) return env.Undefined();
  loop_->SetRef(info[0].ToBoolean());
  return env.Undefined();
}

Napi::Value CoreWorkerWrap::Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (core_ && !down_) {
    StopRuntime();
    // Its fds are closed now; the objects go on the next loop turn, not when
    // JS collects this one (this call may come from inside their callbacks).
    struct Gone {
      std::shared_ptr<CoreWorker> core;
      std::unique_ptr<UvLoop> loop;
    };
    auto gone = std::make_shared<Gone>();
    gone->core = std::move(core_);
    UvLoop* l = loop_.get();
    gone->loop = std::move(loop_);
    l->Soon([gone] {
      gone->core.reset();
      gone->loop.reset();
    });
  }
  return env.Undefined();
}

// query(kind: ClusterQuery) -> request id; the answer is a Gcs event.
Napi::Value CoreWorkerWrap::Query(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  auto id = core_->Query(info[0].ToNumber().Int32Value());
  if (!id.ok()) { ThrowStatus(env, id.status()); return env.Undefined(); }
  MaybeKick();
  return Napi::Number::New(env, static_cast<double>(*id));
}

// gcsRegisterActor(actorId, name, namespace, className, detached, getIfExists, maxRestarts, info)
//   -> null (registered as asked) | [existingActorId, existingInfo] (getIfExists found it)
Napi::Value CoreWorkerWrap::GcsRegisterActor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  gcs::ActorRegistration r;
  if (info.Length() < 8 || !IdFromValue(info[0], &r.actor_id)) {
    ThrowType(env, "gcsRegisterActor: bad arguments");
    return env.Undefined();
  }
  r.name = info[1].ToString().Utf8Value();
  r.ns = info[2].ToString().Utf8Value();
  r.class_name = info[3].ToString().Utf8Value();
  r.detached = info[4].ToBoolean();
  r.get_if_exists = info[5].ToBoolean();
  r.max_restarts = info[6].ToNumber().Int32Value();
  r.info = info[7].ToString().Utf8Value();
  auto reply = core_->plasma().gcs().RegisterActor(r);
  if (!reply.ok()) { ThrowGcs(env, reply.status()); return env.Undefined(); }
  if (!reply->existing) return env.Null();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, IdToBuffer(env, reply->actor_id));
  out.Set(1u, Napi::String::New(env, reply->info));
  return out;
}

// gcsGetNamedActor(namespace, name) -> [actorId, info]; throws NotFound.
Napi::Value CoreWorkerWrap::GcsGetNamedActor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  auto reply = core_->plasma().gcs().GetNamedActor(info[0].ToString().Utf8Value(), info[1].ToString().Utf8Value());
  if (!reply.ok()) { ThrowGcs(env, reply.status()); return env.Undefined(); }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, IdToBuffer(env, reply->actor_id));
  out.Set(1u, Napi::String::New(env, reply->info));
  return out;
}

Napi::Value CoreWorkerWrap::GcsActorCall(const Napi::CallbackInfo& info, bool kill) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  TaskID actor;
  if (!IdFromValue(info[0], &actor)) { ThrowType(env, "gcs actor call: bad actor id"); return env.Undefined(); }
  std::string cause = info[1].ToString().Utf8Value();
  Status s = kill ? core_->plasma().gcs().KillActor(actor, cause) : core_->plasma().gcs().ReportActorDead(actor, cause);
  if (!s.ok()) ThrowGcs(env, s);
  return env.Undefined();
}

Napi::Object InitCoreWorker(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeCoreWorker", CoreWorkerWrap::Define(env));
  return exports;
}

}  // namespace rayts::bindings
