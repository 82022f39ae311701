#include "core/raylet/gcs_link.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "core/gcs/gcs_service.h"
#include "core/protocol/blocking_channel.h"
#include "core/protocol/peer_auth.h"

namespace rayts::raylet {

namespace {
using Fbb = flatbuffers::FlatBufferBuilder;

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<proto::ResourceEntry>>> ResourcesOf(
    Fbb& fbb, const GcsLink::Resources& r) {
  std::vector<flatbuffers::Offset<proto::ResourceEntry>> v;
  for (auto& [name, amount] : r) v.push_back(proto::CreateResourceEntry(fbb, fbb.CreateString(name), amount));
  return fbb.CreateVector(v);
}

Status ReplyStatus(int code, const flatbuffers::String* msg) {
  return code == 0 ? Status::OK() : Status(static_cast<StatusCode>(code), Str(msg));
}
}  // namespace

GcsLink::GcsLink(asio::io_context& io, Options opts, Hooks hooks)
    : io_(io), opts_(std::move(opts)), hooks_(std::move(hooks)) {}

GcsLink::~GcsLink() { Stop(); }

void GcsLink::Log(const std::string& msg) {
  char ts[32];
  std::time_t t = std::time(nullptr);
  std::strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  std::fprintf(stderr, "[%s rayts node %s] %s\n", ts, opts_.self.node_id.Hex().substr(0, 8).c_str(), msg.c_str());
}

StatusOr<int> GcsLink::Handshake(const Options& o) {
  std::string host;
  int port = 0;
  RAYTS_RETURN_IF_ERROR(ParseHostPort(o.address, &host, &port));
  BlockingChannel ch;
  RAYTS_RETURN_IF_ERROR(ch.ConnectTcp(host, port, o.connect_timeout_ms));
  std::vector<uint64_t> storage;
  const proto::Envelope* env = nullptr;
  {
    auto frame = AuthHelloFrame(o.token, proto::PeerRole::Node);
    Status s = ch.Call(frame, proto::Body::AuthReply, &storage, &env);
    if (!s.ok()) return Status::Unavailable("the GCS at " + o.address + " closed the connection during the handshake (" +
                                            s.message() + ")");
    auto* r = env->body_as_AuthReply();
    if (r->code() != 0) {
      return Status::Unauthenticated("the cluster at " + o.address + " refused this node's auth token (" +
                                     Str(r->message()) + "): set RAYTS_AUTH_TOKEN or ~/.rayts/auth_token to the head's token");
    }
  }
  {
    const gcs::NodeInfo& n = o.self;
    Fbb fbb(1024);
    auto id = fbb.CreateVector(n.node_id.data(), NodeID::kSize);
    auto addr = fbb.CreateString(n.address);
    auto ip = fbb.CreateString(n.node_ip);
    auto hostname = fbb.CreateString(n.hostname);
    auto sd = fbb.CreateString(n.session_dir);
    auto res = ResourcesOf(fbb, n.resources);
    auto nm = fbb.CreateString(n.node_manager_address);
    auto body = proto::CreateRegisterNodeRequest(fbb, id, addr, ip, hostname, n.is_head, n.pid, sd, res, nm);
    auto req = proto::CreateGcsRequest(fbb, 1, proto::GcsRequestBody::RegisterNodeRequest, body.Union());
    auto frame = FinishFrame(fbb, req);
    RAYTS_RETURN_IF_ERROR(ch.Call(frame, proto::Body::GcsReply, &storage, &env));
    auto* r = env->body_as_GcsReply();
    RAYTS_RETURN_IF_ERROR(ReplyStatus(r->code(), r->message()));
  }
  return ch.Release();
}

Status GcsLink::Connect() {
  auto fd = Handshake(opts_);
  if (!fd.ok()) return fd.status();
  report_timer_ = std::make_unique<asio::steady_timer>(io_);
  Adopt(*fd);
  ScheduleReport();
  return Status::OK();
}

void GcsLink::Adopt(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  TcpSocket sock(io_);
  asio::error_code ec;
  sock.assign(ss.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    OnClose(Status::IOError("cannot use the GCS socket: " + ec.message()));
    return;
  }
  conn_ = std::make_shared<Connection>(std::move(sock));
  auto c = conn_;
  conn_->Start([this](const proto::Envelope& e) { OnMessage(e); },
               [this, c](const Status& s) { if (conn_ == c) OnClose(s); });
  // Report at once: the GCS's view is fresh after a reconnect.
  last_report_.clear();
}

void GcsLink::Send(flatbuffers::DetachedBuffer frame) {
  if (conn_) conn_->Send(std::move(frame));
}

bool GcsLink::Paused() const {
  return !opts_.pause_file.empty() && ::access(opts_.pause_file.c_str(), F_OK) == 0;
}

void GcsLink::ScheduleReport() {
  report_timer_->expires_after(std::chrono::milliseconds(opts_.report_period_ms));
  report_timer_->async_wait([this](const asio::error_code& ec) {
    if (ec) return;
    if (conn_ && Paused()) {
      Log("the test pause file " + opts_.pause_file + " exists: dropping the GCS link");
      conn_->Close();  // OnClose starts the reconnect loop, which waits for the file to go
    }
    if (conn_ && hooks_.available) {
      Resources now = hooks_.available();
      if (now != last_report_) {
        version_++;
        last_report_ = now;
      }
      Fbb fbb(512);
      auto id = fbb.CreateVector(opts_.self.node_id.data(), NodeID::kSize);
      auto res = ResourcesOf(fbb, now);
      auto demand = [&fbb](const std::function<std::vector<std::pair<Resources, int>>()>& of) {
        std::vector<flatbuffers::Offset<proto::ResourceDemand>> v;
        if (of) {
          for (auto& [shape, count] : of()) v.push_back(proto::CreateResourceDemand(fbb, ResourcesOf(fbb, shape), count));
        }
        return fbb.CreateVector(v);
      };
      auto dv = demand(hooks_.pending_demand);
      auto iv = demand(hooks_.infeasible_demand);
      Send(FinishFrame(fbb, proto::CreateNodeResourceReport(fbb, id, version_, res, dv, iv)));
    }
    ScheduleReport();
  });
}

void GcsLink::Forward(uint64_t client, const WorkerID& worker, JobID job, const uint8_t* frame, size_t n,
                      uint64_t request_id) {
  if (!conn_) {
    hooks_.deliver(client, gcs::BuildGcsReply(request_id, Status::Unavailable("the GCS at " + opts_.address +
                                                                              " is unreachable (reconnecting)"),
                                              nullptr));
    return;
  }
  if (request_id != 0) pending_.emplace(client, request_id);
  Fbb fbb(n + 128);
  auto wid = fbb.CreateVector(worker.data(), WorkerID::kSize);
  auto bytes = fbb.CreateVector(frame, n);
  Send(FinishFrame(fbb, proto::CreateForwardGcsRequest(fbb, client, wid, job, bytes)));
}

void GcsLink::AddJob(int driver_pid, std::function<void(StatusOr<JobID>)> done) {
  if (!conn_) {
    done(Status::Unavailable("the GCS at " + opts_.address + " is unreachable (reconnecting)"));
    return;
  }
  uint64_t rid = next_own_call_++;
  own_calls_[rid] = [done](const proto::GcsReply& r) {
    Status s = ReplyStatus(r.code(), r.message());
    if (!s.ok()) return done(s);
    auto* body = r.body_as_AddJobReply();
    if (!body) return done(Status::Invalid("AddJob: malformed reply"));
    done(static_cast<JobID>(body->job_id()));
  };
  Fbb fbb(128);
  auto ns = fbb.CreateString("");
  auto body = proto::CreateAddJobRequest(fbb, driver_pid, ns);
  auto frame = FinishFrame(fbb, proto::CreateGcsRequest(fbb, rid, proto::GcsRequestBody::AddJobRequest, body.Union()));
  Forward(0, WorkerID::Nil(), 0, frame.data(), frame.size(), 0);
}

void GcsLink::ClientGone(uint64_t client, const WorkerID& worker, bool owner, JobID driver_job) {
  pending_.erase(client);
  if (!conn_) return;
  Fbb fbb(128);
  auto wid = fbb.CreateVector(worker.data(), WorkerID::kSize);
  Send(FinishFrame(fbb, proto::CreateClientDisconnected(fbb, client, wid, owner, driver_job)));
}

void GcsLink::Unregister(const std::string& reason) {
  if (!conn_) return;
  Fbb fbb(128 + reason.size());
  auto id = fbb.CreateVector(opts_.self.node_id.data(), NodeID::kSize);
  auto why = fbb.CreateString(reason);
  Send(FinishFrame(fbb, proto::CreateUnregisterNode(fbb, id, why)));
}

void GcsLink::OnMessage(const proto::Envelope& env) {
  switch (env.body_type()) {
    case proto::Body::ForwardGcsReply: {
      auto* f = env.body_as_ForwardGcsReply();
      const proto::Envelope* inner = nullptr;
      if (!f->frame() || !VerifyEnvelope(f->frame()->data(), f->frame()->size(), &inner).ok() ||
          inner->body_type() != proto::Body::GcsReply) {
        Log("dropped a malformed reply from the GCS");
        return;
      }
      uint64_t rid = inner->body_as_GcsReply()->request_id();
      if (f->client() == 0) {
        auto it = own_calls_.find(rid);
        if (it == own_calls_.end()) return;
        auto cb = std::move(it->second);
        own_calls_.erase(it);
        cb(*inner->body_as_GcsReply());
        return;
      }
      auto range = pending_.equal_range(f->client());
      for (auto it = range.first; it != range.second; ++it) {
        if (it->second == rid) { pending_.erase(it); break; }
      }
      hooks_.deliver(f->client(), CopyFrame(f->frame()->data(), f->frame()->size()));
      return;
    }
    case proto::Body::HealthCheck: {
      Fbb fbb(64);
      Send(FinishFrame(fbb, proto::CreateHealthCheckReply(fbb, env.body_as_HealthCheck()->seq())));
      return;
    }
    case proto::Body::ResourceViewUpdate:
      if (hooks_.on_view) hooks_.on_view(*env.body_as_ResourceViewUpdate());
      return;
    case proto::Body::NodeDied:
      if (hooks_.on_node_died) hooks_.on_node_died(*env.body_as_NodeDied());
      return;
    case proto::Body::RestartActor:
      if (hooks_.on_restart_actor) hooks_.on_restart_actor(*env.body_as_RestartActor());
      return;
    case proto::Body::KillWorkerAt:
      if (hooks_.kill_worker_at) hooks_.kill_worker_at(Str(env.body_as_KillWorkerAt()->address()));
      return;
    default:
      return;
  }
}

void GcsLink::OnClose(const Status& why) {
  conn_.reset();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
  }
  Log("lost the GCS at " + opts_.address + " (" + why.message() + "); this node keeps running and reconnects for up to " +
      std::to_string(opts_.reconnect_timeout_ms / 1000) + " s");
  // What was asked and not answered will not be: say so now.
  Status gone = Status::Unavailable("the connection to the GCS at " + opts_.address + " broke before it answered");
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [client, rid] : pending) hooks_.deliver(client, gcs::BuildGcsReply(rid, gone, nullptr));
  auto own = std::move(own_calls_);
  own_calls_.clear();
  for (auto& [rid, cb] : own) {
    auto frame = gcs::BuildGcsReply(rid, gone, nullptr);
    const proto::Envelope* env = nullptr;
    if (VerifyEnvelope(frame.data(), frame.size(), &env).ok()) cb(*env->body_as_GcsReply());
  }
  StartReconnect();
}

