#include "core/plasma/allocator.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

namespace rayts::plasma {
namespace {

constexpr uint64_t kUnit = Allocator::kAlignment;

TEST(AllocatorTest, OffsetsAreAlignedAndSizesRoundedUp) {
  Allocator a(kUnit * 100);
  uint64_t expected_used = 0;
  for (uint64_t size : {1ull, 63ull, 64ull, 65ull, 100ull, 1000ull}) {
    auto off = a.Allocate(size);
    ASSERT_TRUE(off.ok()) << off.status().ToString();
    EXPECT_EQ(*off % kUnit, 0u);
    expected_used += (size + kUnit - 1) / kUnit * kUnit;
    EXPECT_EQ(a.BlockSize(*off), (size + kUnit - 1) / kUnit * kUnit);
  }
  EXPECT_EQ(a.used(), expected_used);
}

TEST(AllocatorTest, ZeroSizeTakesOneUnitWithDistinctOffsets) {
  Allocator a(kUnit * 4);
  auto x = a.Allocate(0);
  auto y = a.Allocate(0);
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_NE(*x, *y);
  EXPECT_EQ(a.used(), 2 * kUnit);
}

TEST(AllocatorTest, CapacityRoundsDownToAlignment) {
  Allocator a(kUnit * 10 + 17);
  EXPECT_EQ(a.capacity(), kUnit * 10);
  EXPECT_EQ(a.largest_free_block(), kUnit * 10);
  Allocator empty(17);
  EXPECT_EQ(empty.capacity(), 0u);
  EXPECT_EQ(empty.Allocate(1).status().code(), StatusCode::kOutOfMemory);
}

TEST(AllocatorTest, BestFitPicksSmallestHole) {
  Allocator a(kUnit * 100);
  auto big = a.Allocate(kUnit * 10);    // [0, 10)
  auto sep1 = a.Allocate(kUnit);        // [10, 11)
  auto small = a.Allocate(kUnit * 5);   // [11, 16)
  auto sep2 = a.Allocate(kUnit);        // [16, 17)
  ASSERT_TRUE(big.ok() && sep1.ok() && small.ok() && sep2.ok());
  a.Free(*big);
  a.Free(*small);
  // Holes: 10 units at 0, 5 units at 11, 83 units at 17. 4 units -> the 5.
  auto got = a.Allocate(kUnit * 4);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, kUnit * 11);
  // 6 units do not fit the 1-unit leftover; the 10-unit hole is next best.
  got = a.Allocate(kUnit * 6);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, 0u);
}

TEST(AllocatorTest, EqualHolesTieBreakOnLowestOffset) {
  Allocator a(kUnit * 10);
  std::vector<uint64_t> offs;
  for (int i = 0; i < 10; i++) offs.push_back(*a.Allocate(kUnit));
  a.Free(offs[7]);
  a.Free(offs[2]);
  a.Free(offs[5]);
  EXPECT_EQ(*a.Allocate(kUnit), offs[2]);
  EXPECT_EQ(*a.Allocate(kUnit), offs[5]);
  EXPECT_EQ(*a.Allocate(kUnit), offs[7]);
}

TEST(AllocatorTest, FreeCoalescesBothNeighbours) {
  Allocator a(kUnit * 30);
  auto x = a.Allocate(kUnit * 10);
  auto y = a.Allocate(kUnit * 10);
  auto z = a.Allocate(kUnit * 10);
  ASSERT_TRUE(x.ok() && y.ok() && z.ok());
  EXPECT_EQ(a.largest_free_block(), 0u);
  a.Free(*x);
  a.Free(*z);
  EXPECT_EQ(a.num_free_blocks(), 2u);
  EXPECT_EQ(a.largest_free_block(), kUnit * 10);
  a.Free(*y);
  EXPECT_EQ(a.num_free_blocks(), 1u);
  EXPECT_EQ(a.largest_free_block(), a.capacity());
  EXPECT_EQ(a.used(), 0u);
  auto all = a.Allocate(a.capacity());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, 0u);
}

