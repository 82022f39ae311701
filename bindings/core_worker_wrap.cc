// NativeCoreWorker: the JS face of core/core_worker. Calls from JS are short
// non-blocking operations on the CoreWorker (plasma create/get are a short
// blocking round trip to the node server, see BlockingChannel). Results come
// back as batches of events: the core calls `notify` when its queue becomes
// non-empty, which makes one thread-safe-function call; the JS callback then
// drains every queued event with drainEvents(). Core threads never touch JS
// values. Converting arguments, return values and the event batch between
// JS and core types is in core_worker_convert.cc.
#include <atomic>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "bindings/core_worker_convert.h"
#include "bindings/napi_api.h"
#include "core/core_worker/core_worker.h"

namespace rayts::bindings {

namespace {

class CoreWorkerWrap : public Napi::ObjectWrap<CoreWorkerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
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
         InstanceMethod("readyMask", &CoreWorkerWrap::ReadyMask),
         InstanceMethod("trackWeak", &CoreWorkerWrap::TrackWeak),
         InstanceMethod("untrackWeak", &CoreWorkerWrap::UntrackWeak),
         InstanceMethod("sweepWeak", &CoreWorkerWrap::SweepWeak),
         InstanceMethod("registerTaskClass", &CoreWorkerWrap::RegisterTaskClass),
         InstanceMethod("submitTask", &CoreWorkerWrap::SubmitTask),
         InstanceMethod("createActor", &CoreWorkerWrap::CreateActor),
         InstanceMethod("submitActorTask", &CoreWorkerWrap::SubmitActorTask),
         InstanceMethod("killActor", &CoreWorkerWrap::KillActor),
         InstanceMethod("setActorToken", &CoreWorkerWrap::SetActorToken),
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
         InstanceMethod("loseFromStore", &CoreWorkerWrap::LoseFromStore),
         InstanceMethod("memorySummary", &CoreWorkerWrap::MemorySummary)});
  }

  // new NativeCoreWorker({nodeSocket, listenPath, isDriver, jobId, workerId?}, onEvents, kick)
  //   kick(): called when frames were queued this turn; it must arrange one
  //   flush() call at the end of the turn (a microtask).
  explicit CoreWorkerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CoreWorkerWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      ThrowType(env, "NativeCoreWorker expects (options, onEvents)");
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    CoreWorkerOptions opts;
    opts.node_socket = o.Get("nodeSocket").ToString();
    opts.listen_path = o.Get("listenPath").ToString();
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
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "rayts-events", 0, 1);
    auto pending = pending_;
    Napi::ThreadSafeFunction tsfn = tsfn_;
    opts.notify = [tsfn, pending]() mutable {
      // One call per batch: the JS side drains everything queued.
      if (!pending->exchange(true)) tsfn.NonBlockingCall();
    };
    auto cw = CoreWorker::Start(std::move(opts));
    if (!cw.ok()) {
      tsfn_.Release();
      ThrowStatus(env, cw.status());
      return;
    }
    core_ = std::shared_ptr<CoreWorker>(std::move(cw).value().release());
    tsfn_.Unref(env);
  }

  ~CoreWorkerWrap() override {
    if (core_) core_->Shutdown();
  }

 private:
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

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    Napi::Object o = Napi::Object::New(env);
    o.Set("workerId", core_->worker_id().Hex());
    o.Set("nodeId", core_->node_id().Hex());
    o.Set("jobId", Napi::Number::New(env, core_->job_id()));
    o.Set("address", core_->address());
    o.Set("sessionDir", core_->session_dir());
    o.Set("storeSize", Napi::Number::New(env, static_cast<double>(core_->store_size())));
    return o;
  }

  // One external ArrayBuffer over the whole shared-memory region: values in
  // plasma are read as views over it with no copy. The buffer keeps the
  // CoreWorker (and so the mapping) alive.
  Napi::Value StoreBuffer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    auto* hold = new std::shared_ptr<CoreWorker>(core_);
    return Napi::ArrayBuffer::New(env, core_->store_base(), core_->store_size(),
                                  [](Napi::Env, void*, std::shared_ptr<CoreWorker>* h) { delete h; }, hold);
  }

  Napi::Value NextPutId(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    return IdToBuffer(env, core_->NextPutId());
  }

  // putInline(data) -> undefined: the new id is written to the scratch
  // buffer (setScratch), which JS copies out; no Buffer made per call.
  Napi::Value PutInline(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    ObjectID id = core_->PutInlineNew(BytesOf(info[0]));
    MaybeKick();  // nested refs staged for this put may register with their owners
    if (scratch_ && scratch_len_ >= ObjectID::kSize) {
      std::memcpy(scratch_, id.data(), ObjectID::kSize);
      return env.Undefined();
    }
    return IdToBuffer(env, id);
  }

  // setScratch(u8): a JS-owned buffer the addon writes ids into.
  Napi::Value SetScratch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray()) { ThrowType(env, "setScratch expects a Uint8Array"); return env.Undefined(); }
    auto u = info[0].As<Napi::Uint8Array>();
    scratch_ref_ = Napi::Persistent(info[0].As<Napi::Object>());
    scratch_ = u.Data();
    scratch_len_ = u.ByteLength();
    return env.Undefined();
  }

  // plasmaCreate(id, size) -> offset
  Napi::Value PlasmaCreate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    ObjectID id;
    if (!IdFromValue(info[0], &id)) { ThrowType(env, "plasmaCreate: bad object id"); return env.Undefined(); }
    // plasmaCreate(id, size, spill = true): spill = false fails rather than spill.
    const bool spill = info.Length() < 3 || !info[2].IsBoolean() || info[2].As<Napi::Boolean>().Value();
    auto off = core_->PlasmaCreate(id, static_cast<uint64_t>(info[1].ToNumber().DoubleValue()), spill);
    if (!off.ok()) { ThrowStatus(env, off.status()); return env.Undefined(); }
    return Napi::Number::New(env, static_cast<double>(*off));
  }

  Napi::Value PlasmaSeal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    ObjectID id;
    if (!IdFromValue(info[0], &id)) { ThrowType(env, "plasmaSeal: bad object id"); return env.Undefined(); }
    Status s = core_->PlasmaSeal(id, info[1].ToBoolean());
    if (!s.ok()) ThrowStatus(env, s);
    MaybeKick();
    return env.Undefined();
  }

  // plasmaGet(id) -> [offset, size]
  Napi::Value PlasmaGet(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    ObjectID id;
    if (!IdFromValue(info[0], &id)) { ThrowType(env, "plasmaGet: bad object id"); return env.Undefined(); }
    auto v = core_->PlasmaGet(id);
    if (!v.ok()) { ThrowStatus(env, v.status()); return env.Undefined(); }
    Napi::Array a = Napi::Array::New(env, 2);
    a.Set(0u, Napi::Number::New(env, static_cast<double>(v->offset)));
    a.Set(1u, Napi::Number::New(env, static_cast<double>(v->size)));
    return a;
  }

  Napi::Value PlasmaRelease(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_ || down_) return env.Undefined();
    ObjectID id;
    if (IdFromValue(info[0], &id)) core_->PlasmaRelease(id);
    return env.Undefined();
  }

  // tryGet(id) -> null (unknown) | false (pending) | true (ready, in plasma)
  //             | Buffer (ready inline value) | {error: string} (ready error)
  Napi::Value TryGet(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    ObjectID id;
    if (!IdFromValue(info[0], &id)) { ThrowType(env, "tryGet: bad object id"); return env.Undefined(); }
    LookupResult r = core_->TryGet(id);
    if (!r.known) return env.Null();
    if (!r.ready) return Napi::Boolean::New(env, false);
    if (r.is_error) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("error", Napi::String::New(env, r.data ? *r.data : std::string("{}")));
      return o;
    }
    if (r.in_plasma) return Napi::Boolean::New(env, true);
    if (!r.data) return Napi::Buffer<uint8_t>::New(env, 0);
    return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(r.data->data()), r.data->size());
  }

  Napi::Value Subscribe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    ObjectID id;
    if (!IdFromValue(info[0], &id)) { ThrowType(env, "subscribe: bad object id"); return env.Undefined(); }
    core_->Subscribe(id, info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string());
    MaybeKick();
    return env.Undefined();
  }

  Napi::Value AddLocalRef(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_ || down_) return env.Undefined();
    ObjectID id;
    if (!IdFromValue(info[0], &id)) { ThrowType(env, "addLocalRef: bad object id"); return env.Undefined(); }
    core_->AddLocalRef(id, info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string());
    MaybeKick();  // a new borrowed ref registers with its owner
    return env.Undefined();
  }

  // addLocalRefs(ids, ownerIndex, owners): the refs decoded from one value,
  // counted at once. ids: concatenated 20-byte ids; ownerIndex[i] indexes
  // owners (the distinct owner addresses; '' = this process).
  Napi::Value AddLocalRefs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_ || down_) return env.Undefined();
    if (!info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[2].IsArray()) {
      ThrowType(env, "addLocalRefs expects (ids, ownerIndex, owners)");
      return env.Undefined();
    }
    auto ids = info[0].As<Napi::Uint8Array>();
    auto index = info[1].As<Napi::Uint32Array>();
    Napi::Array owner_vals = info[2].As<Napi::Array>();
    std::vector<std::string> owners(owner_vals.Length());
    for (uint32_t i = 0; i < owner_vals.Length(); i++) owners[i] = owner_vals.Get(i).ToString();
    size_t n = ids.ByteLength() / ObjectID::kSize;
    if (index.ElementLength() < n) { ThrowType(env, "addLocalRefs: ownerIndex too short"); return env.Undefined(); }
    std::vector<std::pair<ObjectID, std::string>> refs;
    refs.reserve(n);
    for (size_t i = 0; i < n; i++) {
      uint32_t oi = index[i];
      refs.emplace_back(ObjectID::FromBytes(ids.Data() + i * ObjectID::kSize), oi < owners.size() ? owners[oi] : std::string());
    }
    core_->AddLocalRefs(refs);
    MaybeKick();  // new borrowed refs register with their owners
    return env.Undefined();
  }

  // Weak handles without KeepDuringJob: after a full GC, sweepWeak() tells
  // at once which tracked objects were collected (a FinalizationRegistry
  // would only say so on a later turn, and a WeakRef made in this job keeps
  // its target alive until the job ends). Used for large refs and views
  // under store pressure.
  Napi::Value TrackWeak(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) { ThrowType(env, "trackWeak expects an object"); return env.Undefined(); }
    uint32_t token = next_weak_++;
    weak_.emplace(token, Napi::Weak(info[0].As<Napi::Object>()));
    return Napi::Number::New(env, token);
  }
  Napi::Value UntrackWeak(const Napi::CallbackInfo& info) {
    weak_.erase(info[0].ToNumber().Uint32Value());
    return info.Env().Undefined();
  }
  Napi::Value SweepWeak(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<uint32_t> dead;
    for (auto& [token, ref] : weak_) {
      if (ref.Value().IsEmpty()) dead.push_back(token);
    }
    Napi::Array out = Napi::Array::New(env, dead.size());
    for (size_t i = 0; i < dead.size(); i++) {
      weak_.erase(dead[i]);
      out.Set(i, Napi::Number::New(env, dead[i]));
    }
    return out;
  }

  // readyMask(ids) -> Uint8Array, 1 where the object is ready in this process.
  //   ids: the object ids concatenated (20 bytes each), one native call for all.
  Napi::Value ReadyMask(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env) || !info[0].IsTypedArray()) { ThrowType(env, "readyMask expects concatenated ids"); return env.Undefined(); }
    auto t = info[0].As<Napi::Uint8Array>();
    size_t n = t.ByteLength() / ObjectID::kSize;
    std::vector<ObjectID> v(n);
    for (size_t i = 0; i < n; i++) v[i] = ObjectID::FromBytes(t.Data() + i * ObjectID::kSize);
    auto out = Napi::Uint8Array::New(env, n);
    core_->ReadyMask(v, out.Data());
    return out;
  }

  Napi::Value RemoveLocalRefs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_ || down_ || !info[0].IsArray()) return env.Undefined();
    Napi::Array a = info[0].As<Napi::Array>();
    std::vector<ObjectID> ids;
    ids.reserve(a.Length());
    for (uint32_t i = 0; i < a.Length(); i++) {
      ObjectID id;
      if (IdFromValue(a.Get(i), &id)) ids.push_back(id);
    }
    core_->RemoveLocalRefs(ids);
    MaybeKick();
    return env.Undefined();
  }

  // registerTaskClass(hash, source, moduleUrl, exportName, name, resources) -> class id
  //   resources: [name, amount, name, amount, ...]
  Napi::Value RegisterTaskClass(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    TaskClass c;
    c.function.hash = info[0].ToString();
    if (info[1].IsString()) c.function.source = info[1].As<Napi::String>().Utf8Value();
    if (info[2].IsString()) c.function.module_url = info[2].As<Napi::String>().Utf8Value();
    if (info[3].IsString()) c.function.export_name = info[3].As<Napi::String>().Utf8Value();
    c.name = info[4].ToString();
    Napi::Array res = info[5].As<Napi::Array>();
    for (uint32_t i = 0; i + 1 < res.Length(); i += 2)
      c.resources.emplace_back(res.Get(i).ToString(), res.Get(i + 1).ToNumber().DoubleValue());
    if (info.Length() > 6 && info[6].IsString()) c.retry_exceptions = info[6].As<Napi::String>().Utf8Value();
    return Napi::Number::New(env, core_->RegisterTaskClass(std::move(c)));
  }

  // Writes the ids to the scratch buffer (returns undefined) or a new Buffer.
  Napi::Value IdsOut(Napi::Env env, const TaskID& first, const std::vector<ObjectID>& ids) {
    size_t need = TaskID::kSize + ids.size() * ObjectID::kSize;
    uint8_t* dst;
    Napi::Value result = env.Undefined();
    if (scratch_ && scratch_len_ >= need) {
      dst = scratch_;
    } else {
      auto out = Napi::Buffer<uint8_t>::New(env, need);
      dst = out.Data();
      result = out;
    }
    std::memcpy(dst, first.data(), TaskID::kSize);
    for (size_t i = 0; i < ids.size(); i++)
      std::memcpy(dst + TaskID::kSize + i * ObjectID::kSize, ids[i].data(), ObjectID::kSize);
    return result;
  }

  // createActor(classId, args) -> actor id (16) + ready id (20), via scratch
  Napi::Value CreateActor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    SubmitRequest req;
    req.cls = core_->GetTaskClass(info[0].ToNumber().Uint32Value());
    if (!req.cls) { ThrowType(env, "createActor: unknown class"); return env.Undefined(); }
    if (!ParseArgs(env, info[1], &req.args)) return env.Undefined();
    if (info.Length() > 2 && info[2].IsNumber()) req.max_concurrency = info[2].ToNumber().Int32Value();
    if (info.Length() > 3 && info[3].IsBuffer() && !IdFromValue(info[3], &req.actor_id)) {
      ThrowType(env, "createActor: bad actor id");
      return env.Undefined();
    }
    if (info.Length() > 4 && info[4].IsNumber()) req.max_restarts = info[4].ToNumber().Int32Value();
    if (info.Length() > 5 && info[5].IsNumber()) req.max_task_retries = info[5].ToNumber().Int32Value();
    if (info.Length() > 6 && info[6].IsString()) req.concurrency_groups = info[6].As<Napi::String>().Utf8Value();
    if (info.Length() > 7) req.detached = info[7].ToBoolean().Value();
    if (info.Length() > 8) req.release_cpu = info[8].ToBoolean().Value();
    ObjectID ready;
    auto actor = core_->CreateActor(std::move(req), &ready);
    MaybeKick();
    if (!actor.ok()) { ThrowStatus(env, actor.status()); return env.Undefined(); }
    return IdsOut(env, *actor, {ready});
  }

  // submitActorTask(classId, actorId, method, args, numReturns) -> task id + return ids
  Napi::Value SubmitActorTask(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    SubmitRequest req;
    req.cls = core_->GetTaskClass(info[0].ToNumber().Uint32Value());
    if (!req.cls) { ThrowType(env, "submitActorTask: unknown class"); return env.Undefined(); }
    if (!IdFromValue(info[1], &req.actor_id)) { ThrowType(env, "submitActorTask: bad actor id"); return env.Undefined(); }
    req.method = info[2].ToString();
    if (!ParseArgs(env, info[3], &req.args)) return env.Undefined();
    req.num_returns = info[4].ToNumber().Int32Value();
    if (info.Length() > 5 && info[5].IsNumber()) req.max_pending = info[5].ToNumber().Int32Value();
    std::vector<ObjectID> ids;
    auto tid = core_->SubmitActorTask(std::move(req), &ids);
    MaybeKick();
    if (!tid.ok()) { ThrowStatus(env, tid.status()); return env.Undefined(); }
    return IdsOut(env, *tid, ids);
  }

  // GCS errors reach JS as an Error with .code (the Status code name), which
  // the callers in ts/ branch on (AlreadyExists, NotFound).
  static void ThrowGcs(Napi::Env env, const Status& s) {
    Napi::Error e = Napi::Error::New(env, s.message());
    e.Set("code", Napi::String::New(env, StatusCodeName(s.code())));
    e.ThrowAsJavaScriptException();
  }

  // gcsRegisterActor(actorId, name, namespace, className, detached, getIfExists, maxRestarts, info)
  //   -> null (registered as asked) | [existingActorId, existingInfo] (getIfExists found it)
  Napi::Value GcsRegisterActor(const Napi::CallbackInfo& info) {
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
    auto reply = core_->gcs().RegisterActor(r);
    if (!reply.ok()) { ThrowGcs(env, reply.status()); return env.Undefined(); }
    if (!reply->existing) return env.Null();
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, IdToBuffer(env, reply->actor_id));
    out.Set(1u, Napi::String::New(env, reply->info));
    return out;
  }

  // gcsGetNamedActor(namespace, name) -> [actorId, info]; throws NotFound.
  Napi::Value GcsGetNamedActor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    auto reply = core_->gcs().GetNamedActor(info[0].ToString().Utf8Value(), info[1].ToString().Utf8Value());
    if (!reply.ok()) { ThrowGcs(env, reply.status()); return env.Undefined(); }
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, IdToBuffer(env, reply->actor_id));
    out.Set(1u, Napi::String::New(env, reply->info));
    return out;
  }

  // gcsKillActor(actorId, cause) / gcsReportActorDead(actorId, cause)
  Napi::Value GcsKillActor(const Napi::CallbackInfo& info) { return GcsActorCall(info, /*kill=*/true); }
  Napi::Value GcsReportActorDead(const Napi::CallbackInfo& info) { return GcsActorCall(info, /*kill=*/false); }
  Napi::Value GcsActorCall(const Napi::CallbackInfo& info, bool kill) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    TaskID actor;
    if (!IdFromValue(info[0], &actor)) { ThrowType(env, "gcs actor call: bad actor id"); return env.Undefined(); }
    std::string cause = info[1].ToString().Utf8Value();
    Status s = kill ? core_->gcs().KillActor(actor, cause) : core_->gcs().ReportActorDead(actor, cause);
    if (!s.ok()) ThrowGcs(env, s);
    return env.Undefined();
  }

  Napi::Value ReportExit(const Napi::CallbackInfo& info) {
    if (core_ && !down_) core_->ReportExit(info[0].ToNumber().Int32Value());
    return info.Env().Undefined();
  }

  Napi::Value SetActorToken(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    TaskID actor;
    ObjectID token;
    if (!IdFromValue(info[0], &actor)) { ThrowType(env, "setActorToken: bad actor id"); return env.Undefined(); }
    if (!IdFromValue(info[1], &token)) { ThrowType(env, "setActorToken: bad token id"); return env.Undefined(); }
    core_->SetActorToken(actor, token);
    return env.Undefined();
  }

  Napi::Value KillActor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    TaskID actor;
    if (!IdFromValue(info[0], &actor)) { ThrowType(env, "killActor: bad actor id"); return env.Undefined(); }
    core_->KillActor(actor, info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string("killed by ray.kill"),
                     info.Length() > 2 ? info[2].ToBoolean().Value() : true,
                     info.Length() > 3 ? info[3].ToBoolean().Value() : false);
    MaybeKick();
    return env.Undefined();
  }

  // submitTask(classId, args, numReturns, maxRetries)
  //   args: Array<Buffer (by value) | [id: Buffer, owner: string] (by ref)>
  // -> Buffer: task id (16 bytes) followed by the return ids (20 bytes each)
  Napi::Value SubmitTask(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    SubmitRequest req;
    req.cls = core_->GetTaskClass(info[0].ToNumber().Uint32Value());
    if (!req.cls) { ThrowType(env, "submitTask: unknown task class"); return env.Undefined(); }
    if (!ParseArgs(env, info[1], &req.args)) return env.Undefined();
    req.num_returns = info[2].ToNumber().Int32Value();
    req.max_retries = info[3].ToNumber().Int32Value();
    // parent: the task executing here that submits it (recursive cancel).
    if (info.Length() > 4 && info[4].IsBuffer() && !IdFromValue(info[4], &req.parent)) {
      ThrowType(env, "submitTask: bad parent task id");
      return env.Undefined();
    }
    std::vector<ObjectID> ids;
    auto tid = core_->SubmitTask(std::move(req), &ids);
    MaybeKick();
    if (!tid.ok()) { ThrowStatus(env, tid.status()); return env.Undefined(); }
    return IdsOut(env, *tid, ids);  // JS reads the ids from its scratch buffer when they fit
  }


  Napi::Value CancelTask(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    TaskID tid;
    if (!IdFromValue(info[0], &tid)) { ThrowType(env, "cancelTask: bad task id"); return env.Undefined(); }
    Status s = core_->CancelTask(tid, info[1].ToBoolean(), info[2].ToBoolean());
    MaybeKick();
    if (s.code() == StatusCode::kInvalidArgument) ThrowType(env, s.message());
    else if (!s.ok()) ThrowStatus(env, s);
    return env.Undefined();
  }

  // taskDone(handle, returns: Array<[data|null, inPlasma, isError, size]>, retryable?)
  Napi::Value TaskDone(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_ || down_) return env.Undefined();
    uint64_t handle = static_cast<uint64_t>(info[0].ToNumber().DoubleValue());
    std::vector<ReturnValue> rets;
    if (info[1].IsArray()) {
      Napi::Array a = info[1].As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); i++) {
        Napi::Array r = a.Get(i).As<Napi::Array>();
        rets.push_back(ReturnFrom(r.Get(0u), r.Get(1u), r.Get(2u), r.Get(3u)));
      }
    }
    core_->TaskDone(handle, std::move(rets), info.Length() > 2 && info[2].ToBoolean().Value());
    MaybeKick();
    return env.Undefined();
  }

  // reportGeneratorItem(handle, index, data|null, inPlasma, isError, size)
  Napi::Value ReportGeneratorItem(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_ || down_) return env.Undefined();
    core_->ReportGeneratorItem(static_cast<uint64_t>(info[0].ToNumber().DoubleValue()),
                               static_cast<int64_t>(info[1].ToNumber().DoubleValue()),
                               ReturnFrom(info[2], info[3], info[4], info[5]));
    MaybeKick();
    return env.Undefined();
  }

  Napi::Value SetBlocked(const Napi::CallbackInfo& info) {
    if (core_ && !down_) core_->SetBlocked(info[0].ToBoolean());
    MaybeKick();
    return info.Env().Undefined();
  }

  // query(kind: ClusterQuery) -> request id; the answer is a Gcs event.
  Napi::Value Query(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    auto id = core_->Query(info[0].ToNumber().Int32Value());
    if (!id.ok()) { ThrowStatus(env, id.status()); return env.Undefined(); }
    MaybeKick();
    return Napi::Number::New(env, static_cast<double>(*id));
  }

  Napi::Value DrainEvents(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    pending_->store(false);
    if (!core_) return Napi::Array::New(env, 0);
    std::vector<Event> events = core_->DrainEvents();
    return EventsToJs(env, events);
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
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
    return o;
  }

  // setRef(true) keeps the Node event loop alive while JS waits on the core.
  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_ || down_) return env.Undefined();
    if (info[0].ToBoolean()) tsfn_.Ref(env); else tsfn_.Unref(env);
    return env.Undefined();
  }

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
  Napi::Value StageNested(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_ || down_) return env.Undefined();
    if (!info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[2].IsArray()) {
      ThrowType(env, "stageNested expects (ids, ownerIndex, owners, slots?)");
      return env.Undefined();
    }
    auto ids = info[0].As<Napi::Uint8Array>();
    auto index = info[1].As<Napi::Uint32Array>();
    Napi::Array owner_vals = info[2].As<Napi::Array>();
    bool has_slots = info.Length() > 3 && info[3].IsTypedArray();
    size_t n = ids.ByteLength() / ObjectID::kSize;
    if (index.ElementLength() < n) { ThrowType(env, "stageNested: ownerIndex too short"); return env.Undefined(); }
    std::vector<NestedRefIn> refs(n);
    for (size_t i = 0; i < n; i++) {
      refs[i].id = ObjectID::FromBytes(ids.Data() + i * ObjectID::kSize);
      uint32_t oi = index[i];
      if (oi < owner_vals.Length()) refs[i].owner_address = owner_vals.Get(oi).ToString();
      if (has_slots) {
        auto slots = info[3].As<Napi::Uint32Array>();
        refs[i].slot = i < slots.ElementLength() ? static_cast<int>(slots[i]) : 0;
      }
    }
    core_->StageNested(std::move(refs));
    return env.Undefined();
  }

  // reconstruct(id): owner side; throws ObjectLostError if not recomputable.
  Napi::Value Reconstruct(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    ObjectID id;
    if (!IdFromValue(info[0], &id)) { ThrowType(env, "reconstruct: bad object id"); return env.Undefined(); }
    Status s = core_->Reconstruct(id);
    MaybeKick();
    if (!s.ok()) ThrowStatus(env, s);
    return env.Undefined();
  }

  Napi::Value ReportLost(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    ObjectID id;
    if (!IdFromValue(info[0], &id)) { ThrowType(env, "reportLost: bad object id"); return env.Undefined(); }
    core_->ReportLost(id, info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string());
    MaybeKick();
    return env.Undefined();
  }

  // loseFromStore(id): test hook (internal), see PlasmaStore::Lose.
  Napi::Value LoseFromStore(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    ObjectID id;
    if (!IdFromValue(info[0], &id)) { ThrowType(env, "loseFromStore: bad object id"); return env.Undefined(); }
    Status s = core_->LoseFromStore(id);
    if (!s.ok()) ThrowStatus(env, s);
    return env.Undefined();
  }

  Napi::Value MemorySummary(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    return Napi::String::New(env, core_->MemorySummaryJson());
  }

  Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (core_ && !down_) {
      down_ = true;
      core_->Shutdown();
      tsfn_.Release();
    }
    return env.Undefined();
  }

  std::shared_ptr<CoreWorker> core_;
  Napi::ThreadSafeFunction tsfn_;
  std::shared_ptr<std::atomic<bool>> pending_ = std::make_shared<std::atomic<bool>>(false);
  bool down_ = false;
  std::unordered_map<uint32_t, Napi::ObjectReference> weak_;
  Napi::FunctionReference kick_;
  Napi::ObjectReference scratch_ref_;
  uint8_t* scratch_ = nullptr;
  size_t scratch_len_ = 0;
  uint32_t next_weak_ = 1;
};

}  // namespace

Napi::Object InitCoreWorker(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeCoreWorker", CoreWorkerWrap::Define(env));
  return exports;
}

}  // namespace rayts::bindings
