// queryMemorySummary(socketPath): the memory summary of another rayts
// process, read over its CoreWorker listen socket (the `rayts memory`
// command); queryStoreObjects(nodeSocket): the node's store listing (which
// objects are spilled). A blocking round trip on the calling (JS) thread, at most 30 s;
// meant for the CLI, not for a program's event loop.
#include "bindings/napi_api.h"
#include "core/core_worker/memory_query.h"

namespace rayts::bindings {

namespace {
// A blocking query of another process over its socket: (socket path) -> JSON.
template <StatusOr<std::string> (*Query)(const std::string&)>
Napi::Value JsQuery(const Napi::CallbackInfo& info, const char* usage) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    ThrowType(env, usage);
    return env.Undefined();
  }
  auto json = Query(info[0].As<Napi::String>().Utf8Value());
  if (!json.ok()) {
    ThrowStatus(env, json.status());
    return env.Undefined();
  }
  return Napi::String::New(env, *json);
}

Napi::Value JsQueryMemorySummary(const Napi::CallbackInfo& info) {
  return JsQuery<&QueryMemorySummary>(info, "queryMemorySummary expects a socket path (string)");
}

Napi::Value JsQueryStoreObjects(const Napi::CallbackInfo& info) {
  return JsQuery<&QueryStoreObjects>(info, "queryStoreObjects expects the node server's socket path (string)");
}
}  // namespace

Napi::Object InitMemoryQuery(Napi::Env env, Napi::Object exports) {
  exports.Set("queryMemorySummary", Napi::Function::New(env, JsQueryMemorySummary));
  exports.Set("queryStoreObjects", Napi::Function::New(env, JsQueryStoreObjects));
  return exports;
}

}  // namespace rayts::bindings
