// NativeCoreWorker (core_worker_wrap.h): tasks and actors: task classes,
// submission, actor creation and calls, kill, cancel, and the replies of
// tasks executed here.
#include "bindings/core_worker_wrap.h"

namespace rayts::bindings {

// registerTaskClass(hash, source, moduleUrl, exportName, name, resources) -> class id
//   resources: [name, amount, name, amount, ...]
Napi::Value CoreWorkerWrap::RegisterTaskClass(const Napi::CallbackInfo& info) {
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
  // schedulingStrategy, checked by ts/api/options.ts: '' | 'SPREAD' | '<node id hex>' | '<node id hex>:soft'.
  if (info.Length() > 7 && info[7].IsString()) {
    std::string s = info[7].As<Napi::String>().Utf8Value();
    if (s == "SPREAD") {
      c.scheduling.strategy = 1;
    } else if (s.size() >= 2 * NodeID::kSize) {
      std::string bytes;
      for (size_t i = 0; i + 1 < 2 * NodeID::kSize; i += 2) {
        bytes.push_back(static_cast<char>(std::stoi(s.substr(i, 2), nullptr, 16)));
      }
      c.scheduling.strategy = 2;
      c.scheduling.node = NodeID::FromBinary(bytes);
      c.scheduling.soft = s.size() > 2 * NodeID::kSize && s.substr(2 * NodeID::kSize) == ":soft";
    }
  }
  return Napi::Number::New(env, core_->submitter().RegisterTaskClass(std::move(c)));
}

// Writes the ids to the scratch buffer (returns undefined) or a new Buffer.
Napi::Value CoreWorkerWrap::IdsOut(Napi::Env env, const TaskID& first, const std::vector<ObjectID>& ids) {
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
Napi::Value CoreWorkerWrap::CreateActor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  SubmitRequest req;
  req.cls = core_->submitter().GetTaskClass(info[0].ToNumber().Uint32Value());
  if (!req.cls) { ThrowType(env, "createActor: unknown class"); return env.Undefined(); }
  if (!ParseArgs(env, info[1], &req.args)) return env.Undefined();
  if (info.Length() > 2 && info[2].IsNumber()) req.mutable_actor().max_concurrency = info[2].ToNumber().Int32Value();
  if (info.Length() > 3 && info[3].IsBuffer() && !IdFromValue(info[3], &req.actor_id)) {
    ThrowType(env, "createActor: bad actor id");
    return env.Undefined();
  }
  if (info.Length() > 4 && info[4].IsNumber()) req.mutable_actor().max_restarts = info[4].ToNumber().Int32Value();
  if (info.Length() > 5 && info[5].IsNumber()) req.mutable_actor().max_task_retries = info[5].ToNumber().Int32Value();
  if (info.Length() > 6 && info[6].IsString()) req.mutable_actor().concurrency_groups = info[6].As<Napi::String>().Utf8Value();
  if (info.Length() > 7) req.mutable_actor().detached = info[7].ToBoolean().Value();
  if (info.Length() > 8) req.mutable_actor().release_cpu = info[8].ToBoolean().Value();
  ObjectID ready;
  auto actor = core_->actors().Create(std::move(req), &ready);
  MaybeKick();
  if (!actor.ok()) { ThrowStatus(env, actor.status()); return env.Undefined(); }
  return IdsOut(env, *actor, {ready});
}

// submitActorTask(classId, actorId, method, args, numReturns, maxPending?, maxTaskRetries?)
//   -> task id + return ids (maxTaskRetries: from the handle, used by a borrower)
Napi::Value CoreWorkerWrap::SubmitActorTask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  SubmitRequest req;
  req.cls = core_->submitter().GetTaskClass(info[0].ToNumber().Uint32Value());
  if (!req.cls) { ThrowType(env, "submitActorTask: unknown class"); return env.Undefined(); }
  if (!IdFromValue(info[1], &req.actor_id)) { ThrowType(env, "submitActorTask: bad actor id"); return env.Undefined(); }
  req.mutable_actor().method = info[2].ToString();
  if (!ParseArgs(env, info[3], &req.args)) return env.Undefined();
  req.num_returns = info[4].ToNumber().Int32Value();
  if (info.Length() > 5 && info[5].IsNumber()) req.mutable_actor().max_pending = info[5].ToNumber().Int32Value();
  if (info.Length() > 6 && info[6].IsNumber()) req.mutable_actor().max_task_retries = info[6].ToNumber().Int32Value();
  // A call's named concurrency group travels where a creation's group table does.
  if (info.Length() > 7 && info[7].IsString()) req.mutable_actor().concurrency_groups = info[7].As<Napi::String>().Utf8Value();
  if (info.Length() > 8 && info[8].IsString() && info[8].As<Napi::String>().Utf8Value().size() > 0) {
    req.name = std::make_shared<const std::string>(info[8].As<Napi::String>().Utf8Value());
  }
  std::vector<ObjectID> ids;
  auto tid = core_->actors().Submit(std::move(req), &ids);
  MaybeKick();
  if (!tid.ok()) { ThrowStatus(env, tid.status()); return env.Undefined(); }
  return IdsOut(env, *tid, ids);
}

