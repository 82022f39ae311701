// ActorTable: the GCS actor table and Ray's actor lifecycle state machine.
//
// Role: records every actor of the cluster (id, name, namespace, owner, job,
// lifetime, restart budget, the worker hosting it) and moves it through
//
//   PENDING_CREATION --created--> ALIVE --worker died, budget left--> RESTARTING
//        |                          |                                   |
//        |                          +--worker died, no budget / kill--> DEAD
//        +--constructor threw / owner died / handles released / kill--> DEAD
//   RESTARTING --created--> ALIVE;  RESTARTING --died again, budget--> RESTARTING
//
// Who restarts: the owner, while it lives (it reports RESTARTING and the
// new ALIVE). A detached actor whose owner is gone and whose node dies is
// restarted by the GCS itself from its restart_spec (OnNodeDead lists it;
// the host places it and reports OnCreated / OnWorkerDied /
// OnCreationFailed), as Ray's GcsActorManager::OnNodeDead -> RestartActor.
//
// It is pure logic: no sockets, no clock, no ids minted here. Every record
// it adds or changes is written through a StoreClient when it has one
// (table "actor", actor_record.h), and an evicted one deleted, as the node
// and job tables do, so a persistent store can rebuild it. Its host (the
// GcsServer, on its io thread) schedules creations, watches workers and
// owners, and reports what happened; the table decides the next state and
// tells subscribers.
// Ownership: owns the ActorInfo records and the listeners. Pointers returned
// by Get/GetByName/List stay valid until that actor is evicted (only DEAD
// actors are, oldest first, once more than max_dead_actors are kept) or the
// table is destroyed; listeners get their own copy of the record.
// Thread safety: none. Single-threaded; the host calls every method on one
// thread.
// Listeners: called synchronously from inside the mutating call, after the
// table is consistent, with a snapshot of the record taken at the
// transition. A listener may re-enter the table (Subscribe, Unsubscribe,
// even Kill/Register): the transitions such a nested call causes are
// queued and delivered after the current notification, so every listener
// sees each actor's transitions in the order they happened. A listener is
// told of transitions that happen after its Subscribe returns, never of
// earlier ones. After an actor's DEAD notification is delivered its
// subscriptions are dropped (DEAD is terminal); Unsubscribe of a dropped or
// unknown id is a no-op.
// Invariants:
//   * A (namespace, name) maps to at most one non-DEAD actor; a DEAD actor
//     frees its name at once, so the name can be reused.
//   * DEAD is terminal: no call moves a DEAD actor to another state.
//   * num_restarts <= max_restarts unless max_restarts == -1 (forever).
//   * address and worker are set exactly when the state is ALIVE.
//   * death_cause is non-empty exactly when the state is DEAD.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/common/id.h"
#include "core/common/status.h"
#include "core/gcs/store_client.h"

namespace rayts::gcs {

using ActorID = BaseId<16>;

enum class ActorState { kPendingCreation, kAlive, kRestarting, kDead };

// "PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD".
const char* ActorStateName(ActorState state);

struct ActorInfo {
  ActorID id;
  std::string name;         // empty: anonymous
  std::string ns;           // namespace
  std::string class_name;
  bool detached = false;    // lifetime: 'detached' outlives owner and job
  int max_restarts = 0;     // -1: restart forever
  int num_restarts = 0;
  ActorState state = ActorState::kPendingCreation;
  WorkerID owner_worker;
  NodeID owner_node;        // the owner's node (nil: embedded, or unknown)
  bool owner_alive = true;  // false once the owner is gone (a detached actor lives on)
  JobID job = 0;
  std::string address;      // worker socket, set while ALIVE
  WorkerID worker;          // set while ALIVE
  NodeID node;              // the node of its worker: set with ALIVE, kept after
                            // (nil when the host cannot tell)
  std::string death_cause;  // "killed by ray.kill", "worker process exited
                            // with code 1", "constructor threw: TypeError: x"
  std::string creation_spec;  // the handle's wire form (GetNamedActor answers with it)
  // A detached actor's creation as its owner sent it (ActorRestartSpec
  // bytes, opaque here): with it the GCS creates the actor again when its
  // node dies after its creator is gone. Empty: not sent, or not possible
  // (`not_restartable` says why: by-reference constructor arguments).
  std::string restart_spec;
  std::string not_restartable;
};

class ActorTable {
 public:
  using Listener = std::function<void(const ActorInfo&)>;
  static constexpr size_t kDefaultMaxDeadActors = 10000;

  // Keeps at most max_dead_actors DEAD records for lookups; older ones are
  // evicted first. `store` (not owned, may be null) receives every record.
  explicit ActorTable(size_t max_dead_actors = kDefaultMaxDeadActors, StoreClient* store = nullptr);
  ActorTable(const ActorTable&) = delete;
  ActorTable& operator=(const ActorTable&) = delete;

  // Adds a new actor in PENDING_CREATION (state, num_restarts, address,
  // worker and death_cause of `info` are reset). A name already held by a
  // non-DEAD actor of the same namespace is AlreadyExists ("an actor named
  // 'c1' already exists in namespace 'ns'") unless get_if_exists, which
  // returns the existing actor. Registering an id already in the table
  // returns that actor unchanged (retried registrations are idempotent).
  // InvalidArgument for a nil id or max_restarts < -1.
  StatusOr<ActorInfo> Register(ActorInfo info, bool get_if_exists);

  // The constructor finished on `worker`: PENDING_CREATION or RESTARTING ->
  // ALIVE. Invalid (naming both states) from any other state; NotFound for
  // an unknown actor.
  // `node`: the node of that worker (nil when unknown).
  Status OnCreated(const ActorID& id, const WorkerID& worker, const std::string& address,
                   const NodeID& node = NodeID::Nil());

