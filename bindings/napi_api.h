// The one header through which bindings/ sees N-API (node-addon-api, C++
// exceptions disabled), plus helpers shared by the wrappers.
// Thread safety: everything here runs on the JS thread only.
#pragma once

#include <napi.h>

#include <string>

#include "core/common/id.h"
#include "core/common/status.h"

namespace rayts::bindings {

// Typed errors: ts/errors.ts hands its classes to the addon at load
// (setErrorClasses); a Status is thrown as the matching class.
void SetErrorClasses(const Napi::Object& classes);
void ThrowStatus(Napi::Env env, const Status& s);
void ThrowType(Napi::Env env, const std::string& msg);

template <typename Id>
bool IdFromValue(const Napi::Value& v, Id* out) {
  if (!v.IsBuffer()) return false;
  auto b = v.As<Napi::Buffer<uint8_t>>();
  if (b.Length() != Id::kSize) return false;
  *out = Id::FromBytes(b.Data());
  return true;
}

template <size_t N>
Napi::Buffer<uint8_t> IdToBuffer(Napi::Env env, const BaseId<N>& id) {
  return Napi::Buffer<uint8_t>::Copy(env, id.data(), N);
}

// The id as the latin1 string JS keys its maps by (ts/runtime/waiting.ts
// keyOf: one char per byte).
template <size_t N>
Napi::Value IdToKey(Napi::Env env, const BaseId<N>& id) {
  napi_value s;
  napi_status st = napi_create_string_latin1(env, reinterpret_cast<const char*>(id.data()), N, &s);
  NAPI_THROW_IF_FAILED(env, st, Napi::Value());
  return Napi::Value(env, s);
}

Napi::Object InitNodeServer(Napi::Env env, Napi::Object exports);
Napi::Object InitCoreWorker(Napi::Env env, Napi::Object exports);
Napi::Object InitMemoryQuery(Napi::Env env, Napi::Object exports);
Napi::Object InitGcsServer(Napi::Env env, Napi::Object exports);

}  // namespace rayts::bindings
