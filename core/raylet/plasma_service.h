// PlasmaService: the node server's side of the plasma protocol: create,
// seal, abort, get (with a timeout), release, delete and (in builds with
// RAYTS_TEST_HOOKS only) the test hook lose, for the client connections of
// this node. A get naming another node (pull_node) for an object missing
// here pulls it first (Hooks::pull).
//
// Role: turns plasma messages (core/protocol/messages.fbs) into PlasmaStore
// calls and answers them on the asking connection. A create that finds a
// copy whose creator is gone (a worker killed after storing a return, whose
// owner re-ran the task) replaces that orphan. A full store or a failed
// restore asks the host to have every process collect garbage.
// Ownership: borrows the store and the io_context (both outlive it); holds
// connections weakly for answers that come later (a get that waits).
// Thread safety: none; the node server calls it on its io thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "core/common/asio.h"

#include "core/plasma/plasma_store.h"
#include "core/protocol/connection.h"
#include "core/raylet/object_pull.h"

namespace rayts::raylet {

class PlasmaService {
 public:
  struct Hooks {
    // True if client `cid` disconnected or its peer hung up (the close may
    // not be processed yet).
    std::function<bool(uint64_t cid)> client_gone;
    // The store is full: ask every process to drop what it no longer uses.
    std::function<void()> store_pressure;
    // The worker id client `cid` registered with (nil if unknown).
    std::function<WorkerID(uint64_t cid)> worker_of;
    // Cluster mode: pull `id` (`size` bytes) from the nodes `sources` (in
    // order) into this node's store, queued up to `bound` behind pulls of
    // higher priority or until it fits, then call done (PullManager; null:
    // no pulls).
    std::function<void(const ObjectID& id, std::vector<NodeID> sources, uint64_t size, PullPriority priority,
                       std::chrono::milliseconds bound, std::function<void(const Status&)> done)>
        pull;
  };

  PlasmaService(asio::io_context& io, plasma::PlasmaStore* store, Hooks hooks)
      : io_(io), store_(store), hooks_(std::move(hooks)) {}

  // Handles `env` if it is a plasma message from client `cid` (answered on
  // `conn`); false for any other message.
  bool Handle(uint64_t cid, const std::shared_ptr<Connection>& conn, const proto::Envelope& env);
  // A client's get timeout as a timer delay: negative is 0, and anything
  // past kMaxGetTimeoutMs (a year, "for ever") is cut to it, so the
  // deadline arithmetic cannot overflow (2^62 ms would).
  static constexpr int64_t kMaxGetTimeoutMs = int64_t{365} * 24 * 3600 * 1000;
  static std::chrono::milliseconds GetTimeout(int64_t ms) {
    return std::chrono::milliseconds(ms < 0 ? 0 : ms > kMaxGetTimeoutMs ? kMaxGetTimeoutMs : ms);
  }
  // The longest a get's pull waits in the PullManager's queue for room
  // (the blocking reader awaits each reply for 30 s, the transfer needs the rest).
  static constexpr std::chrono::milliseconds kPullQueueBound{20000};
  // The process with this worker id is gone: the copies it owned are freed
  // (readers still holding one keep it until they release it). Its refs
  // elsewhere fail with OwnerDiedError; nothing would ever delete them.
  void OwnerGone(const WorkerID& owner);
  size_t owned_objects() const { return owner_of_.size(); }
  // The owner freed `id` (PlasmaDelete, or FreeObjects from another node).
  void Free(const ObjectID& id);

 private:
  void Create(uint64_t cid, Connection& conn, const proto::PlasmaCreate& r);
  void Get(uint64_t cid, const std::shared_ptr<Connection>& conn, const proto::PlasmaGet& r);

  asio::io_context& io_;
  plasma::PlasmaStore* store_;
  Hooks hooks_;
  // Which worker owns each created object (the creator, or the owner the
  // create named), for OwnerGone. Erased when the owner deletes it.
  std::unordered_map<ObjectID, WorkerID, IdHash> owner_of_;
  std::unordered_map<WorkerID, std::unordered_set<ObjectID, IdHash>, IdHash> owned_;
};

}  // namespace rayts::raylet