Napi::Value CoreWorkerWrap::SetActorToken(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  TaskID actor;
  ObjectID token;
  if (!IdFromValue(info[0], &actor)) { ThrowType(env, "setActorToken: bad actor id"); return env.Undefined(); }
  if (!IdFromValue(info[1], &token)) { ThrowType(env, "setActorToken: bad token id"); return env.Undefined(); }
  core_->actors().SetToken(actor, token);
  return env.Undefined();
}

Napi::Value CoreWorkerWrap::SetActorOwner(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  TaskID actor;
  if (!IdFromValue(info[0], &actor)) { ThrowType(env, "setActorOwner: bad actor id"); return env.Undefined(); }
  if (!info[1].IsString()) { ThrowType(env, "setActorOwner: owner address must be a string"); return env.Undefined(); }
  core_->actors().SetOwner(actor, info[1].As<Napi::String>().Utf8Value());
  return env.Undefined();
}

Napi::Value CoreWorkerWrap::KillActor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  TaskID actor;
  if (!IdFromValue(info[0], &actor)) { ThrowType(env, "killActor: bad actor id"); return env.Undefined(); }
  core_->actors().Kill(actor, info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string("killed by ray.kill"),
                   info.Length() > 2 ? info[2].ToBoolean().Value() : true,
                   info.Length() > 3 ? info[3].ToBoolean().Value() : false);
  MaybeKick();
  return env.Undefined();
}

// submitTask(classId, args, numReturns, maxRetries)
//   args: Array<Buffer (by value) | [id: Buffer, owner: string] (by ref)>
// -> Buffer: task id (16 bytes) followed by the return ids (20 bytes each)
Napi::Value CoreWorkerWrap::SubmitTask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  SubmitRequest req;
  req.cls = core_->submitter().GetTaskClass(info[0].ToNumber().Uint32Value());
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
  auto tid = core_->submitter().Submit(std::move(req), &ids);
  MaybeKick();
  if (!tid.ok()) { ThrowStatus(env, tid.status()); return env.Undefined(); }
  return IdsOut(env, *tid, ids);  // JS reads the ids from its scratch buffer when they fit
}

Napi::Value CoreWorkerWrap::CancelTask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  TaskID tid;
  if (!IdFromValue(info[0], &tid)) { ThrowType(env, "cancelTask: bad task id"); return env.Undefined(); }
  // owner (optional): the task's owner when it is another process.
  std::string owner = info.Length() > 3 && info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : std::string();
  Status s = core_->tasks().Cancel(tid, info[1].ToBoolean(), info[2].ToBoolean(), owner);
  MaybeKick();
  if (s.code() == StatusCode::kInvalidArgument) ThrowType(env, s.message());
  else if (!s.ok()) ThrowStatus(env, s);
  return env.Undefined();
}

// taskDone(handle, returns: Array<[data|null, inPlasma, isError, size]> | Uint8Array (one inline value), retryable?)
Napi::Value CoreWorkerWrap::TaskDone(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_ || down_) return env.Undefined();
  uint64_t handle = static_cast<uint64_t>(info[0].ToNumber().DoubleValue());
  std::vector<ReturnValue> rets;
  if (info[1].IsTypedArray()) {  // one inline value: no arrays to build and read
    ReturnValue v;
    v.data = BytesOf(info[1]);
    v.size = v.data ? v.data->size() : 0;
    rets.push_back(std::move(v));
  } else if (info[1].IsArray()) {
    Napi::Array a = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Array r = a.Get(i).As<Napi::Array>();
      rets.push_back(ReturnFrom(r.Get(0u), r.Get(1u), r.Get(2u), r.Get(3u)));
    }
  }
  core_->receiver().TaskDone(handle, std::move(rets), info.Length() > 2 && info[2].ToBoolean().Value(),
                  info.Length() > 3 && info[3].ToBoolean().Value());
  MaybeKick();
  return env.Undefined();
}

// reportGeneratorItem(handle, index, data|null, inPlasma, isError, size)
Napi::Value CoreWorkerWrap::ReportGeneratorItem(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_ || down_) return env.Undefined();
  core_->receiver().ReportGeneratorItem(static_cast<uint64_t>(info[0].ToNumber().DoubleValue()),
                             static_cast<int64_t>(info[1].ToNumber().DoubleValue()),
                             ReturnFrom(info[2], info[3], info[4], info[5]));
  MaybeKick();
  return env.Undefined();
}

}  // namespace rayts::bindings
