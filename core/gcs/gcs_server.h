// GcsServer: the GCS of a cluster as a TCP service (the head daemon hosts
// it): a GcsService (the tables and every GcsRequest) behind a TCP listener,
// with token authentication and the health checks of the nodes.
//
// Role: accepts TCP connections from node servers, drivers and tools. Each
// connection must open with AuthHello carrying the cluster token, within
// handshake_timeout_ms; a wrong or missing token, any other first frame,
// a frame over the limit, or garbage closes the connection and the reason
// is logged (stderr). Then: GcsRequests are answered directly; a node's
// ForwardGcsRequest (its local clients' requests) is answered with
// ForwardGcsReply; NodeResourceReport updates the node table and counts as
// a heartbeat; NodeHealth (node_health.h) decides which nodes to probe
// (HealthCheck) and which are dead (marked dead in the node table). Every
// view_broadcast_period_ms the resource views of the nodes that changed
// (report version, death) go to every node in one ResourceViewUpdate; a
// node that registers gets the whole view at once. A node marked dead is
// announced to every other node at once (NodeDied); a node that registers
// again (its link reconnected) then hears NodeDied for every node marked
// dead since it first registered, which it may have missed while away (it
// skips the ones it handled already).
// A detached actor whose
// creator is gone and whose node dies is created again here (Ray's
// GcsActorManager::RestartActor, gcs_actor_restart.cc): RestartActor to a
// node, whose SchedulingPolicy places it (here, or another node it names,
// then asked with grant-or-reject); its RestartActorReply makes the actor
// ALIVE at the new address, RESTARTING again, or DEAD with the reason.
// Bounds: at most max_connections_per_peer connections from one IP, frames
// of at most max_handshake_frame_bytes before authentication and
// max_frame_bytes after.
// Ownership: owns its io thread, the GcsService and every connection.
// Thread safety: Start/Stop/port/counters from any thread; everything else
// runs on the io thread.
// Invariants: a connection is counted against its IP exactly while it is open.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/common/asio.h"

#include "core/gcs/gcs_service.h"
#include "core/gcs/node_health.h"
#include "core/protocol/connection.h"

namespace rayts::gcs {

struct GcsServerOptions {
  std::string host = "0.0.0.0";
  int port = 6379;  // 0: any free port (see port())
  std::string auth_token;  // required, non-empty
  std::string cluster_id;  // told to peers that authenticate
  HealthCheckConfig health;
  int handshake_timeout_ms = 5000;
  int max_connections_per_peer = 256;
  uint32_t max_handshake_frame_bytes = 4096;
  uint32_t max_frame_bytes = 64u << 20;
  // The nodes' resource views go back to every node this often, batched,
  // only the ones that changed (Ray: raylet_report_resources_period_milliseconds).
  int view_broadcast_period_ms = 100;
};

class GcsServer {
 public:
  static StatusOr<std::unique_ptr<GcsServer>> Start(GcsServerOptions opts);
  ~GcsServer();
  void Stop();  // idempotent: closes the listener and every connection
  int port() const { return port_; }
  // Connections closed for a refused token, a bad first frame or garbage.
  uint64_t refused() const { return refused_.load(); }

 private:
  struct Peer;
  class DirectPeer;
  class ForwardPeer;
  explicit GcsServer(GcsServerOptions opts);
  Status Init();
  void Accept();
  void OnMessage(const std::shared_ptr<Peer>& p, const proto::Envelope& env);
  void OnAuth(const std::shared_ptr<Peer>& p, const proto::Envelope& env);
  void OnClose(const std::shared_ptr<Peer>& p, const Status& why);
  // Closes a connection that broke the protocol, logging why.
  // counted: refused_ was incremented already (before the reply went out).
  void Refuse(const std::shared_ptr<Peer>& p, const std::string& why, bool counted = false);
  void OnNodeRegistered(const std::shared_ptr<Peer>& p, const proto::GcsRequest& req);
  // `id` by value: callers pass the dead peer's own node_id, which this resets.
  void MarkDead(NodeID id, const std::string& reason);
  // NodeDied to every registered node (the GCS just marked `id` dead).
  void BroadcastNodeDied(const NodeID& id);
  // The NodeDied frame of a dead node (nullopt: unknown).
  std::optional<flatbuffers::DetachedBuffer> NodeDiedFrame(const NodeID& id);
  // A node registering again: NodeDied for each node marked dead since
  // `since_ms` (its first registration), other than itself.
  void ReplayNodeDeaths(const std::shared_ptr<Peer>& p, const NodeID& self, int64_t since_ms);
  void ScheduleHealthTick();
  // ResourceViewUpdate of the nodes whose view changed since the last
  // broadcast (full: every alive node).
  flatbuffers::DetachedBuffer ViewFrame(bool full);
  void ScheduleViewBroadcast();
  void KillWorkerAt(const std::string& address);
  void Log(const std::string& msg);
  // Restarts by the GCS (gcs_actor_restart.cc). `at` nil: a node of its
  // choice (the head first) places it; else `at` grants or rejects.
  void RestartActor(const ActorID& id, const NodeID& at = NodeID::Nil(), int hops = 0);
  void OnRestartActorReply(const NodeID& from, const proto::RestartActorReply& r);
  // A frame to node `node`'s connection (dropped when it has none).
  void SendToNode(const NodeID& node, flatbuffers::DetachedBuffer frame);
  // Node `node` died: restarts it was running fail there (and go on elsewhere).
  void OnRestartNodeDead(const NodeID& node);
  // The actor was RESTARTING and its new worker is gone: again, or DEAD.
  void RestartFailed(const ActorID& id, const std::string& cause, int hops);

  GcsServerOptions opts_;
  asio::io_context io_;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  std::unique_ptr<asio::steady_timer> health_timer_;
  std::unique_ptr<asio::steady_timer> view_timer_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> refused_{0};
  int port_ = 0;
  std::unique_ptr<GcsService> gcs_;
  NodeHealth health_;
  std::unordered_map<uint64_t, std::shared_ptr<Peer>> peers_;     // connection id -> peer
  std::unordered_map<std::string, int> per_ip_;                   // open connections per peer IP
  std::unordered_map<NodeID, std::shared_ptr<Peer>, IdHash> node_peers_;  // a node's current connection
  uint64_t health_seq_ = 0;
  std::unordered_set<NodeID, IdHash> view_dirty_;  // views changed since the last broadcast
  // When each node first registered (tables' clock, ms): a re-registration
  // replays the deaths since then (the table's start time is the latest one).
  std::unordered_map<NodeID, int64_t, IdHash> first_registered_ms_;
  // Actors the GCS is creating again: the node asked, and the hops so far
  // (spillbacks and rejections; bounded by kMaxRestartHops).
  struct PendingRestart {
    NodeID node;
    int hops = 0;
  };
  static constexpr int kMaxRestartHops = 16;
  std::unordered_map<ActorID, PendingRestart, IdHash> restarts_;
};

}  // namespace rayts::gcs
