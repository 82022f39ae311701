// queryMemorySummary(socketPath): the memory summary of another rayts
// process, read over its CoreWorker listen socket (the `rayts memory`
// command); queryStoreObjects(nodeSocket): the node's store listing (which
// objects are spilled); queryNodeMemory(nodeAddress, token, timeoutMs): every
// process of a cluster node, over TCP (`rayts memory --address`). Blocking
// round trips on the calling (JS) thread (at most 30 s, or timeoutMs per
// connection); meant for the CLI, not for a program's event loop.
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
Napi::Value JsQueryNodeMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber()) {
    ThrowType(env, "queryNodeMemory expects (nodeAddress: string, token: string, timeoutMs: number)");
    return env.Undefined();
  }
  int timeout_ms = info[2].As<Napi::Number>().Int32Value();
  if (timeout_ms <= 0) {
    Napi::RangeError::New(env, "queryNodeMemory: timeoutMs must be positive").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto json = QueryNodeMemoryOverTcp(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(),
                                     timeout_ms);
  if (!json.ok()) {
    ThrowStatus(env, json.status());
    return env.Undefined();
  }
  return Napi::String::New(env, *json);
}
}  // namespace

Napi::Object InitMemoryQuery(Napi::Env env, Napi::Object exports) {
  exports.Set("queryMemorySummary", Napi::Function::New(env, JsQueryMemorySummary));
  exports.Set("queryStoreObjects", Napi::Function::New(env, JsQueryStoreObjects));
  exports.Set("queryNodeMemory", Napi::Function::New(env, JsQueryNodeMemory));
  return exports;
}

}  // namespace rayts::bindings
