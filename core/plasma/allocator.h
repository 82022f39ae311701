// Allocator: best-fit free-list allocator over an abstract range [0, capacity).
//
// Role: hands out offsets into the plasma shared-memory region. It never
// touches memory; it only does arithmetic on offsets, so it is unit-testable
// without a mapping.
// Policy: every block is 64-byte aligned and sized in 64-byte units (a 0-byte
// request takes one unit, so every live allocation has a distinct offset).
// Allocate picks the smallest free block that fits, lowest offset on ties, so
// low offsets (pre-faulted first) are reused first. Free coalesces with both
// neighbours. Allocate and Free are O(log n) in the number of free blocks.
// Ownership: owned by PlasmaStore.
// Thread safety: none; the owner calls it from one thread.
// Invariants: free blocks never overlap and are never adjacent (always
// coalesced); used() + sum(free block sizes) == capacity(); an offset is
// freed exactly once (a double or unknown Free is a CHECK failure).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include "core/common/status.h"

namespace rayts::plasma {

class Allocator {
 public:
  static constexpr uint64_t kAlignment = 64;

  // capacity is rounded down to a multiple of kAlignment.
  explicit Allocator(uint64_t capacity);

  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // Returns a kAlignment-aligned offset of a block of at least `size` bytes,
  // or OutOfMemory if no free block is large enough.
  StatusOr<uint64_t> Allocate(uint64_t size);

  // Returns the block at `offset` (a value Allocate returned) to the free list.
  void Free(uint64_t offset);

  // Size actually reserved for a request of `size` bytes (rounded up).
  static uint64_t RoundUp(uint64_t size);

  // Reserved size of the live block at `offset`; 0 if none.
  uint64_t BlockSize(uint64_t offset) const;

  uint64_t used() const { return used_; }
  // One past the highest byte ever handed out (never decreases): the store
  // commits memory ahead of it (ShmRegion::AdvanceHighWater).
  uint64_t high_water() const { return high_water_; }
  uint64_t capacity() const { return capacity_; }
  uint64_t largest_free_block() const;
  size_t num_free_blocks() const { return free_by_offset_.size(); }
  size_t num_allocations() const { return allocated_.size(); }

 private:
  void InsertFree(uint64_t offset, uint64_t size);
  void EraseFree(std::map<uint64_t, uint64_t>::iterator it);

  const uint64_t capacity_;
  uint64_t used_ = 0;
  uint64_t high_water_ = 0;
  std::map<uint64_t, uint64_t> free_by_offset_;         // offset -> size
  std::set<std::pair<uint64_t, uint64_t>> free_by_size_;  // (size, offset)
  std::unordered_map<uint64_t, uint64_t> allocated_;    // offset -> size
};

}  // namespace rayts::plasma
