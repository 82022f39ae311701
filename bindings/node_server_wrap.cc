// NativeNodeServer: hosts a NodeServer (raylet + plasma + GCS) on its own
// C++ thread inside this Node process (embedded mode) or in `rayts start`
// (cluster mode: gcsAddress set, the GCS is reached over TCP).
#include <memory>

#include "bindings/napi_api.h"
#include "core/raylet/node_server.h"

namespace rayts::bindings {

namespace {

class NodeServerWrap : public Napi::ObjectWrap<NodeServerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeNodeServer",
                       {InstanceMethod("stop", &NodeServerWrap::Stop),
                        InstanceMethod("stats", &NodeServerWrap::Stats),
                        InstanceMethod("storeObjects", &NodeServerWrap::StoreObjects),
                        InstanceMethod("fatal", &NodeServerWrap::Fatal),
                        InstanceAccessor("nodeId", &NodeServerWrap::NodeId, nullptr)});
  }

  explicit NodeServerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NodeServerWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      ThrowType(env, "NativeNodeServer expects an options object");
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    raylet::NodeServerOptions opts;
    opts.socket_path = o.Get("socketPath").ToString();
    opts.session_dir = o.Get("sessionDir").ToString();
    opts.store_bytes = static_cast<uint64_t>(o.Get("storeBytes").ToNumber().DoubleValue());
    opts.prestart_workers = o.Get("prestart").ToNumber().Int32Value();
    opts.max_workers = o.Get("maxWorkers").ToNumber().Int32Value();
    if (o.Has("memoryUsageThreshold") && o.Get("memoryUsageThreshold").IsNumber())
      opts.memory_usage_threshold = o.Get("memoryUsageThreshold").ToNumber().DoubleValue();
    if (o.Has("memoryMonitorPeriodMs") && o.Get("memoryMonitorPeriodMs").IsNumber())
      opts.memory_monitor_period_ms = o.Get("memoryMonitorPeriodMs").ToNumber().Int32Value();
    if (o.Has("workingDir") && o.Get("workingDir").IsString()) opts.working_dir = o.Get("workingDir").ToString();
    if (o.Has("spillDir") && o.Get("spillDir").IsString()) opts.spill_dir = o.Get("spillDir").ToString();
    if (o.Has("logToDriver") && o.Get("logToDriver").IsBoolean())
      opts.log_to_driver = o.Get("logToDriver").ToBoolean().Value();
    if (o.Has("workerLogMaxBytes") && o.Get("workerLogMaxBytes").IsNumber())
      opts.worker_log_max_bytes = static_cast<uint64_t>(o.Get("workerLogMaxBytes").ToNumber().DoubleValue());
    if (o.Has("spillMaxBytes") && o.Get("spillMaxBytes").IsNumber())
      opts.spill_max_bytes = static_cast<int64_t>(o.Get("spillMaxBytes").ToNumber().DoubleValue());
    // Cluster mode (a daemon node): its GCS over TCP.
    if (o.Has("gcsAddress") && o.Get("gcsAddress").IsString()) opts.gcs_address = o.Get("gcsAddress").ToString();
    if (o.Has("authToken") && o.Get("authToken").IsString()) opts.auth_token = o.Get("authToken").ToString();
    if (o.Has("nodeIp") && o.Get("nodeIp").IsString()) opts.node_ip = o.Get("nodeIp").ToString();
    if (o.Has("isHead") && o.Get("isHead").IsBoolean()) opts.is_head = o.Get("isHead").ToBoolean().Value();
    if (o.Has("gcsReportPeriodMs") && o.Get("gcsReportPeriodMs").IsNumber())
      opts.gcs_report_period_ms = o.Get("gcsReportPeriodMs").ToNumber().Int32Value();
    if (o.Has("gcsReconnectTimeoutMs") && o.Get("gcsReconnectTimeoutMs").IsNumber())
      opts.gcs_reconnect_timeout_ms = o.Get("gcsReconnectTimeoutMs").ToNumber().Int32Value();
    if (o.Has("idleWorkerTimeoutMs") && o.Get("idleWorkerTimeoutMs").IsNumber())
      opts.idle_worker_timeout_ms = o.Get("idleWorkerTimeoutMs").ToNumber().Int32Value();
    Napi::Object res = o.Get("resources").As<Napi::Object>();
    Napi::Array names = res.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); i++) {
      std::string n = names.Get(i).ToString();
      opts.resources.emplace_back(n, res.Get(n).ToNumber().DoubleValue());
    }
    Napi::Array argv = o.Get("workerArgv").As<Napi::Array>();
    for (uint32_t i = 0; i < argv.Length(); i++) opts.worker_argv.push_back(argv.Get(i).ToString());
    Napi::Array envv = o.Get("workerEnv").As<Napi::Array>();
    for (uint32_t i = 0; i < envv.Length(); i++) opts.worker_env.push_back(envv.Get(i).ToString());
    auto s = raylet::NodeServer::Start(std::move(opts));
    if (!s.ok()) {
      ThrowStatus(env, s.status());
      return;
    }
    server_ = std::move(s).value();
  }

 private:
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    // Stop, then destroy at once: the store's shared memory, the io thread's
    // fds and the listening socket go now, not when this wrapper is
    // garbage-collected (a host that calls init/shutdown in a loop).
    if (server_) server_->Stop();
    server_.reset();
    return info.Env().Undefined();
  }
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), server_ ? server_->StatsJson() : "{}");
  }
  // storeObjects() -> JSON text: every object with its location, plus totals.
  Napi::Value StoreObjects(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), server_ ? server_->StoreObjectsJson() : "{}");
  }
  // fatal() -> '' while the node runs; else why it cannot go on (cluster mode).
  Napi::Value Fatal(const Napi::CallbackInfo& info) {
    Status f = server_ ? server_->fatal() : Status::OK();
    return Napi::String::New(info.Env(), f.ok() ? "" : f.message());
  }
  Napi::Value NodeId(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), server_ ? server_->node_id().Hex() : "");
  }
  std::unique_ptr<raylet::NodeServer> server_;
};

}  // namespace

Napi::Object InitNodeServer(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeNodeServer", NodeServerWrap::Define(env));
  return exports;
}

}  // namespace rayts::bindings