void GcsLink::StartReconnect() {
  if (reconnect_.joinable()) reconnect_.join();  // the previous loop has ended (it posted Adopt)
  reconnect_ = std::thread([this] { ReconnectLoop(); });
}

void GcsLink::ReconnectLoop() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.reconnect_timeout_ms);
  int backoff_ms = 100;
  Options o = opts_;
  o.connect_timeout_ms = std::min(o.connect_timeout_ms, 2000);
  for (int attempt = 1;; attempt++) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [this] { return stopping_; });
      if (stopping_) return;
    }
    if (Paused()) {
      attempt--;  // not an attempt: the test holds the link down
      backoff_ms = 100;
      continue;
    }
    auto fd = Handshake(o);
    if (fd.ok()) {
      int f = *fd;
      asio::post(io_, [this, f, attempt] {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (stopping_) { ::close(f); return; }
        }
        Log("reconnected to the GCS at " + opts_.address + " (attempt " + std::to_string(attempt) + ")");
        Adopt(f);
      });
      return;
    }
    Status s = fd.status();
    bool refused = s.code() == StatusCode::kUnauthenticated || s.code() == StatusCode::kInvalid;
    if (refused || std::chrono::steady_clock::now() >= deadline) {
      if (!refused) {
        s = Status::Unavailable("the GCS at " + opts_.address + " has been unreachable for " +
                                std::to_string(opts_.reconnect_timeout_ms / 1000) + " s (" + s.message() + ")");
      }
      asio::post(io_, [this, s] {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (stopping_) return;
        }
        Log("giving up on the GCS: " + s.message());
        fatal_ = true;
        if (hooks_.fatal) hooks_.fatal(s);
      });
      return;
    }
    if (attempt == 1 || attempt % 10 == 0) Log("reconnect attempt " + std::to_string(attempt) + " failed: " + s.message());
    backoff_ms = std::min(2000, backoff_ms * 2);
  }
}

void GcsLink::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (reconnect_.joinable()) reconnect_.join();
  if (report_timer_) report_timer_->cancel();
  if (conn_) {
    conn_->Close();
    conn_.reset();
  }
}

}  // namespace rayts::raylet
