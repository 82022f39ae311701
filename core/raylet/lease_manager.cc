#include "core/raylet/lease_manager.h"

#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace rayts::raylet {

std::vector<std::pair<ResourceSet, int>> LeaseManager::QueuedDemand() const {
  std::vector<std::pair<ResourceSet, int>> out;
  for (const Request& r : queue_) {
    bool found = false;
    for (auto& [shape, n] : out) {
      if (shape == r.resources) { n++; found = true; break; }
    }
    if (!found) out.emplace_back(r.resources, 1);
  }
  return out;
}

std::vector<std::pair<uint64_t, ResourceSet>> LeaseManager::QueuedRequests() const {
  std::vector<std::pair<uint64_t, ResourceSet>> out;
  out.reserve(queue_.size());
  for (const Request& r : queue_) out.emplace_back(r.key, r.resources);
  return out;
}

namespace {

// "task requires {CPU: 4} but this node has {CPU: 2} in total (CPU: asked
// 4, node total 2)": names each resource that does not fit.
std::string InfeasibleMessage(const ResourceSet& asked, const ResourceSet& total) {
  std::string detail;
  for (const auto& [name, amount] : asked.ToVector()) {
    int64_t want = asked.GetUnits(name);
    int64_t have = total.GetUnits(name);
    if (want <= have) continue;
    if (!detail.empty()) detail += "; ";
    detail += name + ": asked " + ResourceSet::FormatUnits(want) + ", node total " +
              ResourceSet::FormatUnits(have);
  }
  return "task requires " + asked.ToString() + " but this node has " + total.ToString() +
         " in total (" + detail + ")";
}

}  // namespace

LeaseManager::LeaseManager(ResourceSet total, WorkerPool* pool, int max_bypass)
    : total_(std::move(total)), available_(total_), pool_(pool), max_bypass_(max_bypass) {
  RAYTS_CHECK(pool_ != nullptr);
  RAYTS_CHECK(max_bypass_ >= 0);
}

void LeaseManager::RequestLease(uint64_t request_key, const ResourceSet& resources,
                                LeaseCallback cb, uint64_t share) {
  if (queued_by_key_.count(request_key) != 0 || pending_by_key_.count(request_key) != 0) {
    cb(Status::InvalidArgument("lease request key " + std::to_string(request_key) +
                               " is already waiting"));
    return;
  }
  if (!resources.IsSubsetOf(total_)) {
    cb(Status::Infeasible(InfeasibleMessage(resources, total_)));
    return;
  }
  queue_.push_back(Request{request_key, resources, std::move(cb), share});
  queued_by_key_[request_key] = std::prev(queue_.end());
  Dispatch();
}

void LeaseManager::Dispatch() {
  // A grant runs the owner's callback, which may return a lease or request
  // another: such nested calls only flag that another pass is needed.
  if (dispatching_) {
    dispatch_again_ = true;
    return;
  }
  dispatching_ = true;
  do {
    dispatch_again_ = false;
    while (DispatchOne()) {
    }
  } while (dispatch_again_);
  dispatching_ = false;
}

std::unordered_map<uint64_t, int> LeaseManager::LeasesPerShare() const {
  std::unordered_map<uint64_t, int> n;
  for (auto& [id, g] : leases_) if (g.share != 0) n[g.share]++;
  for (auto& [id, p] : pending_) if (p.share != 0) n[p.share]++;
  return n;
}

bool LeaseManager::DispatchOne() {
  std::vector<Request*> passed;  // waiting requests ahead of the candidate
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (!it->resources.IsSubsetOf(available_)) {
      if (it->bypassed >= max_bypass_) return false;  // a barrier: see header
      passed.push_back(&*it);
      continue;
    }
    // Fair share (see header): a later request that fits, of a share
    // holding fewer leases, goes first; the ones it passes count it.
    if (it->share != 0 && it->bypassed < max_bypass_ && std::next(it) != queue_.end()) {
      const auto held = LeasesPerShare();
      auto count = [&held](uint64_t share) {
        auto h = held.find(share);
        return h == held.end() ? 0 : h->second;
      };
      int best = count(it->share);
      auto pick = it;
      for (auto later = std::next(it); later != queue_.end() && best > 0; ++later) {
        if (!later->resources.IsSubsetOf(available_)) {
          if (later->bypassed >= max_bypass_) break;  // a barrier
          continue;
        }
        if (later->share == 0 || later->share == it->share) continue;
        int n = count(later->share);
        if (n < best) {
          best = n;
          pick = later;
        }
      }
      if (pick != it) {
        for (auto p = it; p != pick; ++p) passed.push_back(&*p);
        it = pick;
      }
    }
    for (Request* r : passed) r->bypassed++;
    const uint64_t lease_id = next_lease_id_++;
    Request req = std::move(*it);
    queued_by_key_.erase(req.key);
    queue_.erase(it);
    const bool reserved = available_.Subtract(req.resources);
    RAYTS_CHECK(reserved);
    pending_by_key_[req.key] = lease_id;
    pending_.emplace(lease_id, Pending{req.key, std::move(req.resources), std::move(req.cb), req.share});
    std::weak_ptr<char> alive = alive_;
    // May call back synchronously (an idle worker); nothing here is used after.
    pool_->PopWorker([this, alive, lease_id](StatusOr<WorkerID> worker) {
      if (alive.expired()) return;
      OnWorkerPopped(lease_id, std::move(worker));
    });
    return true;
  }
  return false;
}

