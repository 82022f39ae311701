// GcsLink: a node server's connection to the GCS of its cluster (daemon
// nodes; an embedded node hosts its GcsService in-process instead).
//
// Role: connects over TCP, authenticates (AuthHello with the cluster token)
// and registers the node (RegisterNodeRequest); then reports the node's
// free resources every report period (NodeResourceReport, versioned: the
// version grows when they change; every report is also the node's
// heartbeat), hands the cluster's resource views the GCS broadcasts to the
// node (Hooks::on_view), answers the GCS's HealthCheck, forwards its local clients'
// GcsRequests (ForwardGcsRequest; replies come back as ForwardGcsReply and
// go to that client unchanged) and carries the GCS's KillWorkerAt and
// NodeDied (Hooks::on_node_died) and RestartActor (Hooks::on_restart_actor) to the node. When the connection breaks the node keeps running: requests are
// answered Unavailable meanwhile, and a reconnect thread retries (backoff
// 100 ms doubling to 2 s, logged) for up to reconnect_timeout_ms; a refused
// token, a GCS that declared this node dead, or the timeout is fatal
// (Hooks::fatal: the node stops, as Ray's raylet does). Options::pause_file
// lets a test cut the link for a while (checked every report period).
// Ownership: owned by the NodeServer; borrows its io_context; owns the
// connection and the reconnect thread.
// Thread safety: Connect before the io thread runs; Stop from any thread
// once the io thread has stopped; everything else on the io thread.
// Invariants: every forwarded request with a request id is answered exactly
// once: by the GCS, or Unavailable when the connection breaks first.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/common/asio.h"

#include "core/common/thread_annotations.h"
#include "core/gcs/gcs_tables.h"
#include "core/protocol/connection.h"

namespace rayts::raylet {

class GcsLink {
 public:
  using Resources = std::vector<std::pair<std::string, double>>;
  struct Options {
    std::string address;  // host:port of the GCS
    std::string token;
    int report_period_ms = 100;         // Ray: raylet_report_resources_period_milliseconds
    int reconnect_timeout_ms = 60000;   // Ray: gcs_rpc_server_reconnect_timeout_s
    int connect_timeout_ms = 5000;
    gcs::NodeInfo self;                 // what the node registers as
    // Tests (RAYTS_TEST_GCS_PAUSE_FILE): while this file exists the link is
    // dropped and does not reconnect, as if the GCS were unreachable.
    std::string pause_file;
  };
  struct Hooks {
    std::function<void(uint64_t client, flatbuffers::DetachedBuffer frame)> deliver;  // a reply for a local client
    std::function<Resources()> available;
    std::function<std::vector<std::pair<Resources, int>>()> pending_demand;     // queued lease requests by shape
    std::function<std::vector<std::pair<Resources, int>>()> infeasible_demand;  // shapes refused lately as infeasible
    std::function<void(const proto::ResourceViewUpdate&)> on_view;            // the cluster's views, from the GCS
    std::function<void(const std::string& address)> kill_worker_at;
    std::function<void(const proto::NodeDied&)> on_node_died;  // the GCS marked a node dead
    std::function<void(const proto::RestartActor&)> on_restart_actor;  // the GCS creates an actor again here
    std::function<void(const Status& why)> fatal;
  };

  GcsLink(asio::io_context& io, Options opts, Hooks hooks);
  ~GcsLink();
  GcsLink(const GcsLink&) = delete;
  GcsLink& operator=(const GcsLink&) = delete;

  // The first connection, blocking (the node does not start without it).
  Status Connect();
  // A local client's GcsRequest frame (request_id: its id inside).
  void Forward(uint64_t client, const WorkerID& worker, JobID job, const uint8_t* frame, size_t n,
               uint64_t request_id);
  // The node's own request: a job id for a driver that attached.
  void AddJob(int driver_pid, std::function<void(StatusOr<JobID>)> done);
  void ClientGone(uint64_t client, const WorkerID& worker, bool owner, JobID driver_job);
  // Stopping on purpose: the GCS marks the node dead now. Best effort.
  void Unregister(const std::string& reason);
  void Stop();
  bool connected() const { return conn_ != nullptr; }
  // A frame of the node's own to the GCS (RestartActorReply); dropped while disconnected.
  void SendToGcs(flatbuffers::DetachedBuffer frame) { Send(std::move(frame)); }

 private:
  // Blocking: connect, authenticate, register. Returns the socket fd.
  static StatusOr<int> Handshake(const Options& o);
  void Adopt(int fd);
  void OnMessage(const proto::Envelope& env);
  void OnClose(const Status& why);
  void StartReconnect();
  void ReconnectLoop();
  void ScheduleReport();
  void Send(flatbuffers::DetachedBuffer frame);
  void Log(const std::string& msg);
  bool Paused() const;  // the test's pause file exists

  asio::io_context& io_;
  Options opts_;
  Hooks hooks_;
  std::shared_ptr<Connection> conn_;
  std::unique_ptr<asio::steady_timer> report_timer_;
  std::thread reconnect_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::multimap<uint64_t, uint64_t> pending_;  // client -> request id awaiting a reply
  std::unordered_map<uint64_t, std::function<void(const proto::GcsReply&)>> own_calls_;
  uint64_t next_own_call_ = 1;
  uint64_t version_ = 0;
  Resources last_report_;
  bool fatal_ = false;
};

}  // namespace rayts::raylet
