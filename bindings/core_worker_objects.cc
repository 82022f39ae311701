// NativeCoreWorker (core_worker_wrap.h): objects and references: inline
// puts, plasma create/seal/get/release, tryGet, local refs, weak handles,
// nested refs and lost-object recovery.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "bindings/core_worker_wrap.h"

namespace rayts::bindings {

namespace {

// The bytes of a typed array in one N-API call (no Buffer type check, no
// second info call). False for anything that is not a typed array.
bool ViewBytes(napi_env env, napi_value v, const uint8_t** data, size_t* len) {
  napi_typedarray_type type;
  size_t length;
  void* p;
  if (napi_get_typedarray_info(env, v, &type, &length, &p, nullptr, nullptr) != napi_ok) return false;
  size_t elem = 1;
  switch (type) {
    case napi_int16_array:
    case napi_uint16_array: elem = 2; break;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: elem = 4; break;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array: elem = 8; break;
    default: break;
  }
  *data = static_cast<const uint8_t*>(p);
  *len = length * elem;
  return true;
}

// An object id from a 20-byte typed array (an id view into an arena, a
// Buffer, a Uint8Array).
bool FastId(napi_env env, napi_value v, ObjectID* out) {
  const uint8_t* p;
  size_t len;
  if (!ViewBytes(env, v, &p, &len) || len != ObjectID::kSize || !p) return false;
  *out = ObjectID::FromBytes(p);
  return true;
}

// Large sources of a plasma write: untouched pages of a fresh typed array
// would take one read fault per 4 KiB page while they are copied (on this
// machine ~1.5 us each, 20,480 for 80 MiB: more than the copy itself).
// Marked for transparent huge pages, an untouched 2 MiB block reads as the
// huge zero page: one fault instead of 512. Only blocks with no page in
// memory yet (mincore) are marked: a source in reused memory (a calloc from
// the malloc heap, already written) gains nothing, and marking it would
// make later faults there allocate and clear whole huge pages. Memory that
// is not private anonymous ignores the advice.
constexpr size_t kHugeAdviceMin = 4u << 20;
constexpr uintptr_t kHugePage = 2u << 20;

void AdviseHugeRead(const uint8_t* p, size_t len) {
  if (len < kHugeAdviceMin) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + len) & ~(kHugePage - 1);
  if (end <= begin) return;
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t per_block = kHugePage / page;
  std::vector<unsigned char> resident((end - begin) / page);
  if (::mincore(reinterpret_cast<void*>(begin), end - begin, resident.data()) != 0) return;
  uintptr_t run = 0;  // start of the current run of untouched blocks; 0: none
  for (uintptr_t b = begin; b <= end; b += kHugePage) {
    bool untouched = b < end;
    if (untouched) {
      const unsigned char* r = resident.data() + (b - begin) / page;
      for (size_t i = 0; i < per_block; i++) {
        if (r[i] & 1) {
          untouched = false;
          break;
        }
      }
    }
    if (untouched && run == 0) run = b;
    if (!untouched && run != 0) {
      (void)::madvise(reinterpret_cast<void*>(run), b - run, MADV_HUGEPAGE);  // advice only
      run = 0;
    }
  }
}

// Object ids concatenated (ObjectID::kSize bytes each) in a Uint8Array.
std::vector<ObjectID> ConcatenatedIds(const Napi::Uint8Array& t) {
  size_t n = t.ByteLength() / ObjectID::kSize;
  std::vector<ObjectID> v(n);
  for (size_t i = 0; i < n; i++) v[i] = ObjectID::FromBytes(t.Data() + i * ObjectID::kSize);
  return v;
}

}  // namespace