  // The actor's worker process died (ALIVE, PENDING_CREATION, or a
  // RESTARTING actor whose new worker died before its constructor finished):
  // RESTARTING with num_restarts + 1 when the budget allows, else DEAD with
  // `cause`. Returns the new state. Invalid from DEAD. The host reports each
  // worker death once.
  StatusOr<ActorState> OnWorkerDied(const ActorID& id, const std::string& cause);

  // The constructor threw: PENDING_CREATION or RESTARTING -> DEAD with
  // `cause`, no restart. Invalid from ALIVE or DEAD.
  Status OnCreationFailed(const ActorID& id, const std::string& cause);

  // ray.kill: no_restart -> DEAD with `cause`; otherwise like a worker death
  // (RESTARTING if the budget allows, else DEAD). Killing a DEAD actor is OK
  // and changes nothing.
  Status Kill(const ActorID& id, bool no_restart, const std::string& cause);

  // Every non-DEAD, non-detached actor owned by `owner` -> DEAD ("owner
  // died"). Detached actors live on, marked owner_alive = false.
  void OnOwnerDied(const WorkerID& owner);
  // Node `node` died (`why`: the health checks' or the node's own words).
  // Its owners are gone: their non-detached actors -> DEAD ("its owner's
  // node ... died"), their detached ones owner_alive = false. An actor
  // running on the node whose owner is gone -> DEAD ("its node ... died"):
  // nobody is left to restart it. An actor running there whose owner lives
  // elsewhere is left to that owner, which restarts it or reports its death.
  // Such an orphan that is detached, has a restart_spec and restarts left
  // goes RESTARTING instead (num_restarts + 1) and is appended to
  // `to_restart` (may be null: it is then left RESTARTING) for the host to
  // create again; one without a spec dies saying why it could not restart.
  // Returns the addresses of the workers (on other nodes) of actors that
  // died here, for the host to end.
  std::vector<std::string> OnNodeDead(const NodeID& node, const std::string& why,
                                      std::vector<ActorID>* to_restart = nullptr);
  // The owner of detached actor `id` sent what re-creating it needs (`spec`
  // empty: not possible, `not_restartable` says why). NotFound for an
  // unknown actor; ignored (OK) for a DEAD one.
  Status SetRestartSpec(const ActorID& id, std::string spec, std::string not_restartable);
  // Every non-DEAD, non-detached actor of `job` -> DEAD ("job finished").
  void OnJobFinished(JobID job);
  // Every handle of the actor is gone: a non-detached actor -> DEAD ("all
  // handles released"). No-op for detached, DEAD or unknown actors.
  void OnHandlesReleased(const ActorID& id);

  // nullptr when unknown (or evicted).
  const ActorInfo* Get(const ActorID& id) const;
  // The non-DEAD actor holding (ns, name); nullptr if none.
  const ActorInfo* GetByName(const std::string& ns, const std::string& name) const;
  // Every actor kept, DEAD ones included, in registration order.
  std::vector<const ActorInfo*> List() const;
  size_t num_alive() const { return num_alive_; }

  // `listener` is called on every state change of actor `id` from now on
  // (see Listeners above). Returns a subscription id for Unsubscribe.
  // Subscribing to a DEAD actor stores nothing: it will never change again.
  uint64_t Subscribe(const ActorID& id, Listener listener);
  void Unsubscribe(uint64_t subscription);
  size_t num_subscriptions() const { return subs_.size(); }

 private:
  struct Entry {
    ActorInfo info;
    uint64_t seq;  // registration order
  };
  struct Subscription {
    ActorID actor;
    std::shared_ptr<const Listener> fn;  // shared: a listener may unsubscribe itself
  };
  struct Notification {
    ActorInfo info;                    // snapshot at the transition
    std::vector<uint64_t> recipients;  // subscribed when it happened
  };
  using NameKey = std::pair<std::string, std::string>;  // (namespace, name)

  Entry* Find(const ActorID& id);
  // Moves e to `to`, keeping the invariants and indexes, and queues the
  // notification. Does not deliver it: callers Flush() once consistent.
  void Transition(Entry* e, ActorState to, const std::string& cause);
  // Worker death or restartable kill: RESTARTING if budget, else DEAD.
  void DieOrRestart(Entry* e, const std::string& cause);
  // Every non-DEAD, non-detached actor matching pred -> DEAD with cause.
  void KillMatching(const std::function<bool(const ActorInfo&)>& pred, const std::string& cause);
  void EnqueueNotification(const ActorInfo& info);
  // Delivers queued notifications in order; a nested call returns at once
  // and the outer one delivers what it queued.
  void Flush();
  void EvictDead();
  // Writes the record to the store (when there is one).
  void Persist(const ActorInfo& a);

  const size_t max_dead_actors_;
  StoreClient* store_;
  std::unordered_map<ActorID, Entry, IdHash> actors_;
  std::map<NameKey, ActorID> names_;  // non-DEAD named actors only
  std::deque<ActorID> dead_order_;    // DEAD actors, oldest first
  size_t num_alive_ = 0;
  uint64_t next_seq_ = 0;

  std::unordered_map<uint64_t, Subscription> subs_;
  std::unordered_map<ActorID, std::vector<uint64_t>, IdHash> subs_by_actor_;
  uint64_t next_sub_id_ = 1;
  std::deque<Notification> pending_;
  bool flushing_ = false;
};

}  // namespace rayts::gcs
