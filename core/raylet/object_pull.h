// PullManager: a node's pulls of objects it lacks from the node servers of
// other nodes (after Ray's PullManager / ObjectBufferPool): chunk assembly
// and pull bookkeeping, with no sockets of its own.
//
// Role: Pull(id, from, size) asks for an object held by node `from`; a
// second Pull of an object already being pulled joins it (one transfer,
// every waiter answered). A new pull creates the object in this node's
// store at once (Hooks::create: fails, e.g. ObjectStoreFull naming the
// object, when it does not fit), then requests it in chunks of
// Options::chunk_bytes (Ray: 5 MiB) while the bytes requested and not yet
// received stay within Options::max_bytes_in_flight over all pulls. Each
// ObjectChunk is copied into the created buffer at its offset; when every
// byte is in, the object is sealed (Hooks::seal) and every waiter of it is
// answered OK. A failed chunk, a size that disagrees or a lost link
// (OnNodeGone) aborts the object (Hooks::abort) and answers its waiters with
// the error.
// Ownership: owned by the NodeServer; the buffers belong to the plasma store.
// Thread safety: none; the node server calls every method on its io thread,
// and the hooks and Done callbacks run there, synchronously.
// Invariants: an object has at most one pull; a pull ends exactly once
// (sealed or aborted) and its waiters are answered once; bytes_in_flight()
// is the sum of the requested, unanswered chunks.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <unordered_map>
#include <vector>

#include "core/common/id.h"
#include "core/common/status.h"

namespace rayts::raylet {

class PullManager {
 public:
  struct Options {
    uint64_t chunk_bytes = 5ull << 20;          // Ray's object_manager_default_chunk_size
    uint64_t max_bytes_in_flight = 256ull << 20;  // over all pulls of this node
  };
  struct Hooks {
    // Create `id` of `size` bytes in this node's store (unpinned: a secondary
    // copy); the address to write it at, or why not.
    std::function<StatusOr<uint8_t*>(const ObjectID& id, uint64_t size)> create;
    std::function<Status(const ObjectID& id)> seal;
    std::function<void(const ObjectID& id)> abort;
    // Send ObjectChunkRequest to node `from`; false: that node cannot be
    // reached (the pull fails).
    std::function<bool(const NodeID& from, uint64_t request_id, const ObjectID& id, uint64_t offset, uint64_t length)>
        request_chunk;
  };
  using Done = std::function<void(const Status&)>;
  struct Stats {
    uint64_t started = 0;   // transfers begun
    uint64_t merged = 0;    // pulls that joined a transfer already under way
    uint64_t completed = 0;
    uint64_t failed = 0;
    uint64_t chunks = 0;    // chunks received
    uint64_t bytes = 0;     // bytes received
  };

  PullManager(Options opts, Hooks hooks);

  // true: a transfer started for this call; false: it joined one (or failed
  // at once: `done` has been called).
  bool Pull(const ObjectID& id, const NodeID& from, uint64_t size, Done done);
  // An ObjectChunk arrived (code != 0: `why`).
  void OnChunk(uint64_t request_id, const Status& why, uint64_t total_size, uint64_t offset, const uint8_t* data,
               size_t n);
  // The link to `node` closed: its pulls fail.
  void OnNodeGone(const NodeID& node, const Status& why);

  bool Pulling(const ObjectID& id) const { return pulls_.count(id) != 0; }
  uint64_t bytes_in_flight() const { return in_flight_; }
  const Stats& stats() const { return stats_; }

 private:
  struct Pull_ {
    NodeID from;
    uint64_t size = 0;
    uint8_t* buf = nullptr;
    uint64_t next_offset = 0;  // first byte not requested yet
    uint64_t received = 0;
    std::vector<uint64_t> outstanding;  // request ids
    std::vector<Done> waiters;
  };
  struct Request {
    ObjectID id;
    uint64_t offset = 0, length = 0;
  };

  void Pump();
  void Finish(const ObjectID& id, const Status& s);

  Options opts_;
  Hooks hooks_;
  std::unordered_map<ObjectID, Pull_, IdHash> pulls_;
  std::deque<ObjectID> order_;  // pulls with chunks left to request, oldest first
  std::unordered_map<uint64_t, Request> requests_;
  uint64_t next_request_ = 1;
  uint64_t in_flight_ = 0;
  Stats stats_;
};

}  // namespace rayts::raylet
