// Internal to core/core_worker/: wire helpers and the submitter's state
// records, shared by core_worker.cc (objects, control plane),
// task_submission.cc (owner side), actor_submission.cc (actors; their own
// state is ActorState, actor_state.h) and task_execution.cc (executor side).
// Thread safety: every record is guarded by CoreWorker::mu_.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/core_worker/actor_call_queue.h"
#include "core/core_worker/actor_scheduling_queue.h"
#include "core/core_worker/actor_state.h"
#include "core/core_worker/core_worker.h"

namespace rayts {
namespace wire {
inline constexpr size_t kMaxInflightPerLease = 64;
// Tasks whose round trip is below this are pipelined kMaxInflightPerLease deep.
inline constexpr double kPipelineBelowUs = 2000;
inline constexpr auto kLeaseIdleReturn = std::chrono::milliseconds(50);
// An actor runs a caller's calls in order; a missing number (the caller died
// between two sends) is waited for this long, then skipped.
inline constexpr auto kActorCallGapWait = std::chrono::seconds(10);

using Fbb = flatbuffers::FlatBufferBuilder;

inline flatbuffers::Offset<flatbuffers::Vector<uint8_t>> Bytes(Fbb& fbb, const uint8_t* p, size_t n) {
  return fbb.CreateVector(p, n);
}
template <size_t N>
inline flatbuffers::Offset<flatbuffers::Vector<uint8_t>> IdBytes(Fbb& fbb, const BaseId<N>& id) {
  return fbb.CreateVector(id.data(), N);
}
template <typename Id>
Id IdFrom(const flatbuffers::Vector<uint8_t>* v) {
  if (!v || v->size() != Id::kSize) return Id::Nil();
  return Id::FromBytes(v->data());
}
inline std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

// The record `m` holds under `k` (a map of unique_ptr), or nullptr.
template <typename Map, typename Key>
auto FindPtr(Map& m, const Key& k) -> decltype(m.begin()->second.get()) {
  auto it = m.find(k);
  return it == m.end() ? nullptr : it->second.get();
}

inline uint64_t KeyOf(const TaskClass& c) {
  std::string k = c.function.hash;
  for (auto& [name, amount] : c.resources) {
    k += '|';
    k += name;
    k += '=';
    k += std::to_string(amount);
  }
  return std::hash<std::string>{}(k);
}

inline flatbuffers::Offset<proto::ReturnObject> BuildReturn(Fbb& fbb, const ObjectID& id, const ReturnValue& v,
                                                           const std::vector<NestedRefIn>* nested = nullptr) {
  auto oid = IdBytes(fbb, id);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> data;
  if (v.data) data = Bytes(fbb, reinterpret_cast<const uint8_t*>(v.data->data()), v.data->size());
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<proto::NestedRef>>> nv;
  if (nested && !nested->empty()) {
    std::vector<flatbuffers::Offset<proto::NestedRef>> items;
    for (auto& n : *nested) items.push_back(proto::CreateNestedRef(fbb, IdBytes(fbb, n.id), fbb.CreateString(n.owner_address)));
    nv = fbb.CreateVector(items);
  }
  proto::ReturnObjectBuilder b(fbb);
  if (!nv.IsNull()) b.add_nested(nv);
  b.add_object_id(oid);
  if (v.data) b.add_data(data);
  b.add_in_plasma(v.in_plasma);
  b.add_is_error(v.is_error);
  b.add_size(v.size);
  return b.Finish();
}
}  // namespace wire

// Pending::actor_seq of a task that is not in an actor's call queue.
inline constexpr uint64_t kNoActorSeq = ~uint64_t{0};

struct CoreWorker::Pending {
  TaskID task_id;
  SubmitRequest req;
  uint64_t key = 0;
  int retries_left = 0;
  int attempt = 0;
  int unresolved = 0;
  bool cancelled = false;
  std::vector<ObjectID> return_ids;
  std::vector<ObjectID> owned_arg_refs;
  // Refs the task holds besides owned by-ref arguments: borrowed by-ref
  // arguments and refs nested in by-value arguments (RemoveSubmitted at the end).
  std::vector<ObjectID> held_refs;
  std::shared_ptr<Lease> lease;
  std::chrono::steady_clock::time_point pushed_at;
  // Actor method calls: the call's seq in its ActorCallQueue (kNoActorSeq
  // once it left the queue), and its wire numbers of the latest send.
  uint64_t actor_seq = kNoActorSeq;
  uint64_t send_seq = 0;
  uint64_t epoch_start = 0;
};

struct CoreWorker::Lease {
  uint64_t lease_id = 0;
  WorkerID worker_id;
  std::string address;
  uint64_t key = 0;
  std::shared_ptr<Connection> conn;
  std::unordered_set<std::string> sent_functions;
  std::unordered_map<TaskID, std::shared_ptr<Pending>, IdHash> inflight;
  bool returned = false;
  bool loss_handled = false;  // an actor restart already dealt with this worker
  int exit_code = -1;         // >= 0: the worker said it exits with this code
  std::string oom_message;    // non-empty: the node's memory monitor killed the worker (why)
  uint64_t idle_epoch = 0;
  std::unique_ptr<asio::steady_timer> idle_timer;
};

struct CoreWorker::KeyState {
  uint64_t key = 0;
  std::vector<std::pair<std::string, double>> resources;
  std::deque<std::shared_ptr<Pending>> queue;
  std::vector<std::shared_ptr<Lease>> leases;
  int pending_requests = 0;
  uint64_t pending_request_id = 0;
  bool cancel_sent = false;  // CancelLeaseRequest already sent for pending_request_id
  int spare_hint = 1;
  // Round trip (push -> reply) of recent tasks, EWMA in microseconds; < 0
  // until the first reply. Pipelining several tasks per worker only pays
  // for short tasks: a long one would hold the tasks queued behind it.
  double avg_roundtrip_us = -1;
  // An actor's key holds the lease of its worker (one, for the actor's life)
  // and its queued constructor call; the rest of the actor is its
  // ActorState (CoreWorker::actors_, under the same key).
};

// Executor side: one actor caller's order (see task_execution.cc).
struct CoreWorker::CallerOrder {
  explicit CallerOrder(int max_concurrency) : queue(max_concurrency) {}
  ActorSchedulingQueue queue;
  std::weak_ptr<Connection> conn;  // the caller's current connection
  std::unique_ptr<asio::steady_timer> gap_timer;
  bool gap_timer_armed = false;
};

}  // namespace rayts
