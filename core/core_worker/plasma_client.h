// PlasmaClient: this process's blocking client of the node's object store.
//
// Role: the plasma data path of a CoreWorker. It owns the BlockingChannel to
// the node server, does the Register handshake on it (RegisterClient with
// control = false; the reply carries the store memfd), maps the store
// region once and starts faulting it in, and makes the plasma round trips:
// create, seal, get (and a get-and-release probe, Contains), release, and
// the test hook Lose. Every call is one short blocking round trip on the
// calling thread (the node answers at once or within its own bounded wait;
// the channel bounds every wait at 30 s): object create/get need an answer
// before a JS put/get can continue, and never wait on other work. The
// synchronous GCS calls (GcsClient) share the same channel. PlasmaDelete is
// not sent here: the owner queues it on its control connection (ordered with
// the other control frames), built by DeleteFrame.
// Ownership: owns the channel, the mapped region and the GcsClient that
// borrows the channel. The addresses base() .. base() + size() stay valid
// until the client is destroyed, so views into it stay readable. Close()
// lets go of the shared memory at once (ShmRegion::DropShared): the objects
// this process still has pinned (Get without Release) are copied into
// private memory at the same addresses, the rest becomes zero pages, so a
// long-lived host that shuts down and starts again keeps no old store.
// Thread safety: thread-safe through the channel's lock (each call holds it
// for its whole round trip; replies are copied into the caller's storage)
// and pins_mu_ for the pin table. store_ is written once, by Connect,
// before the client is shared with other threads, and only read after that
// (base(), size()); Close() runs when no other thread uses the client.
// Invariants: the store fd received at Connect is owned exactly once (mapped
// or closed); a reply's status code (Create, Seal, Get, Lose) is returned as
// the Status with its message; a closed channel is Disconnected.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/common/id.h"
#include "core/common/status.h"
#include "core/common/thread_annotations.h"
#include "core/gcs/gcs_client.h"
#include "core/plasma/shm_region.h"
#include "core/protocol/blocking_channel.h"

namespace rayts {

// Where a sealed object lies in the mapped store.
struct PlasmaView { uint64_t offset = 0, size = 0; };
// Where a get pulls an object from when it is in plasma on another node
// (node nil: on this node, no pull).
struct PullFrom {
  NodeID node;          // the primary copy's node
  uint64_t size = 0;    // as the owner knows it
  std::string sources;  // other nodes holding a copy (ids concatenated), tried after `node`
  std::string owner;    // the owner's address: the node reports its pulled copy there
};

class PlasmaClient {
 public:
  // What a client tells the node server about itself (RegisterClient).
  struct Registration {
    WorkerID worker_id;
    bool is_driver = true;
    std::string listen_path;  // the client's own CoreWorker socket
    JobID job_id = 0;
  };
  // What the node answers (RegisterReply).
  struct NodeInfo {
    NodeID node_id;
    JobID job_id = 0;
    std::string session_dir;
    std::string auth_token;  // cluster mode: presented on TCP connections
  };

  // The RegisterClient frame: control = false on the plasma channel (done by
  // Connect), true on the client's async control connection.
  static flatbuffers::DetachedBuffer RegisterFrame(const Registration& r, bool control);
  // The owner freed `id` (unpin and delete): for the control connection.
  static flatbuffers::DetachedBuffer DeleteFrame(const ObjectID& id);

  PlasmaClient() = default;
  PlasmaClient(const PlasmaClient&) = delete;
  PlasmaClient& operator=(const PlasmaClient&) = delete;

  // Connects to the node server's socket, registers, maps the store it
  // passes and starts prefaulting it. The node's refusal is its Status.
  StatusOr<NodeInfo> Connect(const std::string& node_socket, const Registration& r);
  // Allocates `size` bytes for `id`; returns its offset in the store. The
  // caller writes, then seals. allow_spill = false: OutOfMemory rather than
  // spill. ObjectExists / ObjectBeingCreated for an id already there.
  // `owner`: the object's owner when it is not this process (nil: this one).
  StatusOr<uint64_t> Create(const ObjectID& id, uint64_t size, bool allow_spill, const WorkerID& owner = WorkerID::Nil());
  Status Seal(const ObjectID& id);
  // Pins a sealed object (waits up to 5 s in the store for one being
  // sealed); Release unpins. ObjectLost when it is not in the store, or the
  // store's code when it is spilled and cannot be restored.
  // pull_from (not nil): the object is on that node; the node server pulls
  // it into this node's store first when it lacks it (pull_size bytes),
  // admitted there by pull_priority (PlasmaGet's: 0 get, 1 wait, 2 task
  // argument) when its store is short of room.
  StatusOr<PlasmaView> Get(const ObjectID& id, const NodeID& pull_from = NodeID::Nil(), uint64_t pull_size = 0,
                           uint8_t pull_priority = 0);
  // The same, naming the other copies and the owner (sent first as
  // ObjectOwner, on this channel, when there is a pull).
  StatusOr<PlasmaView> Get(const ObjectID& id, const PullFrom& from, uint8_t pull_priority = 0);
  // Best effort: a closed channel means the node is gone, and so is the pin.
  void Release(const ObjectID& id);
  // Whether the store has `id` sealed now (no wait; the pin is released).
  // False when it cannot be asked.
  bool Contains(const ObjectID& id);
#ifdef RAYTS_TEST_HOOKS
  // Test hook (builds with RAYTS_TEST_HOOKS only): the store loses its copy of `id` now.
  Status Lose(const ObjectID& id);
#endif
  // Disconnects and drops the shared mapping (see Ownership). Idempotent.
  void Close();
  // Objects pinned by Get and not yet released, with their bytes.
  size_t num_pinned() const;

  // The mapped store, for a holder that must keep base() valid longer than
  // this client (an ArrayBuffer over it).
  std::shared_ptr<plasma::ShmRegion> region() const { return store_; }
  uint8_t* base() const { return store_ ? store_->data() : nullptr; }
  uint64_t size() const { return store_ ? store_->size() : 0; }
  // Typed GCS calls, blocking round trips on this channel.
  gcs::GcsClient& gcs() { return gcs_; }

 private:
  struct Pin {
    uint64_t count = 0;
    PlasmaView view;
  };
  void SendRelease(const ObjectID& id);

  BlockingChannel channel_;
  std::shared_ptr<plasma::ShmRegion> store_;
  mutable Mutex pins_mu_;
  std::unordered_map<ObjectID, Pin, IdHash> pins_ GUARDED_BY(pins_mu_);
  gcs::GcsClient gcs_{&channel_};
};

}  // namespace rayts