// putInline(data, idOffset?) -> undefined | Buffer. With idOffset (and an
// id arena set, setScratch(buf, 1)) the new id is written to the arena at
// that offset; else to the scratch buffer; else returned as a Buffer.
Napi::Value CoreWorkerWrap::PutInline(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  const uint8_t* p;
  size_t len;
  std::shared_ptr<const std::string> data;
  if (ViewBytes(env, info[0], &p, &len)) {
    data = std::make_shared<const std::string>(reinterpret_cast<const char*>(p), len);
  } else {
    data = BytesOf(info[0]);
  }
  ObjectID id = core_->objects().PutInlineNew(std::move(data));
  MaybeKick();  // nested refs staged for this put may register with their owners
  if (info.Length() > 1 && info[1].IsNumber() && id_arena_) {
    double off = info[1].As<Napi::Number>().DoubleValue();
    if (off >= 0 && off + ObjectID::kSize <= static_cast<double>(id_arena_len_)) {
      std::memcpy(id_arena_ + static_cast<size_t>(off), id.data(), ObjectID::kSize);
      return env.Undefined();
    }
    return IdToBuffer(env, id);
  }
  if (scratch_ && scratch_len_ >= ObjectID::kSize) {
    std::memcpy(scratch_, id.data(), ObjectID::kSize);
    return env.Undefined();
  }
  return IdToBuffer(env, id);
}

// setScratch(u8, kind = 0): a JS-owned buffer the addon writes into.
//   kind 0: the scratch buffer (ids of puts without an offset, submits).
//   kind 1: the id arena (putInline with an offset).
//   kind 2: the value arena (tryGet with an offset).
// The addon holds a reference to the buffer until the next call of the kind.
Napi::Value CoreWorkerWrap::SetScratch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) { ThrowType(env, "setScratch expects a Uint8Array"); return env.Undefined(); }
  auto u = info[0].As<Napi::Uint8Array>();
  const uint32_t kind = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  switch (kind) {
    case 1:
      id_arena_ref_ = Napi::Persistent(info[0].As<Napi::Object>());
      id_arena_ = u.Data();
      id_arena_len_ = u.ByteLength();
      break;
    case 2:
      value_arena_ref_ = Napi::Persistent(info[0].As<Napi::Object>());
      value_arena_ = u.Data();
      value_arena_len_ = u.ByteLength();
      break;
    default:
      scratch_ref_ = Napi::Persistent(info[0].As<Napi::Object>());
      scratch_ = u.Data();
      scratch_len_ = u.ByteLength();
      break;
  }
  return env.Undefined();
}

// plasmaCreate(id, size, spill = true, sources?) -> offset
//   sources: the large views the caller will copy into the object (see
//   AdviseHugeRead).
Napi::Value CoreWorkerWrap::PlasmaCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  ObjectID id;
  if (!FastId(env, info[0], &id)) { ThrowType(env, "plasmaCreate: bad object id"); return env.Undefined(); }
  if (info.Length() > 3 && info[3].IsArray()) {
    Napi::Array sources = info[3].As<Napi::Array>();
    for (uint32_t i = 0; i < sources.Length(); i++) {
      const uint8_t* p;
      size_t len;
      if (ViewBytes(env, sources.Get(i), &p, &len)) AdviseHugeRead(p, len);
    }
  }
  // plasmaCreate(id, size, spill = true): spill = false fails rather than spill.
  const bool spill = info.Length() < 3 || !info[2].IsBoolean() || info[2].As<Napi::Boolean>().Value();
  // Plasma deletes of refs released this turn wait in the outbox (flushed
  // when the turn ends): send them before asking for room, or a put+release
  // loop fills the store with garbage that the node then spills to disk.
  core_->FlushOutbox();
  auto off = core_->objects().PlasmaCreate(id, static_cast<uint64_t>(info[1].ToNumber().DoubleValue()), spill);
  if (!off.ok()) { ThrowStatus(env, off.status()); return env.Undefined(); }
  return Napi::Number::New(env, static_cast<double>(*off));
}

Napi::Value CoreWorkerWrap::PlasmaSeal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  ObjectID id;
  if (!FastId(env, info[0], &id)) { ThrowType(env, "plasmaSeal: bad object id"); return env.Undefined(); }
  Status s = core_->objects().PlasmaSeal(id, info[1].ToBoolean());
  if (!s.ok()) ThrowStatus(env, s);
  MaybeKick();
  return env.Undefined();
}

