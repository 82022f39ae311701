// GcsServer: detached actors whose creator is gone, created again by the
// GCS when their node dies (see gcs_server.h). Ray does the same in
// GcsActorManager::OnNodeDead -> RestartActor and GcsActorScheduler: the
// GCS is the actor's submitter then. Here the GCS asks a node to place it
// (RestartActor with the creation spec the owner sent); that node's
// SchedulingPolicy grants it there or names another node, which is asked
// with grant-or-reject; the answer (RestartActorReply) moves the actor
// table on: ALIVE at the new worker, or another try while the restart
// budget lasts, or DEAD with the reason.
#include "core/gcs/gcs_server.h"

namespace rayts::gcs {

namespace {
using Fbb = flatbuffers::FlatBufferBuilder;
std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }
}  // namespace

void GcsServer::RestartActor(const ActorID& id, const NodeID& at, int hops) {
  ActorTable& table = gcs_->tables().actors();
  restarts_.erase(id);
  const ActorInfo* a = table.Get(id);
  if (a == nullptr || a->state != ActorState::kRestarting) return;  // killed meanwhile
  if (hops > kMaxRestartHops) {
    (void)table.Kill(id, /*no_restart=*/true,
                     "it could not be placed again after its node died (" + std::to_string(hops) +
                         " nodes tried)");
    return;
  }
  NodeID node = at;
  if (node.IsNil() || !node_peers_.count(node)) {
    // Any live node places it (its SchedulingPolicy decides where): the
    // head when it is connected, else the first other.
    node = NodeID::Nil();
    for (const NodeInfo& n : gcs_->tables().nodes()) {
      if (!n.alive || !node_peers_.count(n.node_id)) continue;
      if (node.IsNil() || n.is_head) node = n.node_id;
      if (n.is_head) break;
    }
  }
  if (node.IsNil()) {
    (void)table.Kill(id, /*no_restart=*/true, "no live node is left to restart it on");
    return;
  }
  const bool grant_or_reject = node == at;
  restarts_[id] = PendingRestart{node, hops};
  Fbb fbb(256 + a->restart_spec.size());
  auto aid = fbb.CreateVector(id.data(), ActorID::kSize);
  auto spec = fbb.CreateVector(reinterpret_cast<const uint8_t*>(a->restart_spec.data()), a->restart_spec.size());
  SendToNode(node, FinishFrame(fbb, proto::CreateRestartActor(fbb, aid, spec, a->num_restarts, grant_or_reject)));
  Log("restarting actor " + id.Hex() + (a->name.empty() ? "" : " ('" + a->name + "')") + " (restart " +
      std::to_string(a->num_restarts) + "): asked node " + node.Hex() + (grant_or_reject ? " to grant or reject" : ""));
}

void GcsServer::OnRestartActorReply(const NodeID& from, const proto::RestartActorReply& r) {
  if (!r.actor_id() || r.actor_id()->size() != ActorID::kSize) return;
  ActorID id = ActorID::FromBytes(r.actor_id()->data());
  auto it = restarts_.find(id);
  if (it == restarts_.end() || it->second.node != from) return;  // not the try in progress
  int hops = it->second.hops;
  restarts_.erase(it);
  ActorTable& table = gcs_->tables().actors();
  std::string address = Str(r.address());
  if (r.code() == 0 && !address.empty()) {
    WorkerID worker = r.worker_id() && r.worker_id()->size() == WorkerID::kSize
                          ? WorkerID::FromBytes(r.worker_id()->data()) : WorkerID::Nil();
    Status s = table.OnCreated(id, worker, address, from);
    if (!s.ok()) {
      KillWorkerAt(address);  // killed while it was being created
      return;
    }
    Log("actor " + id.Hex() + " is alive again on node " + from.Hex() + " at " + address);
    return;
  }
  if (r.code() == 0 && r.retry_at_node_id() && r.retry_at_node_id()->size() == NodeID::kSize) {
    RestartActor(id, NodeID::FromBytes(r.retry_at_node_id()->data()), hops + 1);  // spillback
    return;
  }
  if (r.code() == 0) {
    RestartActor(id, NodeID::Nil(), hops + 1);  // rejected (or an empty answer): ask again
    return;
  }
  std::string why = Str(r.message());
  if (r.constructor_threw()) {
    (void)table.OnCreationFailed(id, "its constructor threw when it was restarted after its node died: " + why);
    return;
  }
  if (static_cast<StatusCode>(r.code()) == StatusCode::kInfeasible) {
    (void)table.Kill(id, /*no_restart=*/true, "it cannot be placed again after its node died: " + why);
    return;
  }
  RestartFailed(id, why, hops + 1);
}

void GcsServer::RestartFailed(const ActorID& id, const std::string& cause, int hops) {
  ActorTable& table = gcs_->tables().actors();
  const ActorInfo* a = table.Get(id);
  if (a == nullptr || a->state != ActorState::kRestarting) return;
  auto st = table.OnWorkerDied(id, cause);
  if (st.ok() && *st == ActorState::kRestarting) RestartActor(id, NodeID::Nil(), hops);
}

void GcsServer::OnRestartNodeDead(const NodeID& node) {
  std::vector<std::pair<ActorID, int>> lost;
  for (auto& [id, r] : restarts_) {
    if (r.node == node) lost.emplace_back(id, r.hops);
  }
  for (auto& [id, hops] : lost) {
    restarts_.erase(id);
    RestartFailed(id, "its node " + node.Hex() + " died while it was restarted there", hops + 1);
  }
}

}  // namespace rayts::gcs
