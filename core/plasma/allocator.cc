#include "core/plasma/allocator.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <string>

namespace rayts::plasma {

Allocator::Allocator(uint64_t capacity)
    : capacity_(capacity / kAlignment * kAlignment) {
  if (capacity_ > 0) InsertFree(0, capacity_);
}

uint64_t Allocator::RoundUp(uint64_t size) {
  if (size == 0) return kAlignment;
  if (size > std::numeric_limits<uint64_t>::max() - (kAlignment - 1)) {
    return std::numeric_limits<uint64_t>::max() / kAlignment * kAlignment;
  }
  return (size + kAlignment - 1) / kAlignment * kAlignment;
}

StatusOr<uint64_t> Allocator::Allocate(uint64_t size) {
  const uint64_t need = RoundUp(size);
  // Smallest block with size >= need; among equals the lowest offset.
  auto it = free_by_size_.lower_bound({need, 0});
  if (it == free_by_size_.end()) {
    return Status::OutOfMemory("no free block of " + std::to_string(need) +
                               " bytes (largest free block " +
                               std::to_string(largest_free_block()) + ")");
  }
  const uint64_t block_size = it->first;
  const uint64_t offset = it->second;
  EraseFree(free_by_offset_.find(offset));
  if (block_size > need) InsertFree(offset + need, block_size - need);
  allocated_.emplace(offset, need);
  used_ += need;
  high_water_ = std::max(high_water_, offset + need);
  return offset;
}

void Allocator::Free(uint64_t offset) {
  auto a = allocated_.find(offset);
  RAYTS_CHECK(a != allocated_.end());  // double free or foreign offset
  uint64_t start = offset;
  uint64_t size = a->second;
  used_ -= size;
  allocated_.erase(a);

  auto next = free_by_offset_.lower_bound(start);
  if (next != free_by_offset_.begin()) {
    auto prev = std::prev(next);
    RAYTS_CHECK(prev->first + prev->second <= start);
    if (prev->first + prev->second == start) {
      start = prev->first;
      size += prev->second;
      EraseFree(prev);
    }
  }
  if (next != free_by_offset_.end()) {
    RAYTS_CHECK(start + size <= next->first);
    if (start + size == next->first) {
      size += next->second;
      EraseFree(next);
    }
  }
  InsertFree(start, size);
}

uint64_t Allocator::BlockSize(uint64_t offset) const {
  auto it = allocated_.find(offset);
  return it == allocated_.end() ? 0 : it->second;
}

uint64_t Allocator::largest_free_block() const {
  return free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
}

void Allocator::InsertFree(uint64_t offset, uint64_t size) {
  free_by_offset_.emplace(offset, size);
  free_by_size_.emplace(size, offset);
}

void Allocator::EraseFree(std::map<uint64_t, uint64_t>::iterator it) {
  free_by_size_.erase({it->second, it->first});
  free_by_offset_.erase(it);
}

}  // namespace rayts::plasma
