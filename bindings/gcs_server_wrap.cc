// NativeGcsServer: hosts the GCS of a cluster (core/gcs/gcs_server.h) on its
// own C++ thread in a head daemon (`rayts start --head`). queryCluster(...):
// a tool's or driver's questions to a cluster's GCS over TCP, answered as a
// Promise (the blocking exchange runs on a libuv worker thread, not the JS
// thread).
#include <memory>
#include <string>
#include <vector>

#include "bindings/napi_api.h"
#include "core/gcs/cluster_query.h"
#include "core/gcs/gcs_server.h"

namespace rayts::bindings {

namespace {

int IntOpt(const Napi::Object& o, const char* name, int dflt) {
  return o.Has(name) && o.Get(name).IsNumber() ? o.Get(name).ToNumber().Int32Value() : dflt;
}

class GcsServerWrap : public Napi::ObjectWrap<GcsServerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeGcsServer",
                       {InstanceMethod("stop", &GcsServerWrap::Stop),
                        InstanceAccessor("port", &GcsServerWrap::Port, nullptr),
                        InstanceAccessor("refused", &GcsServerWrap::Refused, nullptr)});
  }

  explicit GcsServerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GcsServerWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      ThrowType(env, "NativeGcsServer expects an options object");
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    gcs::GcsServerOptions opts;
    if (o.Has("host") && o.Get("host").IsString()) opts.host = o.Get("host").ToString();
    opts.port = IntOpt(o, "port", opts.port);
    if (o.Has("authToken") && o.Get("authToken").IsString()) opts.auth_token = o.Get("authToken").ToString();
    if (o.Has("clusterId") && o.Get("clusterId").IsString()) opts.cluster_id = o.Get("clusterId").ToString();
    opts.health.initial_delay_ms = IntOpt(o, "healthCheckInitialDelayMs", opts.health.initial_delay_ms);
    opts.health.period_ms = IntOpt(o, "healthCheckPeriodMs", opts.health.period_ms);
    opts.health.timeout_ms = IntOpt(o, "healthCheckTimeoutMs", opts.health.timeout_ms);
    opts.health.failure_threshold = IntOpt(o, "healthCheckFailureThreshold", opts.health.failure_threshold);
    opts.handshake_timeout_ms = IntOpt(o, "handshakeTimeoutMs", opts.handshake_timeout_ms);
    opts.max_connections_per_peer = IntOpt(o, "maxConnectionsPerPeer", opts.max_connections_per_peer);
    auto s = gcs::GcsServer::Start(std::move(opts));
    if (!s.ok()) {
      ThrowStatus(env, s.status());
      return;
    }
    server_ = std::move(s).value();
  }

 private:
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (server_) server_->Stop();
    server_.reset();
    return info.Env().Undefined();
  }
  Napi::Value Port(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), server_ ? server_->port() : 0);
  }
  Napi::Value Refused(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), server_ ? static_cast<double>(server_->refused()) : 0);
  }
  std::unique_ptr<gcs::GcsServer> server_;
};

// queryCluster(address, token, queries: number[], timeoutMs) -> Promise<string[]>
class QueryWorker : public Napi::AsyncWorker {
 public:
  QueryWorker(Napi::Env env, std::string address, std::string token, std::vector<int> queries, int timeout_ms)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), address_(std::move(address)),
        token_(std::move(token)), queries_(std::move(queries)), timeout_ms_(timeout_ms) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    auto r = gcs::QueryClusterOverTcp(address_, token_, queries_, timeout_ms_);
    if (r.ok()) result_ = std::move(r).value();
    else status_ = r.status();
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!status_.ok()) {
      Napi::Error e = Napi::Error::New(env, status_.message());
      e.Set("code", Napi::String::New(env, StatusCodeName(status_.code())));
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Array out = Napi::Array::New(env, result_.size());
    for (size_t i = 0; i < result_.size(); i++) out.Set(static_cast<uint32_t>(i), Napi::String::New(env, result_[i]));
    deferred_.Resolve(out);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string address_, token_;
  std::vector<int> queries_;
  int timeout_ms_;
  Status status_;
  std::vector<std::string> result_;
};

Napi::Value JsQueryCluster(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsString() || !info[2].IsArray() || !info[3].IsNumber()) {
    ThrowType(env, "queryCluster expects (address: string, token: string, queries: number[], timeoutMs: number)");
    return env.Undefined();
  }
  Napi::Array qs = info[2].As<Napi::Array>();
  std::vector<int> queries;
  for (uint32_t i = 0; i < qs.Length(); i++) queries.push_back(qs.Get(i).ToNumber().Int32Value());
  auto* w = new QueryWorker(env, info[0].ToString(), info[1].ToString(), std::move(queries),
                            info[3].ToNumber().Int32Value());
  Napi::Promise p = w->Promise();
  w->Queue();  // deletes itself when done
  return p;
}

}  // namespace

Napi::Object InitGcsServer(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeGcsServer", GcsServerWrap::Define(env));
  exports.Set("queryCluster", Napi::Function::New(env, JsQueryCluster));
  return exports;
}

}  // namespace rayts::bindings
