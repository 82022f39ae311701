// Value conversion between JS and the core for NativeCoreWorker: see
// core_worker_convert.h.
#include "bindings/core_worker_convert.h"

namespace rayts::bindings {

std::shared_ptr<const std::string> BytesOf(const Napi::Value& v) {
  if (v.IsBuffer()) {
    auto b = v.As<Napi::Buffer<uint8_t>>();
    return std::make_shared<const std::string>(reinterpret_cast<const char*>(b.Data()), b.Length());
  }
  if (v.IsTypedArray()) {
    auto t = v.As<Napi::TypedArray>();
    auto ab = t.ArrayBuffer();
    return std::make_shared<const std::string>(static_cast<const char*>(ab.Data()) + t.ByteOffset(), t.ByteLength());
  }
  if (v.IsString()) return std::make_shared<const std::string>(v.As<Napi::String>().Utf8Value());
  return nullptr;
}

bool ParseArgs(Napi::Env env, const Napi::Value& v, std::vector<TaskArgIn>* out) {
  Napi::Array args = v.As<Napi::Array>();
  out->reserve(args.Length());
  for (uint32_t i = 0; i < args.Length(); i++) {
    Napi::Value a = args.Get(i);
    if (a.IsArray()) {
      Napi::Array pair = a.As<Napi::Array>();
      ObjectID id;
      if (!IdFromValue(pair.Get(0u), &id)) { ThrowType(env, "bad argument ref"); return false; }
      Napi::Value owner = pair.Get(1u);
      out->push_back(TaskArgIn::Ref(id, owner.IsString() ? owner.As<Napi::String>().Utf8Value() : std::string()));
    } else if (a.IsTypedArray()) {  // a Buffer too
      auto t = a.As<Napi::TypedArray>();
      auto ab = t.ArrayBuffer();
      out->push_back(TaskArgIn::Value(std::string(static_cast<const char*>(ab.Data()) + t.ByteOffset(), t.ByteLength())));
    } else if (a.IsString()) {
      out->push_back(TaskArgIn::Value(a.As<Napi::String>().Utf8Value()));
    } else {
      ThrowType(env, "argument must be bytes");
      return false;
    }
  }
  return true;
}

ReturnValue ReturnFrom(const Napi::Value& data, const Napi::Value& in_plasma, const Napi::Value& is_error,
                       const Napi::Value& size) {
  ReturnValue v;
  v.data = BytesOf(data);
  v.in_plasma = in_plasma.ToBoolean();
  v.is_error = is_error.ToBoolean();
  v.size = static_cast<uint64_t>(size.ToNumber().DoubleValue());
  return v;
}

Napi::Object EventTypes(Napi::Env env) {
  using T = Event::Type;
  const std::pair<const char*, T> types[] = {
      {"Ready", T::kObjectReady},   {"Execute", T::kExecuteTask}, {"GenItem", T::kGeneratorItem},
      {"GenEnd", T::kGeneratorEnd}, {"Gcs", T::kGcsReply},        {"Cancel", T::kCancelTask},
      {"TriggerGc", T::kTriggerGc}, {"RecoverObject", T::kRecoverObject}, {"Local", T::kObjectLocal},
  };
  Napi::Object o = Napi::Object::New(env);
  for (auto& [name, t] : types) o.Set(name, Napi::Number::New(env, static_cast<int>(t)));
  return o;
}

// Node 20's N-API cannot reference a string (napi_create_reference takes
// objects only), so the strings live in one JS array held by a reference,
// and each batch reads the keys out of it once.
EventKeys::EventKeys(Napi::Env env) { Reset(env); }

void EventKeys::Reset(Napi::Env env) {
  static const char* const names[kCount] = {
      "t", "handle", "taskId", "fnHash", "fnSource", "moduleUrl", "exportName", "name", "numReturns",
      "retryExceptions", "actorId", "actorCreation", "method", "maxConcurrency", "concurrencyGroups", "releaseCpu",
      "args", "attempt", "skipItems"};
  Napi::Array a = Napi::Array::New(env, kCount);
  for (uint32_t i = 0; i < kCount; i++) a.Set(i, Napi::String::New(env, names[i]));
  store_ = Napi::Persistent(a);
  index_.clear();
  by_class_.clear();
  next_ = kCount;
}

void EventKeys::Begin(Napi::Env env) {
  Napi::Array a = store_.Value();
  for (uint32_t i = 0; i < kCount; i++) local_[i] = a.Get(i);
}

uint32_t EventKeys::Store(Napi::Env env, napi_value v) {
  if (next_ >= kCount + 1024) {  // bounded: many distinct functions
    Reset(env);
    Begin(env);
  }
  store_.Value().Set(next_, v);
  return next_++;
}

napi_value EventKeys::Cached(Napi::Env env, const std::string& s) {
  auto it = index_.find(s);
  if (it != index_.end()) return store_.Value().Get(it->second);
  Napi::String v = Napi::String::New(env, s);
  uint32_t at = Store(env, v);
  index_.emplace(s, at);
  return v;
}

napi_value EventKeys::ClassString(Napi::Env env, uint64_t serial, size_t field, const std::string& s, bool* first) {
  uint64_t key = serial * kCount + field;
  auto it = by_class_.find(key);
  if (first) *first = it == by_class_.end();
  if (it != by_class_.end()) return store_.Value().Get(it->second);
  Napi::String v = Napi::String::New(env, s);
  uint32_t at = Store(env, v);
  by_class_.emplace(key, at);
  return v;
}

namespace {

// An execute event: every property defined in one call.
Napi::Value ExecuteToJs(Napi::Env env, EventKeys& k, ExecTask& t, int type) {
  napi_property_descriptor props[EventKeys::kCount];
  size_t n = 0;
  auto add = [&](size_t key, napi_value v) {
    props[n++] = napi_property_descriptor{nullptr, k.key(key), nullptr, nullptr, nullptr, v,
                                          static_cast<napi_property_attributes>(napi_writable | napi_enumerable |
                                                                                napi_configurable),
                                          nullptr};
  };
  add(EventKeys::kT, Napi::Number::New(env, type));
  add(EventKeys::kHandle, Napi::Number::New(env, static_cast<double>(t.handle)));
  add(EventKeys::kTaskId, IdToBuffer(env, t.task_id));
  // The class's strings by its number; its source only the first time
  // (the executor compiles it once per hash).
  const ExecClass& c = *t.cls;
  bool first = false;
  add(EventKeys::kFnHash, k.ClassString(env, c.serial, EventKeys::kFnHash, c.function.hash, &first));
  if (first && !c.function.source.empty()) add(EventKeys::kFnSource, Napi::String::New(env, c.function.source));
  if (!c.function.module_url.empty()) {
    add(EventKeys::kModuleUrl, k.ClassString(env, c.serial, EventKeys::kModuleUrl, c.function.module_url));
    if (!c.function.export_name.empty()) {
      add(EventKeys::kExportName, k.ClassString(env, c.serial, EventKeys::kExportName, c.function.export_name));
    }
  }
  add(EventKeys::kName, t.name.empty() ? k.ClassString(env, c.serial, EventKeys::kName, c.name) : k.Cached(env, t.name));
  add(EventKeys::kNumReturns, Napi::Number::New(env, t.num_returns));
  if (!c.retry_exceptions.empty()) {
    add(EventKeys::kRetryExceptions, k.ClassString(env, c.serial, EventKeys::kRetryExceptions, c.retry_exceptions));
  }
  if (t.attempt > 0) add(EventKeys::kAttempt, Napi::Number::New(env, t.attempt));
  if (t.generator_skip > 0) add(EventKeys::kSkipItems, Napi::Number::New(env, t.generator_skip));
  if (!t.actor_id.IsNil()) {
    add(EventKeys::kActorId, IdToBuffer(env, t.actor_id));
    add(EventKeys::kActorCreation, Napi::Boolean::New(env, t.actor_creation));
    if (!t.method.empty()) add(EventKeys::kMethod, k.Cached(env, t.method));
    if (t.max_concurrency > 0) add(EventKeys::kMaxConcurrency, Napi::Number::New(env, t.max_concurrency));
    if (!t.concurrency_groups.empty()) add(EventKeys::kConcurrencyGroups, Napi::String::New(env, t.concurrency_groups));
    if (t.release_cpu) add(EventKeys::kReleaseCpu, Napi::Boolean::New(env, true));
  }
  Napi::Array args = Napi::Array::New(env, t.args.size());
  for (size_t j = 0; j < t.args.size(); j++) {
    ExecArg& a = t.args[j];
    if (!a.by_ref) {
      args.Set(j, Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(a.data->data()), a.data->size()));
    } else {
      Napi::Array r = Napi::Array::New(env, 3);
      r.Set(0u, IdToBuffer(env, a.id));
      r.Set(1u, Napi::String::New(env, a.owner_address));
      r.Set(2u, Napi::Boolean::New(env, a.in_plasma));
      args.Set(j, r);
    }
  }
  add(EventKeys::kArgs, args);
  napi_value obj;
  napi_status st = napi_create_object(env, &obj);
  if (st == napi_ok) st = napi_define_properties(env, obj, n, props);
  NAPI_THROW_IF_FAILED(env, st, Napi::Value());
  return Napi::Value(env, obj);
}

}  // namespace

