// ActorState: the owner/caller side's record of one actor this process calls.
//
// Role: one per actor this process holds a handle to, either owned (created
// here: restart budget, the constructor call re-pushed on a restart, its
// by-ref arguments pinned for the actor's life) or borrowed (owned by another
// process; its address comes from the GCS). It holds the actor's
// ActorCallQueue (method calls in submission order), its life (alive,
// restarting, dead with a cause) and its worker lease: the lease itself
// (one for the actor's life; a restart replaces it), an outstanding lease
// request (owned) or GCS lookup (borrowed), and the queue of calls that go
// ahead of the call queue (the constructor call, retried calls). The pure
// decisions (may it restart, how many resends a call gets, the
// ActorDiedError record) are methods here; the ActorTaskSubmitter does the
// I/O.
// Ownership: the ActorTaskSubmitter owns every ActorState (by `key`);
// nothing else keeps a pointer across a release of the core lock.
// Thread safety: none of its own; every access is under the core lock
// (worker_context.h; the submitter's actors_ is GUARDED_BY it).
// Invariants: `dead` is terminal and MarkDead records the first cause only;
// num_restarts <= max_restarts unless max_restarts < 0 (forever); a borrowed
// actor is never restarted from here (its owner does it); creation_arg_refs
// is non-empty only for an owned actor that is not dead.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/common/id.h"
#include "core/core_worker/actor_call_queue.h"
#include "core/core_worker/task_records.h"

namespace rayts {

struct ActorState {
  // A borrower re-asks the GCS this many times (100 ms apart) when the address
  // it got cannot be reached (the owner may not have reported a restart yet).
  static constexpr int kLookupRetries = 30;
  // ... and this many times while the GCS still names the address whose
  // connection broke: its worker's node may have died, which the GCS learns
  // from its health checks (Ray's defaults: dead after 5 failed checks 3 s
  // apart), and then the GCS or the owner restarts the actor elsewhere.
  static constexpr int kStaleLookupRetries = 300;
  // How long a silent worker loss on another node waits to learn whether
  // that node died (Ray's timeout_ms_task_wait_for_death_info: 1 s).
  static constexpr std::chrono::milliseconds kNodeDeathGrace{1000};

  ActorState(const TaskID& actor, uint64_t key, bool borrowed)
      : id(actor), key(key), borrowed(borrowed), calls("actor " + actor.Hex()) {}
  ActorState(const ActorState&) = delete;
  ActorState& operator=(const ActorState&) = delete;

  // The worker is gone: may the owner start a new one? Not when dead, killed
  // with noRestart, borrowed, or out of restarts (max_restarts < 0: forever).
  bool CanRestart() const {
    return !dead && !no_restart && !borrowed && (max_restarts < 0 || num_restarts < max_restarts);
  }
  // The node's memory monitor kills retriable workers first: an actor's is
  // retriable when it may restart at all.
  bool LeaseRetriable() const { return max_restarts != 0; }
  // Resends of a call cut off by a restart (maxTaskRetries): every caller
  // resends its own calls, a borrower with the value its handle carries.
  int CallRetries() const { return max_task_retries; }
  // Records the death; true the first time (the caller then reports it and
  // unpins), false when already dead (the first cause stays).
  bool MarkDead(const std::string& cause);
  // The pinned constructor arguments, handed over once (to be unpinned).
  std::vector<ObjectID> TakeCreationArgRefs();
  // A failed connect to a borrowed actor's address (stale: the GCS named
  // the address that broke); true once the lookups are exhausted (more than
  // kLookupRetries, or kStaleLookupRetries when stale, since the last success).
  bool LookupFailed(bool stale = false) { return ++lookup_retries > (stale ? kStaleLookupRetries : kLookupRetries); }
  // The ActorDiedError record a call fails with: `cause`, the actor's id
  // and, when its constructor threw, that error's record as "cause".
  std::string DiedJson(const std::string& cause) const;

  const TaskID id;
  const uint64_t key;            // its key in the submitter (and its tasks' PendingTask::key)
  const bool borrowed;           // owned by another process: address from the GCS
  bool dead = false;
  int max_restarts = 0;          // owned actors: -1 forever
  int num_restarts = 0;
  int max_task_retries = 0;      // -1 forever
  bool no_restart = false;       // killed with noRestart
  bool detached = false;         // lifetime 'detached': outlives this owner
  std::string exit_when_idle;    // non-empty: end the actor (this cause) once idle
  int lookup_retries = 0;        // borrowed: failed connects since the last success
  std::string lost_address;      // borrowed: the address whose connection broke last (not retried at once)
  SubmitRequest creation;        // owned actors: re-pushed on restart
  std::vector<ObjectID> creation_arg_refs;  // owned by-ref constructor args, pinned for the actor's life
  ActorCallQueue calls;          // method calls, in submission order
  uint64_t epoch = 0;            // connections made to the actor so far
  // Owned: the constructor of the current incarnation answered without an
  // error. Method calls are sent only then (as Ray holds them until the
  // actor is ALIVE), so a worker lost during construction costs them no
  // retry. Borrowed actors are alive when their address is known.
  bool constructed = false;
  std::string death_cause;
  std::string death_cause_record;  // JSON error record of a failed constructor

  // Its worker lease.
  std::vector<std::pair<std::string, double>> resources;  // the constructor's shape
  SchedulingOptions scheduling;                           // its schedulingStrategy
  std::string pending_node;                               // where the lease request waits ("" : this process's node)
  std::deque<std::shared_ptr<PendingTask>> queue;  // sent before the call queue: the constructor call, retried calls
  std::vector<std::shared_ptr<Lease>> leases;      // at most one not returned
  int pending_requests = 0;                        // lease request (owned) or GCS lookup (borrowed) outstanding
  uint64_t pending_request_id = 0;
  bool cancel_sent = false;                        // CancelLeaseRequest sent for pending_request_id
  std::unique_ptr<Timer> lookup_timer;             // borrowed: the next GCS lookup after a failed connect
  // Owned: a worker of a lease another node granted died without a word,
  // while the connection to that node still stood. Its node may be dying
  // (the worker ends with it, and can go first): the loss waits for that
  // connection to close (the node died: its cause) or for kNodeDeathGrace.
  std::shared_ptr<Lease> held_lease;
  TaskMap held_inflight;  // its calls in flight, handed to the restart or death then
  std::string held_cause;  // the cause if the node turns out alive
  std::unique_ptr<Timer> held_timer;
};

}  // namespace rayts
