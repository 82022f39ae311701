// PullManager: a node's pulls of objects it lacks from the node servers of
// other nodes (after Ray's PullManager / ObjectBufferPool): admission, chunk
// assembly and pull bookkeeping, with no sockets or timers of its own.
//
// Role: Pull(id, sources, size, priority, bound) asks for an object held by
// the nodes `sources` (the first is tried first); a second Pull of an object
// already being pulled (or queued) joins it (one transfer, every waiter
// answered; a queued pull takes the higher priority of the two).
// Admission: a pull starts when it fits: the bytes of the pulls under way
// plus its size stay within Options::max_bytes_pulling (one pull always may
// start when none is under way) and the store can create the object
// (Hooks::create). Otherwise it is queued; queued pulls are admitted
// highest priority first (get, then wait, then task argument), in arrival
// order within a priority, strictly (a pull that does not fit holds back
// the ones behind it), whenever room may have appeared: OnRoom() (the
// store freed memory or an object became evictable), or a pull ended. Each
// waiter of a queued pull waits at most its `bound`, then fails with
// OutOfMemory naming the object (the store's full-store error). A pull
// bigger than the whole store (Options::store_bytes) fails at once.
// Transfer: chunks of Options::chunk_bytes (Ray: 5 MiB) are requested while
// the bytes requested and not yet received stay within
// Options::max_bytes_in_flight over all pulls; each ObjectChunk is copied
// into the created buffer at its offset; when every byte is in, the object
// is sealed (Hooks::seal) and every waiter is answered OK.
// Sources: a failed chunk, a chunk that disagrees with its request, an
// unreachable node or a lost link (OnNodeGone) fails that source only: the
// pull goes on from the next source, keeping the chunks already received
// (copies of an object are identical) and asking the next source for the
// ones that were outstanding. When every source has failed, the object is
// aborted (Hooks::abort) and its waiters get the last source's error.
// Ownership: owned by the NodeServer; the buffers belong to the plasma store.
// Thread safety: none; the node server calls every method on its io thread,
// and the hooks, the Hooks::after callbacks and the Done callbacks run
// there (hooks and Done synchronously inside the calls).
// Invariants: an object has at most one pull (under way or queued); a pull
// ends exactly once (sealed or aborted) and each waiter is answered once;
// bytes_in_flight() is the sum of the requested, unanswered chunks;
// bytes_pulling() the sum of the sizes of the pulls under way.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/common/id.h"
#include "core/common/status.h"

namespace rayts::raylet {

// Admission order of queued pulls (Ray's get > wait > task arguments); the
// values are PlasmaGet.pull_priority's.
enum class PullPriority : uint8_t { kGet = 0, kWait = 1, kTaskArgument = 2 };

class PullManager {
 public:
  // How long a queued pull waits for room when its caller names no bound.
  static constexpr std::chrono::milliseconds kDefaultQueueBound{30000};

  struct Options {
    uint64_t chunk_bytes = 5ull << 20;            // Ray's object_manager_default_chunk_size
    uint64_t max_bytes_in_flight = 256ull << 20;  // over all pulls of this node
    uint64_t max_bytes_pulling = 0;  // sizes of the pulls under way (0: only the store bounds them)
    uint64_t store_bytes = 0;        // the store's capacity: a bigger pull fails at once (0: unknown)
  };
  struct Hooks {
    // Create `id` of `size` bytes in this node's store (unpinned: a secondary
    // copy); the address to write it at, or why not (OutOfMemory: the pull
    // is queued until room appears).
    std::function<StatusOr<uint8_t*>(const ObjectID& id, uint64_t size)> create;
    std::function<Status(const ObjectID& id)> seal;
    std::function<void(const ObjectID& id)> abort;
    // Send ObjectChunkRequest to node `from`; false: that node cannot be
    // reached (the next source is tried).
    std::function<bool(const NodeID& from, uint64_t request_id, const ObjectID& id, uint64_t offset, uint64_t length)>
        request_chunk;
    // Run `fn` once, `delay` from now, on the same thread (a queued pull's
    // bound). The PullManager may be gone by then: fn checks.
    std::function<void(std::chrono::milliseconds delay, std::function<void()> fn)> after;
  };
  using Done = std::function<void(const Status&)>;
  enum class Outcome { kStarted, kJoined, kQueued, kFailed };  // kFailed: done was called
  struct Stats {
    uint64_t started = 0;   // transfers begun
    uint64_t merged = 0;    // pulls that joined a transfer already under way (or queued)
    uint64_t queued = 0;    // pulls that waited for room before they started
    uint64_t completed = 0;
    uint64_t failed = 0;
    uint64_t retried = 0;   // a source failed and the next one was asked
    uint64_t chunks = 0;    // chunks received
    uint64_t bytes = 0;     // bytes received
  };