// plasmaGet(id, priority?) -> [offset, size]; priority: a pull's admission
// order on this node (0 get, 1 wait, 2 task argument).
Napi::Value CoreWorkerWrap::PlasmaGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  ObjectID id;
  if (!FastId(env, info[0], &id)) { ThrowType(env, "plasmaGet: bad object id"); return env.Undefined(); }
  PullFrom from = core_->objects().RemoteLocation(id);  // on another node: pulled here first
  const uint8_t prio =
      info.Length() > 1 && info[1].IsNumber() ? static_cast<uint8_t>(std::clamp(info[1].As<Napi::Number>().Int32Value(), 0, 2)) : 0;
  auto v = core_->plasma().Get(id, from, prio);
  if (!v.ok()) { ThrowStatus(env, v.status()); return env.Undefined(); }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, static_cast<double>(v->offset)));
  a.Set(1u, Napi::Number::New(env, static_cast<double>(v->size)));
  return a;
}

Napi::Value CoreWorkerWrap::PlasmaRelease(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_ || down_) return env.Undefined();
  ObjectID id;
  if (FastId(info.Env(), info[0], &id)) core_->plasma().Release(id);
  return env.Undefined();
}

// tryGet(id, valueOffset?) -> null (unknown) | false (pending) | true (ready,
//   in plasma) | Buffer (ready inline value) | number (ready inline value of
//   that many bytes, copied into the value arena at valueOffset: given an
//   offset, a value arena (setScratch(buf, 2)) and room there) |
//   {error: string} (ready error)
Napi::Value CoreWorkerWrap::TryGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  ObjectID id;
  if (!FastId(env, info[0], &id)) { ThrowType(env, "tryGet: bad object id"); return env.Undefined(); }
  LookupResult r = core_->objects().TryGet(id);
  if (!r.known) return env.Null();
  if (!r.ready) return Napi::Boolean::New(env, false);
  if (r.is_error) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("error", Napi::String::New(env, r.data ? *r.data : std::string("{}")));
    return o;
  }
  if (r.in_plasma) return Napi::Boolean::New(env, true);
  const size_t n = r.data ? r.data->size() : 0;
  if (info.Length() > 1 && info[1].IsNumber() && value_arena_) {
    double off = info[1].As<Napi::Number>().DoubleValue();
    if (off >= 0 && off + static_cast<double>(n) <= static_cast<double>(value_arena_len_)) {
      if (n > 0) std::memcpy(value_arena_ + static_cast<size_t>(off), r.data->data(), n);
      return Napi::Number::New(env, static_cast<double>(n));
    }
  }
  if (n == 0) return Napi::Buffer<uint8_t>::New(env, 0);
  return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(r.data->data()), n);
}

Napi::Value CoreWorkerWrap::Subscribe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  ObjectID id;
  if (!IdFromValue(info[0], &id)) { ThrowType(env, "subscribe: bad object id"); return env.Undefined(); }
  core_->objects().Subscribe(id, info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string());
  MaybeKick();
  return env.Undefined();
}

Napi::Value CoreWorkerWrap::AddLocalRef(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_ || down_) return env.Undefined();
  ObjectID id;
  if (!IdFromValue(info[0], &id)) { ThrowType(env, "addLocalRef: bad object id"); return env.Undefined(); }
  core_->objects().AddLocalRef(id, info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string());
  MaybeKick();  // a new borrowed ref registers with its owner
  return env.Undefined();
}

// addLocalRefs(ids, ownerIndex, owners): the refs decoded from one value,
// counted at once. ids: concatenated 20-byte ids; ownerIndex[i] indexes
// owners (the distinct owner addresses; '' = this process).
Napi::Value CoreWorkerWrap::AddLocalRefs(const Napi::CallbackInfo& info) {
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
  core_->objects().AddLocalRefs(refs);
  MaybeKick();  // new borrowed refs register with their owners
  return env.Undefined();
}

