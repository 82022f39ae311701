// Fixed-size binary identifiers: NodeID, WorkerID, JobID, TaskID, ObjectID.
//
// Layout: an ObjectID is a 16-byte TaskID plus a 4-byte index. Task returns
// use the task's id and count up from 1, so the owner can name the task in
// an object's lineage; ray.put objects use a per-process random "put task"
// id and set the index's top bit.
// Thread safety: plain values; FromRandom() is safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <string_view>

namespace rayts {

template <size_t N>
struct BaseId {
  static constexpr size_t kSize = N;
  std::array<uint8_t, N> bytes{};

  static BaseId FromBinary(std::string_view b) {
    BaseId id;
    if (b.size() == N) std::memcpy(id.bytes.data(), b.data(), N);
    return id;
  }
  static BaseId FromBytes(const uint8_t* p) {
    BaseId id;
    std::memcpy(id.bytes.data(), p, N);
    return id;
  }
  static BaseId FromRandom() {
    thread_local std::mt19937_64 rng{std::random_device{}() ^
                                     (uint64_t)std::hash<const void*>{}(&rng)};
    BaseId id;
    for (size_t i = 0; i < N; i += 8) {
      uint64_t r = rng();
      std::memcpy(id.bytes.data() + i, &r, std::min<size_t>(8, N - i));
    }
    return id;
  }
  static BaseId Nil() { return BaseId(); }
  bool IsNil() const {
    for (auto b : bytes) if (b) return false;
    return true;
  }
  std::string Binary() const { return std::string(reinterpret_cast<const char*>(bytes.data()), N); }
  std::string Hex() const {
    static const char* d = "0123456789abcdef";
    std::string s(2 * N, '0');
    for (size_t i = 0; i < N; i++) { s[2 * i] = d[bytes[i] >> 4]; s[2 * i + 1] = d[bytes[i] & 15]; }
    return s;
  }
  const uint8_t* data() const { return bytes.data(); }
  bool operator==(const BaseId& o) const { return bytes == o.bytes; }
  bool operator!=(const BaseId& o) const { return bytes != o.bytes; }
  bool operator<(const BaseId& o) const { return bytes < o.bytes; }
  size_t Hash() const noexcept {
    // Ids share long prefixes (one task id per process, counters, return
    // indexes): mix every byte, not just the ends.
    uint64_t h = 0x9E3779B97F4A7C15ull ^ N;
    size_t i = 0;
    for (; i + 8 <= N; i += 8) {
      uint64_t w;
      std::memcpy(&w, bytes.data() + i, 8);
      h = (h ^ w) * 0xff51afd7ed558ccdull;
      h ^= h >> 32;
    }
    for (; i < N; i++) h = (h ^ bytes[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return static_cast<size_t>(h);
  }
};

struct NodeIdTag {};
struct WorkerIdTag {};
using NodeID = BaseId<16>;
using WorkerID = BaseId<16>;
using TaskID = BaseId<16>;
using ObjectID = BaseId<20>;
using JobID = uint32_t;

constexpr uint32_t kPutIndexBit = 0x80000000u;

inline ObjectID ObjectIdFor(const TaskID& task, uint32_t index) {
  ObjectID id;
  std::memcpy(id.bytes.data(), task.data(), 16);
  std::memcpy(id.bytes.data() + 16, &index, 4);
  return id;
}
inline TaskID TaskIdOf(const ObjectID& obj) {
  return TaskID::FromBytes(obj.data());
}
inline uint32_t ObjectIndexOf(const ObjectID& obj) {
  uint32_t i;
  std::memcpy(&i, obj.data() + 16, 4);
  return i;
}
inline bool IsPutObject(const ObjectID& obj) { return (ObjectIndexOf(obj) & kPutIndexBit) != 0; }

// noexcept, so std::unordered_map does not store each node's hash beside it
// (8 bytes per entry of every id-keyed table: a million queued tasks have
// entries in three).
struct IdHash {
  template <size_t N>
  size_t operator()(const BaseId<N>& id) const noexcept { return id.Hash(); }
};

}  // namespace rayts