  PullManager(Options opts, Hooks hooks);

  Outcome Pull(const ObjectID& id, std::vector<NodeID> sources, uint64_t size, PullPriority priority,
               std::chrono::milliseconds bound, Done done);
  Outcome Pull(const ObjectID& id, const NodeID& from, uint64_t size, Done done) {
    return Pull(id, std::vector<NodeID>{from}, size, PullPriority::kGet, kDefaultQueueBound, std::move(done));
  }
  // An ObjectChunk arrived (code != 0: `why`).
  void OnChunk(uint64_t request_id, const Status& why, uint64_t total_size, uint64_t offset, const uint8_t* data,
               size_t n);
  // The link to `node` closed: its pulls go on from their next source.
  void OnNodeGone(const NodeID& node, const Status& why);
  // The store may have room now (memory freed, an object became evictable):
  // queued pulls are admitted while they fit.
  void OnRoom();

  bool Pulling(const ObjectID& id) const { return pulls_.count(id) != 0 || queued_.count(id) != 0; }
  bool Queued(const ObjectID& id) const { return queued_.count(id) != 0; }
  size_t num_queued() const { return queued_.size(); }
  uint64_t bytes_in_flight() const { return in_flight_; }
  uint64_t bytes_pulling() const { return pulling_; }
  const Stats& stats() const { return stats_; }

 private:
  struct Waiter {
    uint64_t ticket = 0;
    Done done;
  };
  struct Pull_ {
    std::vector<NodeID> sources;
    size_t source = 0;  // the one asked now
    uint64_t size = 0;
    uint8_t* buf = nullptr;
    uint64_t next_offset = 0;  // first byte not requested yet
    std::deque<std::pair<uint64_t, uint64_t>> redo;  // ranges to ask again (a source failed): offset, length
    uint64_t received = 0;
    std::vector<uint64_t> outstanding;  // request ids
    std::vector<Done> waiters;
  };
  struct QueuedPull {
    std::vector<NodeID> sources;
    uint64_t size = 0;
    PullPriority priority = PullPriority::kGet;
    uint64_t seq = 0;
    Status why;  // the create's answer when it was last tried
    std::vector<Waiter> waiters;
  };
  struct Request {
    ObjectID id;
    uint64_t offset = 0, length = 0;
  };
  using QueueKey = std::pair<uint8_t, uint64_t>;  // priority, arrival

  // Within max_bytes_pulling (or nothing under way).
  bool WithinBound(uint64_t size) const;
  void Enqueue(const ObjectID& id, std::vector<NodeID> sources, uint64_t size, PullPriority priority,
               std::chrono::milliseconds bound, Status why, Done done);
  void Expire(const ObjectID& id, uint64_t ticket, std::chrono::milliseconds bound);
  void Start(const ObjectID& id, std::vector<NodeID> sources, uint64_t size, uint8_t* buf, std::vector<Done> waiters);
  // Admits queued pulls and requests chunks until neither can go further.
  void Settle();
  void Admit();
  void Pump();
  // The current source of `id` failed: the next one is asked, or the pull fails.
  void SourceFailed(const ObjectID& id, const Status& why);
  void Finish(const ObjectID& id, const Status& s);

  Options opts_;
  Hooks hooks_;
  std::unordered_map<ObjectID, Pull_, IdHash> pulls_;
  std::deque<ObjectID> order_;  // pulls with chunks left to request, oldest first
  std::unordered_map<uint64_t, Request> requests_;
  std::unordered_map<ObjectID, QueuedPull, IdHash> queued_;
  std::map<QueueKey, ObjectID> queue_;  // admission order
  uint64_t next_request_ = 1;
  uint64_t next_seq_ = 1;
  uint64_t next_ticket_ = 1;
  uint64_t in_flight_ = 0;
  uint64_t pulling_ = 0;
  bool settling_ = false, settle_again_ = false;
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // for Hooks::after callbacks
  Stats stats_;
};

}  // namespace rayts::raylet
