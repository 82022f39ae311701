// NodeLinks: an owner's connections to the node servers of other nodes,
// where spillback sends its lease requests.
//
// Role: a lease request goes to this process's own node ("" : the control
// connection) or, after a spillback reply, to the node server the reply
// named (its TCP address): NodeLinks connects there once (TCP, with the
// cluster token) and keeps the connection for the requests, cancels and
// lease returns of that node. Lease replies arriving on it go to the reply
// handler like the ones of the own node. When such a connection breaks, the
// requests still waiting there are answered "rejected" (the submitters ask
// their own node again) and the lost handler is told, so leases granted
// there are given up. A node that keeps failing (its daemon was killed
// but the GCS has not marked it dead yet, so spillback keeps naming it)
// is not asked again in a hot loop: after the first failure in a row,
// each rejection waits a backoff (kFirstBackoff doubling to kMaxBackoff;
// a reply from the node resets it).
// Ownership: owned by the CoreWorker; the links by this.
// Thread safety: every method requires the core lock (worker_context.h);
// handlers run with it held.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/core_worker/transport.h"
#include "core/core_worker/worker_context.h"

namespace rayts {

class NodeLinks {
 public:
  using ReplyHandler = std::function<void(const proto::LeaseReply&)>;
  using LostHandler = std::function<void(const std::string& address)>;
  static constexpr auto kFirstBackoff = std::chrono::milliseconds(20);
  static constexpr auto kMaxBackoff = std::chrono::milliseconds(1000);
  NodeLinks(WorkerContext& ctx, Transport& transport) : ctx_(ctx), transport_(transport) {}
  void SetHandlers(ReplyHandler on_reply, LostHandler on_lost) {
    on_reply_ = std::move(on_reply);
    on_lost_ = std::move(on_lost);
  }

  // A lease request `request_id` to the node at `address` ("" : this
  // process's node). Unreachable: answered "rejected" after this call.
  void SendRequestLocked(const std::string& address, uint64_t request_id, Frame frame) REQUIRES(core_lock);
  // Any other frame (a cancel) to that node.
  void SendLocked(const std::string& address, Frame frame) REQUIRES(core_lock);
  // The connection to the node at `address`; nullptr for "" or when it
  // cannot be reached.
  std::shared_ptr<Link> LinkLocked(const std::string& address) REQUIRES(core_lock);
  // The node at `address` was marked dead: its connection is dropped as if
  // it broke (requests waiting there rejected, the lost handler told), even
  // when the connection itself still looks open (a machine gone silent);
  // rejections waiting their backoff for it go now.
  void OnNodeDeadLocked(const std::string& address) REQUIRES(core_lock);

 private:
  void OnClosedLocked(const std::string& address, const std::shared_ptr<Link>& link) REQUIRES(core_lock);
  void RejectLocked(uint64_t request_id) REQUIRES(core_lock);
  // The node at `address` failed (unreachable, or its connection broke):
  // `ids` are rejected at once (now: in this call, else right after it), or
  // after the backoff when it failed before.
  void FailedLocked(const std::string& address, std::vector<uint64_t> ids, bool now) REQUIRES(core_lock);

  WorkerContext& ctx_;
  Transport& transport_;
  ReplyHandler on_reply_;
  LostHandler on_lost_;
  std::unordered_map<std::string, std::shared_ptr<Link>> links_ GUARDED_BY(core_lock);
  std::unordered_map<std::string, std::unordered_set<uint64_t>> waiting_ GUARDED_BY(core_lock);  // requests per node
  std::unordered_map<std::string, Clock::duration> backoff_ GUARDED_BY(core_lock);  // failing nodes: the next wait
  struct Delayed {
    std::string address;
    std::unique_ptr<Timer> timer;
  };
  std::unordered_map<uint64_t, Delayed> delayed_ GUARDED_BY(core_lock);  // rejections waiting their backoff
};

}  // namespace rayts
