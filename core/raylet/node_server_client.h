// NodeServer's record of one client connection (internal to
// node_server*.cc).
// Thread safety: the NodeServer's io thread only.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "core/raylet/node_server.h"

namespace rayts::raylet {

// A line in the node's log (stderr: the daemon's log file), with the time
// and the node's short id (node_server_cluster.cc).
void NodeLog(const NodeID& node, const std::string& msg);
// A TCP socket whose non-blocking connect to `address` (ip:port) has
// started (node_server_objects.cc).
StatusOr<TcpSocket> StartPeerConnect(asio::io_context& io, const std::string& address);

// A client connection as the GcsService sees it.
class NodeServer::ClientGcsPeer : public gcs::GcsPeer {
 public:
  explicit ClientGcsPeer(std::shared_ptr<Connection> conn) : conn_(std::move(conn)) {}
  void SendGcsReply(flatbuffers::DetachedBuffer frame) override { conn_->Send(std::move(frame)); }

 private:
  std::shared_ptr<Connection> conn_;
};

struct NodeServer::Client {
  std::shared_ptr<Connection> conn;
  std::shared_ptr<ClientGcsPeer> gcs_peer;  // held only here: a dead client's deferred GCS answers are dropped
  WorkerID worker_id;
  bool registered = false;
  bool is_driver = false;
  bool control = false;
  int pid = 0;
  std::string listen_path;  // its CoreWorker's listen address (plasma channel's registration)
  JobID job = 0;  // a driver's job (cluster mode: from the GCS)
  // A process of another node over TCP (owners leasing here): only lease
  // messages, after its AuthHello.
  bool remote = false;
  bool authed = false;
  std::string ip;
  std::unique_ptr<asio::steady_timer> handshake_timer;
  std::unordered_map<uint64_t, uint64_t> requests;  // request id -> key
  std::string owner_address;  // remote: the owner's listen address (its lease requests name it)
};

}  // namespace rayts::raylet
