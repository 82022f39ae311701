// ActorCallQueue: the caller-side queue of method calls to one actor.
//
// Role: one per (caller process, actor). It numbers calls in submission
// order, hands them out for sending while the actor is connected, holds them
// while the actor is being created or restarted, resends calls whose replies
// were lost to a restart (while they have retries left) and fails the rest
// with a reason. Modeled on the client queue of Ray's ActorTaskSubmitter.
// Ownership: plain data; no callbacks, no I/O. Each ActorState (one per
// actor this process calls) holds one; the CoreWorker drives it.
// Thread safety: none. Its owner (ActorState, TaskReceiver) calls every
// method under the core lock (worker_context.h).
//
// Two numbers per call:
//   * seq: the per-caller submission number, 0, 1, 2, ... assigned by
//     Enqueue and never changed. It names the call to OnReplied.
//   * send_seq: the position on the wire, assigned when TakeSendable hands
//     the call out, +1 per call handed out, never reused, across every
//     connection of this queue. This is the number the executor orders by
//     (ActorSchedulingQueue::Add). Within one connection send_seq is dense
//     and increases with seq, so executing in send_seq order is executing in
//     seq order. A call resent after a restart gets a new send_seq; a call
//     failed after a restart (no retries left) is simply not sent, so it
//     never leaves a hole the executor would wait for.
//   * epoch_start: the send_seq of the first call handed out on the current
//     connection. The executor moves its next expected number to it the
//     first time it sees a larger epoch_start from this caller
//     (ActorSchedulingQueue::ObserveEpochStart); frames of an older
//     connection that arrive late then have send_seq < next and are
//     reported stale instead of being run twice.
//
// States: DISCONNECTED (initial: actor being created; calls are held),
// CONNECTED (TakeSendable hands calls out), RESTARTING (held until
// OnConnected), DEAD (terminal: every pending and every later call fails).
//
// Invariants:
//   * Every Enqueue'd call leaves exactly once: through OnReplied (true) or
//     through TakeFailed.
//   * While CONNECTED, the calls already handed out on this connection are
//     exactly the pending calls with seq < next unsent seq (a prefix in seq
//     order); all later pending calls are unsent.
//   * attempt counts sends: 0 for the first, +1 per resend after a
//     reconnection. A call is resent only while attempt < max_retries
//     (max_retries < 0: unlimited, as Ray's maxTaskRetries = -1).
//   * Readiness: a call whose arguments are still being computed is queued
//     not ready (Enqueue(..., ready = false)) and made ready by MarkReady.
//     TakeSendable stops at the first call that is not ready, so calls go on
//     the wire in submission order even when a later call's arguments are
//     ready first (Ray's sequential actor submit queue does the same).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/common/id.h"
#include "core/common/status.h"

namespace rayts {

class ActorCallQueue {
 public:
  enum class State { kDisconnected, kConnected, kRestarting, kDead };

  struct Call {
    TaskID task;
    uint64_t seq = 0;          // submission number (stable; for OnReplied)
    int attempt = 0;           // 0 first send, +1 per resend
    uint64_t epoch = 0;        // as given to the OnConnected this send is on
    uint64_t send_seq = 0;     // wire order; what the executor orders by
    uint64_t epoch_start = 0;  // send_seq of the first call on this connection
  };

  // `actor` names the actor in error messages, e.g. "Counter(1f3a...)".
  // max_pending 0 means no limit.
  explicit ActorCallQueue(std::string actor, size_t max_pending = 0);
  ActorCallQueue(const ActorCallQueue&) = delete;
  ActorCallQueue& operator=(const ActorCallQueue&) = delete;

  // OK, or Unavailable naming the actor and the maxPendingCalls limit when
  // num_pending() has reached it. Enqueue itself does not enforce the limit:
  // the caller checks first and rejects the call at its call site.
  Status CanEnqueue() const;

  // Queues a call; returns its seq (0, 1, 2, ... in submission order).
  // max_retries < 0: unlimited resends. On a DEAD actor the call fails at
  // once (it comes out of TakeFailed) and still consumes a seq. ready =
  // false: its arguments are not available yet (see MarkReady).
  uint64_t Enqueue(TaskID task, int max_retries, bool ready = true);

  // The arguments of call `seq` are available. False when seq is unknown.
  bool MarkReady(uint64_t seq);

  // The calls not sent yet, in seq order, when CONNECTED, up to (not
  // including) the first call that is not ready; nothing otherwise.
  // Handed-out calls count as in flight until OnReplied or a reconnection.
  std::vector<Call> TakeSendable();

  // The actor is alive at a (new) address/incarnation `epoch`. Calls handed
  // out on an earlier connection and not replied are resent (attempt + 1;
  // they come out of TakeSendable again, in seq order, ahead of never-sent
  // calls) when they have retries left, and fail otherwise. Ignored when
  // DEAD.
  void OnConnected(uint64_t epoch);

  // The connection is gone. restarting: hold every call until OnConnected;
  // calls in flight that have no retries left fail now ("actor X lost its
  // worker while call seq N was in flight (<cause>) ...": they could never
  // be resent, so nobody waits for the reconnection to learn it).
  // Not restarting: the actor is dead; every pending call (queued or in
  // flight) fails with "actor X died: <cause>" and so does every later call.
  void OnDisconnected(bool restarting, const std::string& cause = "");

  // The reply for `seq` arrived (or the owner failed the call itself, e.g.
  // an argument failed or it was cancelled): the call leaves the queue.
  // False when seq is unknown, already replied or already failed (a
  // duplicate reply, e.g. the late reply of an attempt that was since
  // resent, is harmless).
  bool OnReplied(uint64_t seq);

  // Calls that failed since the last TakeFailed, with the reason, in the
  // order they failed.
  std::vector<std::pair<TaskID, std::string>> TakeFailed();

  // Queued + in flight (not replied, not failed).
  size_t num_pending() const { return pending_.size(); }
  // Of those, the ones handed out on the current connection.
  size_t num_in_flight() const { return in_flight_; }
  void SetMaxPending(size_t max_pending) { max_pending_ = max_pending; }
  size_t max_pending() const { return max_pending_; }
  State state() const { return state_; }
  uint64_t epoch() const { return epoch_; }
  const std::string& actor() const { return actor_; }

 private:
  struct Entry {
    TaskID task;
    int max_retries = 0;
    int attempt = 0;
    bool sent = false;  // handed out on the current connection
    bool ready = true;  // arguments available
  };

  void Fail(const TaskID& task, std::string reason);

  const std::string actor_;
  size_t max_pending_;
  State state_ = State::kDisconnected;
  uint64_t epoch_ = 0;
  std::string death_cause_;

  uint64_t next_seq_ = 0;        // next submission number
  uint64_t next_unsent_ = 0;     // pending seqs >= this are not sent yet
  uint64_t next_send_seq_ = 0;   // next wire number
  uint64_t epoch_start_ = 0;     // send_seq at the current connection start
  size_t in_flight_ = 0;         // pending entries with sent == true
  std::map<uint64_t, Entry> pending_;  // by seq
  std::vector<std::pair<TaskID, std::string>> failed_;
};

}  // namespace rayts
