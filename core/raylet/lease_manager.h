// LeaseManager: grants worker leases on this node against its resources.
//
// Role: the raylet half of lease-based scheduling. An owner asks for a lease
// of a resource shape; the manager queues the request, and once the shape
// fits in the available resources it reserves them, takes a worker from the
// WorkerPool and grants (lease_id, worker, resources). The owner pushes tasks
// straight to that worker and returns the lease when idle. A request that
// can never fit this node's total is answered Infeasible at once, never
// left to hang.
// Ownership: does not own the pool (it must outlive the manager). Request
// callbacks are owned until called; each is called exactly once (granted,
// failed, infeasible or cancelled), synchronously inside a manager method,
// and may re-enter the manager. Destroying the manager drops callbacks not
// yet called.
// Thread safety: none. Single-threaded; the node server calls every method
// on its io thread.
// Invariants:
//   * A lease is returned exactly once: by ReturnLease or by the death of its
//     worker; a second return is InvalidArgument.
//   * total == available + resources reserved for requests waiting for a
//     worker + resources of each granted lease (minus the CPU a blocked
//     lease has released).
//   * available is >= 0 in every resource, except CPU just after a blocked
//     worker unblocks: it takes its CPU back even if that overdraws
//     available (the worker is running again either way), and no new lease
//     needing CPU is granted until returns pay the overdraft off.
// Dispatch policy: FIFO with bounded backfill. Requests are considered in
// arrival order; when one does not fit, later ones that do fit are granted
// around it, but each waiting request can be passed at most max_bypass
// times. A request passed that often becomes a barrier: nothing behind it is
// granted until it is. Since every queued request fits the node total, it is
// granted at the latest once enough leases come back, so no request starves.
// Fair share: each request may name its share (the owner's scheduling key on
// one connection). Of the requests that fit now, one whose share holds fewer
// of this node's leases (granted or starting) goes before an earlier one
// whose share holds more, within the same bypass bound: a lease an owner
// gives back after its hold (kLeaseMaxHold) goes to another function that
// waits, not to the same owner's next request queued ahead of it.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <unordered_map>

#include "core/common/id.h"
#include "core/common/status.h"
#include "core/raylet/resource_set.h"
#include "core/raylet/worker_pool.h"

namespace rayts::raylet {

struct Lease {
  uint64_t lease_id = 0;
  WorkerID worker_id;
  ResourceSet resources;
};

class LeaseManager {
 public:
  using LeaseCallback = std::function<void(StatusOr<Lease>)>;
  static constexpr int kDefaultMaxBypass = 16;
  static constexpr const char* kCPU = "CPU";

  // `pool` is not owned. max_bypass >= 0 (0: strict FIFO).
  LeaseManager(ResourceSet total, WorkerPool* pool, int max_bypass = kDefaultMaxBypass);
  LeaseManager(const LeaseManager&) = delete;
  LeaseManager& operator=(const LeaseManager&) = delete;

  // Asks for a lease of `resources`; cb gets the Lease, or Infeasible at once
  // when the shape exceeds this node's total, or InvalidArgument when
  // request_key is already waiting, or the pool's error if no worker can be
  // started. request_key names the request for CancelRequest.
  // `share`: see Fair share above (0: none named; such requests are FIFO).
  void RequestLease(uint64_t request_key, const ResourceSet& resources, LeaseCallback cb, uint64_t share = 0);

  // Cancels a request not granted yet (waiting for resources or for a
  // worker): its callback gets Cancelled and true is returned. False when
  // the key is unknown or already granted.
  bool CancelRequest(uint64_t request_key);

  // Gives the lease's resources back and the worker back to the pool (unless
  // worker_exiting: the worker is going away and the pool hears of it through
  // OnWorkerDied), then dispatches. InvalidArgument for an unknown or already
  // returned lease.
  Status ReturnLease(uint64_t lease_id, bool worker_exiting);

  // A leased worker blocked in a get (true) or resumed (false). Blocking
  // releases the lease's CPU to available and dispatches; resuming takes it
  // back, possibly overdrawing available CPU (see Invariants). Repeated
  // calls with the same value and unknown workers are ignored.
  void SetBlocked(const WorkerID& worker, bool blocked);

  // The worker died: its lease (if any) is returned and the pool forgets the
  // worker. Returns the id of the lease that died with it, so the caller can
  // tell the owner.
  std::optional<uint64_t> OnWorkerDied(const WorkerID& worker);

  const ResourceSet& available() const { return available_; }
  const ResourceSet& total() const { return total_; }
  // Requests not granted yet: waiting for resources or for a worker.
  size_t num_queued() const { return queue_.size() + pending_.size(); }
  // Of those, the ones holding resources and waiting for a worker to start.
  size_t num_waiting_for_worker() const { return pending_.size(); }
  size_t num_leased() const { return leases_.size(); }
  // The queued requests (not granted, not yet holding resources) by shape,
  // with how many of each: the node's pending demand.
  std::vector<std::pair<ResourceSet, int>> QueuedDemand() const;
  // The queued requests (not yet holding resources), by key, in arrival order.
  std::vector<std::pair<uint64_t, ResourceSet>> QueuedRequests() const;

 private:
  struct Request {
    uint64_t key;
    ResourceSet resources;
    LeaseCallback cb;
    uint64_t share = 0;
    int bypassed = 0;  // times a later request was granted ahead of this one
  };
  // A dispatched request: resources reserved, waiting for PopWorker.
  struct Pending {
    uint64_t key;
    ResourceSet resources;
    LeaseCallback cb;
    uint64_t share = 0;
  };
  struct Granted {
    WorkerID worker;
    ResourceSet resources;
    uint64_t share = 0;
    bool blocked = false;
    int64_t released_cpu = 0;  // CPU units given back while blocked
  };

  // Grants what fits, per the dispatch policy; safe to call re-entrantly.
  void Dispatch();
  // Picks and starts one request; false when nothing can go.
  bool DispatchOne();
  // Leases (granted or starting) held per named share.
  std::unordered_map<uint64_t, int> LeasesPerShare() const;
  void OnWorkerPopped(uint64_t lease_id, StatusOr<WorkerID> worker);
  // Removes a granted lease and frees its resources; returns its worker.
  WorkerID ReleaseLease(std::unordered_map<uint64_t, Granted>::iterator it);

  const ResourceSet total_;
  ResourceSet available_;
  WorkerPool* pool_;
  const int max_bypass_;
  uint64_t next_lease_id_ = 1;

  std::list<Request> queue_;  // arrival order
  std::unordered_map<uint64_t, std::list<Request>::iterator> queued_by_key_;
  std::unordered_map<uint64_t /*lease id*/, Pending> pending_;
  std::unordered_map<uint64_t /*request key*/, uint64_t /*lease id*/> pending_by_key_;
  std::unordered_map<uint64_t, Granted> leases_;
  std::unordered_map<WorkerID, uint64_t, IdHash> lease_by_worker_;

  bool dispatching_ = false;
  bool dispatch_again_ = false;
  // Pop callbacks held by the pool check this, so a pool that outlives the
  // manager cannot call into a destroyed manager.
  std::shared_ptr<char> alive_ = std::make_shared<char>(0);
};

}  // namespace rayts::raylet
