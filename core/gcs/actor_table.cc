#include "core/gcs/actor_table.h"

#include <algorithm>
#include <utility>

#include "core/gcs/actor_record.h"

namespace rayts::gcs {

namespace {

// "actor 'c1' (0a1b...)" or "actor 0a1b..." for an anonymous one.
std::string Describe(const ActorInfo& a) {
  if (a.name.empty()) return "actor " + a.id.Hex();
  return "actor '" + a.name + "' (" + a.id.Hex() + ")";
}

Status NotRegistered(const ActorID& id) {
  return Status::NotFound("actor " + id.Hex() + " is not registered");
}

Status BadTransition(const ActorInfo& a, const char* to, const std::string& why) {
  return Status::Invalid(Describe(a) + " cannot go from " + ActorStateName(a.state) + " to " + to +
                         " (" + why + ")");
}

}  // namespace

const char* ActorStateName(ActorState state) {
  switch (state) {
    case ActorState::kPendingCreation: return "PENDING_CREATION";
    case ActorState::kAlive: return "ALIVE";
    case ActorState::kRestarting: return "RESTARTING";
    case ActorState::kDead: return "DEAD";
  }
  return "UNKNOWN";
}

ActorTable::ActorTable(size_t max_dead_actors, StoreClient* store)
    : max_dead_actors_(max_dead_actors), store_(store) {}

void ActorTable::Persist(const ActorInfo& a) {
  if (store_ != nullptr) (void)store_->Put(kActorStoreTable, a.id.Hex(), EncodeActorRecord(a));  // in memory: cannot fail
}

ActorTable::Entry* ActorTable::Find(const ActorID& id) {
  auto it = actors_.find(id);
  return it == actors_.end() ? nullptr : &it->second;
}

StatusOr<ActorInfo> ActorTable::Register(ActorInfo info, bool get_if_exists) {
  if (info.id.IsNil()) return Status::InvalidArgument("actor id is nil");
  if (info.max_restarts < -1) {
    return Status::InvalidArgument("max_restarts must be -1 (forever) or >= 0, got " +
                                   std::to_string(info.max_restarts));
  }
  if (const Entry* e = Find(info.id)) return e->info;
  if (!info.name.empty()) {
    if (const ActorInfo* existing = GetByName(info.ns, info.name)) {
      if (get_if_exists) return *existing;
      return Status::AlreadyExists("an actor named '" + info.name + "' already exists in namespace '" +
                                   info.ns + "'");
    }
  }
  info.state = ActorState::kPendingCreation;
  info.num_restarts = 0;
  info.address.clear();
  info.worker = WorkerID::Nil();
  info.node = NodeID::Nil();
  info.owner_alive = true;
  info.death_cause.clear();
  ActorID id = info.id;
  auto [it, inserted] = actors_.emplace(id, Entry{std::move(info), next_seq_++});
  RAYTS_CHECK(inserted);
  const ActorInfo& stored = it->second.info;
  if (!stored.name.empty()) names_.emplace(NameKey(stored.ns, stored.name), id);
  Persist(stored);
  EnqueueNotification(stored);
  ActorInfo result = stored;  // copy before listeners run: they may re-enter
  Flush();
  return result;
}

Status ActorTable::OnCreated(const ActorID& id, const WorkerID& worker, const std::string& address,
                             const NodeID& node) {
  Entry* e = Find(id);
  if (e == nullptr) return NotRegistered(id);
  ActorState s = e->info.state;
  if (s != ActorState::kPendingCreation && s != ActorState::kRestarting) {
    return BadTransition(e->info, "ALIVE", "constructor finished on worker " + worker.Hex());
  }
  e->info.worker = worker;
  e->info.address = address;
  e->info.node = node;
  Transition(e, ActorState::kAlive, "");
  Flush();
  return Status::OK();
}

StatusOr<ActorState> ActorTable::OnWorkerDied(const ActorID& id, const std::string& cause) {
  Entry* e = Find(id);
  if (e == nullptr) return NotRegistered(id);
  if (e->info.state == ActorState::kDead) {
    return BadTransition(e->info, "RESTARTING or DEAD", "worker died: " + cause);
  }
  DieOrRestart(e, cause);
  ActorState now = e->info.state;  // read before listeners run
  Flush();
  return now;
}

Status ActorTable::OnCreationFailed(const ActorID& id, const std::string& cause) {
  Entry* e = Find(id);
  if (e == nullptr) return NotRegistered(id);
  ActorState s = e->info.state;
  if (s != ActorState::kPendingCreation && s != ActorState::kRestarting) {
    return BadTransition(e->info, "DEAD", "creation failed: " + cause);
  }
  Transition(e, ActorState::kDead, cause);
  Flush();
  return Status::OK();
}

Status ActorTable::Kill(const ActorID& id, bool no_restart, const std::string& cause) {
  Entry* e = Find(id);
  if (e == nullptr) return NotRegistered(id);
  if (e->info.state == ActorState::kDead) return Status::OK();
  if (no_restart) {
    Transition(e, ActorState::kDead, cause);
  } else {
    DieOrRestart(e, cause);
  }
  Flush();
  return Status::OK();
}

void ActorTable::OnOwnerDied(const WorkerID& owner) {
  for (auto& [id, e] : actors_) {
    if (e.info.detached && e.info.owner_alive && e.info.owner_worker == owner) {
      e.info.owner_alive = false;
      Persist(e.info);
    }
  }
  KillMatching([&](const ActorInfo& a) { return a.owner_worker == owner; }, "owner died");
}

std::vector<std::string> ActorTable::OnNodeDead(const NodeID& node, const std::string& why,
                                                std::vector<ActorID>* to_restart) {
  std::vector<std::string> to_end;
  if (node.IsNil()) return to_end;
  const std::string suffix = " (" + why + ")";
  // Owners on the node are gone: a detached actor of theirs lives on.
  for (auto& [id, e] : actors_) {
    if (e.info.detached && e.info.owner_alive && e.info.owner_node == node) {
      e.info.owner_alive = false;
      Persist(e.info);
    }
  }
  std::vector<Entry*> victims;
  for (auto& [id, e] : actors_) {
    const ActorInfo& a = e.info;
    if (a.state == ActorState::kDead) continue;
    bool owner_here = !a.detached && a.owner_node == node;
    bool orphan_here = a.node == node && !a.owner_alive;
    if (owner_here || orphan_here) victims.push_back(&e);
  }
  std::sort(victims.begin(), victims.end(), [](const Entry* a, const Entry* b) { return a->seq < b->seq; });
  for (Entry* e : victims) {
    ActorInfo& a = e->info;
    bool runs_here = a.node == node;
    if (!runs_here && !a.address.empty()) to_end.push_back(a.address);
    std::string cause = (runs_here ? "its node " + node.Hex() + " died" : "its owner's node " + node.Hex() + " died") + suffix;
    bool budget = a.max_restarts == -1 || a.num_restarts < a.max_restarts;
    if (runs_here && a.detached && budget && a.state == ActorState::kAlive) {
      if (!a.restart_spec.empty()) {
        // Nobody else is left to restart it: the GCS does (the host places it).
        a.num_restarts++;
        Transition(e, ActorState::kRestarting, "");
        if (to_restart != nullptr) to_restart->push_back(a.id);
        continue;
      }
      cause += "; its creator is gone and it could not be restarted without it (" +
               (a.not_restartable.empty() ? std::string("the GCS holds no creation spec for it") : a.not_restartable) + ")";
    }
    Transition(e, ActorState::kDead, cause);
  }
  Flush();
  return to_end;
}

Status ActorTable::SetRestartSpec(const ActorID& id, std::string spec, std::string not_restartable) {
  Entry* e = Find(id);
  if (e == nullptr) return NotRegistered(id);
  if (e->info.state == ActorState::kDead) return Status::OK();
  e->info.restart_spec = std::move(spec);
  e->info.not_restartable = std::move(not_restartable);
  Persist(e->info);
  return Status::OK();
}

void ActorTable::OnJobFinished(JobID job) {
  KillMatching([&](const ActorInfo& a) { return a.job == job; }, "job finished");
}

void ActorTable::OnHandlesReleased(const ActorID& id) {
  Entry* e = Find(id);
  if (e == nullptr || e->info.detached || e->info.state == ActorState::kDead) return;
  Transition(e, ActorState::kDead, "all handles released");
  Flush();
}

void ActorTable::KillMatching(const std::function<bool(const ActorInfo&)>& pred,
                              const std::string& cause) {
  // Collect first, in registration order, so notifications are deterministic
  // and the map is not mutated while iterated.
  std::vector<Entry*> victims;
  for (auto& [id, e] : actors_) {
    if (e.info.state != ActorState::kDead && !e.info.detached && pred(e.info)) victims.push_back(&e);
  }
  std::sort(victims.begin(), victims.end(), [](const Entry* a, const Entry* b) { return a->seq < b->seq; });
  // Eviction only happens in EvictDead after all transitions, so the
  // pointers stay valid through this loop.
  for (Entry* e : victims) Transition(e, ActorState::kDead, cause);
  Flush();
}

void ActorTable::DieOrRestart(Entry* e, const std::string& cause) {
  ActorInfo& a = e->info;
  if (a.max_restarts == -1 || a.num_restarts < a.max_restarts) {
    a.num_restarts++;
    Transition(e, ActorState::kRestarting, "");
  } else {
    Transition(e, ActorState::kDead, cause);
  }
}

void ActorTable::Transition(Entry* e, ActorState to, const std::string& cause) {
  ActorInfo& a = e->info;
  RAYTS_CHECK(a.state != ActorState::kDead);  // DEAD is terminal
  if (a.state == ActorState::kAlive) num_alive_--;
  a.state = to;
  switch (to) {
    case ActorState::kAlive:
      num_alive_++;
      break;
    case ActorState::kPendingCreation:
    case ActorState::kRestarting:
      a.address.clear();
      a.worker = WorkerID::Nil();
      break;
    case ActorState::kDead:
      a.address.clear();
      a.worker = WorkerID::Nil();
      a.death_cause = cause.empty() ? "unknown cause" : cause;
      if (!a.name.empty()) {
        auto it = names_.find(NameKey(a.ns, a.name));
        if (it != names_.end() && it->second == a.id) names_.erase(it);
      }
      dead_order_.push_back(a.id);
      break;
  }
  RAYTS_CHECK(a.max_restarts == -1 || a.num_restarts <= a.max_restarts);
  Persist(a);
  EnqueueNotification(a);
}

void ActorTable::EnqueueNotification(const ActorInfo& info) {
  auto it = subs_by_actor_.find(info.id);
  if (it == subs_by_actor_.end() || it->second.empty()) return;
  pending_.push_back(Notification{info, it->second});
}

void ActorTable::Flush() {
  if (flushing_) return;  // the outer Flush delivers what nested calls queue
  flushing_ = true;
  while (!pending_.empty()) {
    Notification n = std::move(pending_.front());
    pending_.pop_front();
    for (uint64_t sub_id : n.recipients) {
      auto it = subs_.find(sub_id);
      if (it == subs_.end()) continue;  // unsubscribed meanwhile
      std::shared_ptr<const Listener> fn = it->second.fn;  // survives Unsubscribe
      (*fn)(n.info);
    }
    if (n.info.state == ActorState::kDead) {
      // Terminal: nothing more will be told about this actor.
      auto by = subs_by_actor_.find(n.info.id);
      if (by != subs_by_actor_.end()) {
        for (uint64_t sub_id : by->second) subs_.erase(sub_id);
        subs_by_actor_.erase(by);
      }
    }
  }
  flushing_ = false;
  EvictDead();
}

void ActorTable::EvictDead() {
  while (dead_order_.size() > max_dead_actors_) {
    if (store_ != nullptr) store_->Delete(kActorStoreTable, dead_order_.front().Hex());
    actors_.erase(dead_order_.front());
    dead_order_.pop_front();
  }
}

const ActorInfo* ActorTable::Get(const ActorID& id) const {
  auto it = actors_.find(id);
  return it == actors_.end() ? nullptr : &it->second.info;
}

const ActorInfo* ActorTable::GetByName(const std::string& ns, const std::string& name) const {
  auto it = names_.find(NameKey(ns, name));
  return it == names_.end() ? nullptr : Get(it->second);
}

std::vector<const ActorInfo*> ActorTable::List() const {
  std::vector<const Entry*> entries;
  entries.reserve(actors_.size());
  for (auto& [id, e] : actors_) entries.push_back(&e);
  std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) { return a->seq < b->seq; });
  std::vector<const ActorInfo*> out;
  out.reserve(entries.size());
  for (const Entry* e : entries) out.push_back(&e->info);
  return out;
}

uint64_t ActorTable::Subscribe(const ActorID& id, Listener listener) {
  uint64_t sub_id = next_sub_id_++;
  const ActorInfo* a = Get(id);
  if (a != nullptr && a->state == ActorState::kDead) return sub_id;
  subs_.emplace(sub_id, Subscription{id, std::make_shared<const Listener>(std::move(listener))});
  subs_by_actor_[id].push_back(sub_id);
  return sub_id;
}

void ActorTable::Unsubscribe(uint64_t subscription) {
  auto it = subs_.find(subscription);
  if (it == subs_.end()) return;
  auto by = subs_by_actor_.find(it->second.actor);
  if (by != subs_by_actor_.end()) {
    auto& v = by->second;
    v.erase(std::remove(v.begin(), v.end(), subscription), v.end());
    if (v.empty()) subs_by_actor_.erase(by);
  }
  subs_.erase(it);
}

}  // namespace rayts::gcs