void LeaseManager::OnWorkerPopped(uint64_t lease_id, StatusOr<WorkerID> worker) {
  auto it = pending_.find(lease_id);
  if (it == pending_.end()) {
    // The request was cancelled while its worker started: give it back.
    if (worker.ok()) pool_->PushIdleWorker(*worker);
    return;
  }
  Pending p = std::move(it->second);
  pending_.erase(it);
  pending_by_key_.erase(p.key);
  if (!worker.ok()) {
    available_.Add(p.resources);
    p.cb(worker.status());
    Dispatch();
    return;
  }
  // The pool hands a worker to one holder at a time.
  RAYTS_CHECK(lease_by_worker_.count(*worker) == 0);
  leases_.emplace(lease_id, Granted{*worker, p.resources, p.share});
  lease_by_worker_[*worker] = lease_id;
  p.cb(Lease{lease_id, *worker, std::move(p.resources)});
}

bool LeaseManager::CancelRequest(uint64_t request_key) {
  const Status cancelled =
      Status::Cancelled("lease request " + std::to_string(request_key) + " was cancelled");
  if (auto q = queued_by_key_.find(request_key); q != queued_by_key_.end()) {
    LeaseCallback cb = std::move(q->second->cb);
    queue_.erase(q->second);
    queued_by_key_.erase(q);
    cb(cancelled);
    Dispatch();  // a barrier may have gone
    return true;
  }
  if (auto pk = pending_by_key_.find(request_key); pk != pending_by_key_.end()) {
    auto it = pending_.find(pk->second);
    RAYTS_CHECK(it != pending_.end());
    Pending p = std::move(it->second);
    pending_.erase(it);
    pending_by_key_.erase(pk);
    available_.Add(p.resources);
    p.cb(cancelled);
    Dispatch();
    return true;
  }
  return false;
}

WorkerID LeaseManager::ReleaseLease(std::unordered_map<uint64_t, Granted>::iterator it) {
  Granted g = std::move(it->second);
  leases_.erase(it);
  lease_by_worker_.erase(g.worker);
  ResourceSet back = std::move(g.resources);
  back.SetUnits(kCPU, back.GetUnits(kCPU) - g.released_cpu);
  available_.Add(back);
  if (g.blocked) pool_->SetWorkerBlocked(g.worker, false);
  return g.worker;
}

Status LeaseManager::ReturnLease(uint64_t lease_id, bool worker_exiting) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) {
    return Status::InvalidArgument("lease " + std::to_string(lease_id) +
                                   " is unknown or already returned");
  }
  WorkerID worker = ReleaseLease(it);
  // The pool may hand the worker straight to a request waiting for one.
  if (!worker_exiting) pool_->PushIdleWorker(worker);
  Dispatch();
  return Status::OK();
}

void LeaseManager::SetBlocked(const WorkerID& worker, bool blocked) {
  auto w = lease_by_worker_.find(worker);
  if (w == lease_by_worker_.end()) return;
  Granted& g = leases_.at(w->second);
  if (g.blocked == blocked) return;
  g.blocked = blocked;
  if (blocked) {
    g.released_cpu = g.resources.GetUnits(kCPU);
    available_.SetUnits(kCPU, available_.GetUnits(kCPU) + g.released_cpu);
  } else {
    // May overdraw available CPU; see the header's invariants.
    available_.SetUnits(kCPU, available_.GetUnits(kCPU) - g.released_cpu);
    g.released_cpu = 0;
  }
  // `g` is not used below: the pool and Dispatch may run callbacks.
  pool_->SetWorkerBlocked(worker, blocked);
  if (blocked) Dispatch();
}

std::optional<uint64_t> LeaseManager::OnWorkerDied(const WorkerID& worker) {
  std::optional<uint64_t> died;
  if (auto w = lease_by_worker_.find(worker); w != lease_by_worker_.end()) {
    died = w->second;
    ReleaseLease(leases_.find(*died));
  }
  pool_->OnWorkerDied(worker);
  Dispatch();
  return died;
}

}  // namespace rayts::raylet