// Weak handles without KeepDuringJob: after a full GC, sweepWeak() tells
// at once which tracked objects were collected (a FinalizationRegistry
// would only say so on a later turn, and a WeakRef made in this job keeps
// its target alive until the job ends). Used for large refs and views
// under store pressure.
Napi::Value CoreWorkerWrap::TrackWeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) { ThrowType(env, "trackWeak expects an object"); return env.Undefined(); }
  uint32_t token = next_weak_++;
  weak_.emplace(token, Napi::Weak(info[0].As<Napi::Object>()));
  return Napi::Number::New(env, token);
}

Napi::Value CoreWorkerWrap::SweepWeak(const Napi::CallbackInfo& info) {
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

// readyMask(ids) -> Uint8Array, 1 where the object is ready in this process
// (2: ready, and in plasma on another node).
//   ids: the object ids concatenated (20 bytes each), one native call for all.
Napi::Value CoreWorkerWrap::ReadyMask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env) || !info[0].IsTypedArray()) { ThrowType(env, "readyMask expects concatenated ids"); return env.Undefined(); }
  std::vector<ObjectID> v = ConcatenatedIds(info[0].As<Napi::Uint8Array>());
  auto out = Napi::Uint8Array::New(env, v.size());
  core_->objects().ReadyMask(v, out.Data());
  return out;
}

Napi::Value CoreWorkerWrap::FetchLocal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env) || !info[0].IsTypedArray()) { ThrowType(env, "fetchLocal expects concatenated ids"); return env.Undefined(); }
  core_->objects().FetchLocal(ConcatenatedIds(info[0].As<Napi::Uint8Array>()));
  MaybeKick();
  return env.Undefined();
}

Napi::Value CoreWorkerWrap::RemoveLocalRefs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_ || down_ || !info[0].IsArray()) return env.Undefined();
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<ObjectID> ids;
  ids.reserve(a.Length());
  for (uint32_t i = 0, n = a.Length(); i < n; i++) {
    ObjectID id;
    if (FastId(env, a.Get(i), &id)) ids.push_back(id);
  }
  core_->objects().RemoveLocalRefs(ids);
  MaybeKick();
  return env.Undefined();
}

// stageNested(ids, ownerIndex, owners, slots?): refs found inside the value
// serialized next (see CoreWorker::StageNested).
Napi::Value CoreWorkerWrap::StageNested(const Napi::CallbackInfo& info) {
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
  core_->borrowers().StageNested(std::move(refs));
  return env.Undefined();
}

// reconstruct(id): owner side; throws ObjectLostError if not recomputable.
Napi::Value CoreWorkerWrap::Reconstruct(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  ObjectID id;
  if (!IdFromValue(info[0], &id)) { ThrowType(env, "reconstruct: bad object id"); return env.Undefined(); }
  Status s = core_->tasks().Reconstruct(id);
  MaybeKick();
  if (!s.ok()) ThrowStatus(env, s);
  return env.Undefined();
}

Napi::Value CoreWorkerWrap::ReportLost(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  ObjectID id;
  if (!IdFromValue(info[0], &id)) { ThrowType(env, "reportLost: bad object id"); return env.Undefined(); }
  core_->objects().ReportLost(id, info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string());
  MaybeKick();
  return env.Undefined();
}

#ifdef RAYTS_TEST_HOOKS
// loseFromStore(id): test hook (internal), see PlasmaStore::Lose.
Napi::Value CoreWorkerWrap::LoseFromStore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Alive(env)) return env.Undefined();
  ObjectID id;
  if (!IdFromValue(info[0], &id)) { ThrowType(env, "loseFromStore: bad object id"); return env.Undefined(); }
  Status s = core_->plasma().Lose(id);
  if (!s.ok()) ThrowStatus(env, s);
  return env.Undefined();
}
#endif

}  // namespace rayts::bindings
