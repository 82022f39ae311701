// ActorTaskSubmitter: what an owner does when an actor's worker is lost
// with the node that granted its lease (a spillback to another node).
//
// The node's daemon dying ends its workers too (PR_SET_PDEATHSIG), and the
// owner sees two connections close: its link to that node server
// (NodeLinks -> OnNodeLostLocked) and the actor's worker
// (OnLeaseClosedLocked). They may close in either order (the daemon's
// threads end one by one), so a worker lost without a word while the link
// still stands is held for up to ActorState::kNodeDeathGrace: the link
// closing then makes the node's death the cause; the grace ending leaves
// the worker's own.
#include "core/core_worker/actor_task_submitter.h"

namespace rayts {

void ActorTaskSubmitter::HoldLossLocked(ActorState& a, const std::shared_ptr<Lease>& lease, Inflight inflight,
                                        std::string cause) {
  a.held_lease = lease;
  a.held_inflight = std::move(inflight);
  a.held_cause = std::move(cause);
  if (!a.held_timer) a.held_timer = transport_.NewTimer();
  uint64_t key = a.key;
  a.held_timer->Arm(ActorState::kNodeDeathGrace, [this, key] {
    ctx_.AssertHeld();
    if (ActorState* held = FindLocked(key)) ReleaseHeldLossLocked(*held, /*node_died=*/false);
  });
}

void ActorTaskSubmitter::ReleaseHeldLossLocked(ActorState& a, bool node_died) {
  if (!a.held_lease) return;
  std::string node = a.held_lease->node;
  std::string held_cause = a.held_cause;
  Inflight inflight = TakeHeldLossLocked(a);
  WorkerLostLocked(a, std::move(inflight), node_died ? NodeLostCauseLocked(node) : held_cause);
}

ActorTaskSubmitter::Inflight ActorTaskSubmitter::TakeHeldLossLocked(ActorState& a) {
  if (!a.held_lease) return {};
  if (a.held_timer) a.held_timer->Cancel();
  Inflight inflight = std::move(a.held_inflight);
  a.held_inflight.clear();
  a.held_lease.reset();
  a.held_cause.clear();
  for (auto& [tid, t] : inflight) t->lease.reset();
  return inflight;
}

void ActorTaskSubmitter::OnNodeLostLocked(const std::string& node) {
  for (auto& [key, a] : actors_) {
    if (a->held_lease && a->held_lease->node == node) ReleaseHeldLossLocked(*a, /*node_died=*/true);
    auto leases = a->leases;
    for (auto& l : leases) {
      if (l->node != node) continue;
      l->node_lost = true;
      if (l->link) l->link->Close();  // handled as the worker's loss, with the node's as its cause
    }
  }
}

std::string ActorTaskSubmitter::NodeLostCauseLocked(const std::string& node) const {
  auto it = node_ids_.find(node);
  std::string id = it == node_ids_.end() ? std::string() : it->second + " ";
  return "its node " + id + "at " + node + " died (the connection to that node was lost)";
}

}  // namespace rayts
