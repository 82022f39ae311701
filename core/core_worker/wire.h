// Wire helpers shared by the CoreWorker's components: id and byte vectors
// to and from FlatBuffers, the return-object builder, the scheduling key of a
// task class, and the submitters' tuning constants.
// Thread safety: pure functions and constants.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/common/id.h"
#include "core/core_worker/task_types.h"
#include "core/protocol/frame_codec.h"

namespace rayts {
namespace wire {
inline constexpr size_t kMaxInflightPerLease = 256;
// Tasks whose service time is below this are pipelined, up to
// kMaxInflightPerLease deep and at most kPipelineBudgetUs of work deep.
inline constexpr double kPipelineBelowUs = 2000;
// The work a pipelined lease holds queued on its worker (depth x the key's
// service time): a lease past kLeaseMaxHold goes back once that drains, so
// another key waits at most about this much beyond the hold (256 x 2 ms
// tasks held it 512 ms more; now 25 x 2 ms). Tasks of 200 us and less still
// pipeline the full 256.
inline constexpr double kPipelineBudgetUs = 50000;
// The window of a key's mean service time (NormalTaskSubmitter: replies
// older than this weigh 1/e).
inline constexpr std::chrono::duration<double> kServiceWindow = std::chrono::milliseconds(100);
inline constexpr auto kLeaseIdleReturn = std::chrono::milliseconds(50);
// A lease older than this gets no new tasks and goes back to the node once
// its in-flight tasks answer, even with tasks still queued (the key asks for
// a new one): the node can then give the worker to another scheduling key
// that waits (Ray: worker_lease_timeout_milliseconds, 500 ms).
inline constexpr auto kLeaseMaxHold = std::chrono::milliseconds(500);
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
  if (c.scheduling.strategy != 0) {
    k += "|s" + std::to_string(c.scheduling.strategy) + c.scheduling.node.Hex() + (c.scheduling.soft ? "s" : "h");
  }
  return std::hash<std::string>{}(k);
}

inline flatbuffers::Offset<proto::ReturnObject> BuildReturn(Fbb& fbb, const ObjectID& id, const ReturnValue& v,
                                                           const std::vector<NestedRefIn>* nested = nullptr) {
  auto oid = IdBytes(fbb, id);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> data;
  if (v.data) data = Bytes(fbb, reinterpret_cast<const uint8_t*>(v.data->data()), v.data->size());
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> node;
  if (v.in_plasma && !v.node.IsNil()) node = IdBytes(fbb, v.node);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> copies;
  if (v.in_plasma && !v.copies.empty()) copies = Bytes(fbb, reinterpret_cast<const uint8_t*>(v.copies.data()), v.copies.size());
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
  if (!node.IsNull()) b.add_node_id(node);
  if (!copies.IsNull()) b.add_copies(copies);
  return b.Finish();
}
}  // namespace wire

}  // namespace rayts
