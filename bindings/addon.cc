// Module entry of the rayts native addon: error classes, the node server host
// (embedded raylet + GCS + plasma), the CoreWorker wrapper and the memory
// summary query of other processes (memory_query.cc).
#include "bindings/core_worker_convert.h"
#include "bindings/napi_api.h"
#include "core/common/error_record.h"
#include "core/gcs/gcs_client.h"

namespace rayts::bindings {

namespace {
Napi::ObjectReference* error_classes = nullptr;

Napi::Value JsSetErrorClasses(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) {
    ThrowType(info.Env(), "setErrorClasses expects an object of error classes");
    return info.Env().Undefined();
  }
  SetErrorClasses(info[0].As<Napi::Object>());
  return info.Env().Undefined();
}
}  // namespace

void SetErrorClasses(const Napi::Object& classes) {
  if (!error_classes) error_classes = new Napi::ObjectReference();
  *error_classes = Napi::Persistent(classes);
}

void ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
}

void ThrowStatus(Napi::Env env, const Status& s) {
  const char* cls = nullptr;
  switch (s.code()) {
    case StatusCode::kOutOfMemory: cls = "ObjectStoreFullError"; break;
    case StatusCode::kObjectLost: cls = "ObjectLostError"; break;
    default: cls = "RaySystemError"; break;
  }
  if (error_classes && !error_classes->IsEmpty()) {
    Napi::Value ctor = error_classes->Value().Get(cls);
    if (ctor.IsFunction()) {
      Napi::Object err = ctor.As<Napi::Function>().New({Napi::String::New(env, s.message())});
      err.Set("code", Napi::String::New(env, StatusCodeName(s.code())));
      Napi::Error(env, err).ThrowAsJavaScriptException();
      return;
    }
  }
  Napi::Error e = Napi::Error::New(env, s.ToString());
  e.Set("code", Napi::String::New(env, StatusCodeName(s.code())));
  e.ThrowAsJavaScriptException();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClasses", Napi::Function::New(env, JsSetErrorClasses));
  // Enums defined in core/, exported so TypeScript does not repeat them.
  Napi::Object queries = Napi::Object::New(env);
  for (int i = 0; i < gcs::kNumClusterQueries; i++) {
    queries.Set(gcs::ClusterQueryName(static_cast<gcs::ClusterQuery>(i)), Napi::Number::New(env, i));
  }
  exports.Set("ClusterQuery", queries);
  exports.Set("EventType", EventTypes(env));
  Napi::Object codes = Napi::Object::New(env);
  for (int i = 0; i <= static_cast<int>(kLastStatusCode); i++) {
    codes.Set(StatusCodeName(static_cast<StatusCode>(i)), Napi::Number::New(env, i));
  }
  exports.Set("StatusCode", codes);
  Napi::Object kinds = Napi::Object::New(env);
  for (int i = 0; i < kNumErrorKinds; i++) {
    kinds.Set(ErrorKindName(static_cast<ErrorKind>(i)), Napi::Number::New(env, i));
  }
  exports.Set("ErrorKind", kinds);
  InitNodeServer(env, exports);
  InitCoreWorker(env, exports);
  InitMemoryQuery(env, exports);
  InitGcsServer(env, exports);
  return exports;
}

}  // namespace rayts::bindings

static Napi::Object RaytsInit(Napi::Env env, Napi::Object exports) {
  return rayts::bindings::Init(env, exports);
}

NODE_API_MODULE(rayts_native, RaytsInit)
