// ActorSchedulingQueue: the executor-side order of one caller's actor calls.
//
// Role: one per caller on the actor's worker. Calls from one caller must run
// in the order the caller sent them even when frames reach the executor out
// of order (argument resolution, a reconnection). Each call carries a number
// from the caller (ActorCallQueue::Call::send_seq, passed here as `seq`);
// the queue releases a call only when it is the next expected one, and
// releases the consecutive run that follows. Modeled on Ray's
// ActorSchedulingQueue (ordered) and OutOfOrderActorSchedulingQueue.
// Ownership: stores opaque 64-bit handles chosen by the owner (an index into
// its own table of received calls); it never interprets them.
// Thread safety: none. Its owner (ActorState, TaskReceiver) calls every
// method under the core lock (worker_context.h).
//
// Ordering only when max_concurrency == 1. With max_concurrency > 1 (a
// threaded or async actor) calls may run concurrently anyway, so order
// cannot be promised and is not enforced: TakeRunnable returns everything
// queued, in arrival order. Ray does the same for threaded/async actors.
//
// Stale calls: a call whose seq is below the next expected number (a frame
// of an older connection arriving after the caller's new connection started,
// or a duplicate) is never run; it comes out of TakeStale so the owner can
// reply 'duplicate'. This rule holds in both modes.
//
// Bounded wait: a live caller never leaves a hole in its numbering (see
// ActorCallQueue), so a gap that persists means the caller died between
// sends (or its connection broke mid-stream and it never came back). The
// queue does not wait forever: the owner arms a timer while HasGap() and
// calls OnGapTimeout() when it fires; that skips the missing numbers,
// records a reason (last_gap_reason()) and releases the calls after the gap.
//
// Invariants: a handle is returned exactly once, by TakeRunnable,
// OnGapTimeout or TakeStale. In ordered mode every queued seq is >= next and
// seqs released by TakeRunnable are consecutive from the next expected one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rayts {

class ActorSchedulingQueue {
 public:
  // max_concurrency <= 1: ordered; > 1: unordered (see above).
  explicit ActorSchedulingQueue(int max_concurrency = 1, uint64_t next_expected = 0);
  ActorSchedulingQueue(const ActorSchedulingQueue&) = delete;
  ActorSchedulingQueue& operator=(const ActorSchedulingQueue&) = delete;

  // A call numbered `seq` arrived. seq < next expected, or a seq already
  // queued (ordered mode): the call is stale (TakeStale).
  void Add(uint64_t seq, uint64_t handle);

  // Ordered: the handles whose seq is the next expected one and the
  // consecutive run after it, in seq order; the next expected number moves
  // past them. Unordered: everything queued, in arrival order.
  std::vector<uint64_t> TakeRunnable();

  // Sets the next expected number (a new connection from the caller).
  // Queued calls with seq >= next are kept; those below become stale.
  void SetNextExpected(uint64_t seq);

  // Monotonic helper for the owner: call it with each incoming call's
  // epoch_start (ActorCallQueue::Call). The first time a larger value than
  // any seen is observed, SetNextExpected(epoch_start); a late frame of an
  // older connection (smaller epoch_start) changes nothing.
  void ObserveEpochStart(uint64_t epoch_start);

  // Handles that must not run, in the order they became stale.
  std::vector<uint64_t> TakeStale();

  // Ordered mode: calls are queued but the next expected seq is missing.
  bool HasGap() const;

  // The owner's gap timer fired. If there is still a gap, skips to the
  // lowest queued seq, sets last_gap_reason() and returns what is now
  // runnable (as TakeRunnable). Otherwise (gap filled meanwhile, or
  // unordered mode) returns nothing and changes nothing.
  std::vector<uint64_t> OnGapTimeout();
  const std::string& last_gap_reason() const { return last_gap_reason_; }

  uint64_t next_expected() const { return next_; }
  size_t num_queued() const { return ordered_ ? by_seq_.size() : arrivals_.size(); }
  bool ordered() const { return ordered_; }

 private:
  const bool ordered_;
  uint64_t next_;
  uint64_t max_epoch_start_seen_;
  std::map<uint64_t, uint64_t> by_seq_;  // ordered mode: seq -> handle
  struct Arrival {
    uint64_t seq;
    uint64_t handle;
  };
  std::vector<Arrival> arrivals_;  // unordered mode, arrival order
  std::vector<uint64_t> stale_;
  std::string last_gap_reason_;
};

}  // namespace rayts