TEST(AllocatorTest, OutOfMemoryWhenNoBlockFits) {
  Allocator a(kUnit * 10);
  auto too_big = a.Allocate(kUnit * 10 + 1);
  EXPECT_EQ(too_big.status().code(), StatusCode::kOutOfMemory);
  // Fragmented: 5 free units total, none contiguous beyond 1.
  std::vector<uint64_t> offs;
  for (int i = 0; i < 10; i++) offs.push_back(*a.Allocate(kUnit));
  for (int i = 0; i < 10; i += 2) a.Free(offs[i]);
  EXPECT_EQ(a.capacity() - a.used(), kUnit * 5);
  auto frag = a.Allocate(kUnit * 2);
  EXPECT_EQ(frag.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(frag.status().message().find("128"), std::string::npos);
  // Huge sizes must not overflow the rounding.
  EXPECT_EQ(a.Allocate(~0ull).status().code(), StatusCode::kOutOfMemory);
}

TEST(AllocatorTest, RandomAllocFreeKeepsAccountingConsistent) {
  const uint64_t cap = kUnit * 4096;
  Allocator a(cap);
  std::mt19937_64 rng(42);
  std::map<uint64_t, uint64_t> live;  // offset -> reserved size
  uint64_t used = 0;
  for (int step = 0; step < 20000; step++) {
    if (live.empty() || rng() % 100 < 55) {
      uint64_t size = rng() % (kUnit * 64) + (rng() % 8 == 0 ? 0 : 1);
      auto off = a.Allocate(size);
      if (!off.ok()) {
        EXPECT_EQ(off.status().code(), StatusCode::kOutOfMemory);
        EXPECT_LT(a.largest_free_block(), Allocator::RoundUp(size));
        continue;
      }
      EXPECT_EQ(*off % kUnit, 0u);
      uint64_t reserved = Allocator::RoundUp(size);
      EXPECT_LE(*off + reserved, cap);
      // No overlap with the neighbours.
      auto next = live.lower_bound(*off);
      if (next != live.end()) {
        EXPECT_LE(*off + reserved, next->first);
      }
      if (next != live.begin()) {
        auto prev = std::prev(next);
        EXPECT_LE(prev->first + prev->second, *off);
      }
      live[*off] = reserved;
      used += reserved;
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      a.Free(it->first);
      used -= it->second;
      live.erase(it);
    }
    ASSERT_EQ(a.used(), used);
    ASSERT_EQ(a.num_allocations(), live.size());
  }
  for (auto& [off, size] : live) a.Free(off);
  EXPECT_EQ(a.used(), 0u);
  EXPECT_EQ(a.num_free_blocks(), 1u);
  EXPECT_EQ(a.largest_free_block(), cap);
}

TEST(AllocatorTest, HighWaterIsTheHighestEndHandedOutAndNeverFalls) {
  Allocator a(kUnit * 16);
  EXPECT_EQ(a.high_water(), 0u);
  auto x = a.Allocate(kUnit * 2);
  auto y = a.Allocate(1);
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_EQ(a.high_water(), kUnit * 3);
  a.Free(*y);
  a.Free(*x);
  EXPECT_EQ(a.high_water(), kUnit * 3);  // freed memory stays committed
  auto z = a.Allocate(kUnit);            // reuses low offsets: the mark does not move
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(*z, 0u);
  EXPECT_EQ(a.high_water(), kUnit * 3);
}

TEST(AllocatorDeathTest, DoubleFreeIsACheckFailure) {
  Allocator a(kUnit * 4);
  auto x = a.Allocate(1);
  ASSERT_TRUE(x.ok());
  a.Free(*x);
  EXPECT_DEATH(a.Free(*x), "CHECK failed");
}

}  // namespace
}  // namespace rayts::plasma
