// NativeCoreWorker (core_worker_wrap.h): local refs counted in bulk, from
// packed ids. A value decoded with thousands of refs, and the batch of
// handles the garbage collector dropped in one turn, each cross the
// boundary as one Uint8Array of concatenated 20-byte ids: no N-API call
// and no std::string per ref.
// Thread safety: JS thread only, as every NativeCoreWorker method; the
// ObjectManager takes the core lock once per call.
#include "bindings/core_worker_wrap.h"

namespace rayts::bindings {

// addLocalRefsPacked(ids, ownerIndex, owners): ids concatenated; the i-th
// is owned by owners[ownerIndex[i]] ('' = this process).
Napi::Value CoreWorkerWrap::AddLocalRefsPacked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_ || down_) return env.Undefined();
  if (!info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[2].IsArray()) {
    ThrowType(env, "addLocalRefsPacked expects (ids, ownerIndex, owners)");
    return env.Undefined();
  }
  auto ids = info[0].As<Napi::Uint8Array>();
  auto index = info[1].As<Napi::Uint32Array>();
  Napi::Array owner_vals = info[2].As<Napi::Array>();
  size_t n = ids.ByteLength() / ObjectID::kSize;
  if (index.ElementLength() < n) {
    ThrowType(env, "addLocalRefsPacked: ownerIndex too short");
    return env.Undefined();
  }
  std::vector<std::string> owners(owner_vals.Length());
  for (uint32_t i = 0; i < owner_vals.Length(); i++) owners[i] = owner_vals.Get(i).ToString();
  core_->objects().AddLocalRefs(ids.Data(), n, index.Data(), owners);
  MaybeKick();  // new borrowed refs register with their owners
  return env.Undefined();
}

// removeLocalRefsPacked(ids): one local ref less for each id (concatenated).
Napi::Value CoreWorkerWrap::RemoveLocalRefsPacked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_ || down_ || !info[0].IsTypedArray()) return env.Undefined();
  auto ids = info[0].As<Napi::Uint8Array>();
  core_->objects().RemoveLocalRefs(ids.Data(), ids.ByteLength() / ObjectID::kSize);
  MaybeKick();  // released borrowed refs are given back to their owners
  return env.Undefined();
}

}  // namespace rayts::bindings