Napi::Array EventsToJs(Napi::Env env, EventKeys& keys, std::vector<Event>& events) {
  Napi::Array out = Napi::Array::New(env, events.size());
  bool keyed = false;  // the keys are loaded for the first execute event only
  for (size_t i = 0; i < events.size(); i++) {
    Event& e = events[i];
    if (e.type == Event::Type::kObjectReady) {
      // The common event travels as just its id, already as the latin1
      // string the runtime keys its waiters by (one string, no Buffer and
      // no conversion in JS).
      out.Set(i, IdToKey(env, e.object_id));
      continue;
    }
    if (e.type == Event::Type::kExecuteTask) {
      if (!keyed) keys.Begin(env);
      keyed = true;
      out.Set(i, ExecuteToJs(env, keys, *e.task, static_cast<int>(e.type)));
      continue;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("t", Napi::Number::New(env, static_cast<int>(e.type)));
    switch (e.type) {
      case Event::Type::kObjectReady:
        o.Set("id", IdToBuffer(env, e.object_id));
        break;
      case Event::Type::kExecuteTask:  // converted above
        break;
      case Event::Type::kGeneratorItem:
        o.Set("taskId", IdToBuffer(env, e.task_id));
        o.Set("id", IdToBuffer(env, e.object_id));
        o.Set("index", Napi::Number::New(env, static_cast<double>(e.index)));
        break;
      case Event::Type::kGeneratorEnd:
        o.Set("taskId", IdToBuffer(env, e.task_id));
        o.Set("count", Napi::Number::New(env, static_cast<double>(e.index)));
        break;
      case Event::Type::kGcsReply:
        o.Set("id", Napi::Number::New(env, static_cast<double>(e.id)));
        o.Set("code", Napi::Number::New(env, e.code));
        o.Set("text", e.text);
        break;
      case Event::Type::kTriggerGc:
        break;
      case Event::Type::kRecoverObject:
        o.Set("id", IdToBuffer(env, e.object_id));
        break;
      case Event::Type::kObjectLocal:  // keyed as the Ready events are
        o.Set("key", IdToKey(env, e.object_id));
        o.Set("code", Napi::Number::New(env, e.code));
        break;
      case Event::Type::kCancelTask:
        o.Set("taskId", IdToBuffer(env, e.task_id));
        o.Set("force", Napi::Boolean::New(env, e.force));
        break;
    }
    out.Set(i, o);
  }
  return out;
}

}  // namespace rayts::bindings
