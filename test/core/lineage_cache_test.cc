#include "core/core_worker/lineage_cache.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace rayts {
namespace {

std::shared_ptr<const void> Spec(int v) { return std::make_shared<const int>(v); }

TEST(LineageCacheTest, KeptWhileAReturnIsReferenced) {
  LineageCache c(1 << 20);
  TaskID t = TaskID::FromRandom();
  c.Add(t, Spec(1), 100, /*live_returns=*/2, {}, 3);
  ASSERT_TRUE(c.Has(t));
  EXPECT_EQ(c.bytes(), 100u);
  c.ReturnReleased(t);
  EXPECT_TRUE(c.Has(t));
  c.ReturnReleased(t);
  EXPECT_FALSE(c.Has(t));
  EXPECT_EQ(c.bytes(), 0u);
}

TEST(LineageCacheTest, TaskWithoutLiveReturnsIsNotKept) {
  LineageCache c(1 << 20);
  TaskID t = TaskID::FromRandom();
  c.Add(t, Spec(1), 100, 0, {}, 3);
  EXPECT_FALSE(c.Has(t));
  EXPECT_EQ(c.bytes(), 0u);
}

TEST(LineageCacheTest, ParentPinnedByDependentLineageAfterItsReturnIsFreed) {
  LineageCache c(1 << 20);
  TaskID a = TaskID::FromRandom(), b = TaskID::FromRandom(), d = TaskID::FromRandom();
  c.Add(a, Spec(1), 10, 1, {}, 3);
  c.Add(b, Spec(2), 10, 1, {a}, 3);
  c.Add(d, Spec(3), 10, 1, {b}, 3);
  // a's and b's objects are freed: their lineage stays for d's recomputation.
  c.ReturnReleased(a);
  c.ReturnReleased(b);
  EXPECT_TRUE(c.Has(a));
  EXPECT_TRUE(c.Has(b));
  EXPECT_EQ(c.Find(a)->dependents, 1);
  // d's object is freed: the whole chain goes, child first, then parents.
  c.ReturnReleased(d);
  EXPECT_FALSE(c.Has(d));
  EXPECT_FALSE(c.Has(b));
  EXPECT_FALSE(c.Has(a));
  EXPECT_EQ(c.bytes(), 0u);
  EXPECT_EQ(c.size(), 0u);
}

TEST(LineageCacheTest, RevivedReturnPinsAgain) {
  LineageCache c(1 << 20);
  TaskID a = TaskID::FromRandom(), b = TaskID::FromRandom();
  c.Add(a, Spec(1), 10, 1, {}, 3);
  c.Add(b, Spec(2), 10, 1, {a}, 3);
  c.ReturnReleased(a);
  c.ReturnRevived(a);  // recreated for a recovery
  c.ReturnReleased(b);
  EXPECT_FALSE(c.Has(b));
  EXPECT_TRUE(c.Has(a));  // its revived return still holds it
  c.ReturnReleased(a);
  EXPECT_FALSE(c.Has(a));
}

TEST(LineageCacheTest, EvictsOldestPastTheByteBound) {
  LineageCache c(250);
  std::vector<TaskID> ts;
  for (int i = 0; i < 5; i++) {
    ts.push_back(TaskID::FromRandom());
    c.Add(ts.back(), Spec(i), 100, 1, {}, 3);
    EXPECT_LE(c.bytes(), 250u);
  }
  // Only the two newest fit.
  EXPECT_FALSE(c.Has(ts[0]));
  EXPECT_FALSE(c.Has(ts[1]));
  EXPECT_FALSE(c.Has(ts[2]));
  EXPECT_TRUE(c.Has(ts[3]));
  EXPECT_TRUE(c.Has(ts[4]));
  EXPECT_EQ(c.bytes(), 200u);
  EXPECT_EQ(c.evicted(), 3u);
}

TEST(LineageCacheTest, EvictingAParentLeavesDependentsConsistent) {
  LineageCache c(300);
  TaskID a = TaskID::FromRandom(), b = TaskID::FromRandom(), d = TaskID::FromRandom(), e = TaskID::FromRandom();
  c.Add(a, Spec(1), 100, 1, {}, 3);
  c.Add(b, Spec(2), 100, 1, {a}, 3);
  c.Add(d, Spec(3), 100, 1, {b}, 3);
  c.Add(e, Spec(4), 100, 1, {}, 3);  // over the bound: a (oldest) goes though b depends on it
  EXPECT_FALSE(c.Has(a));
  EXPECT_TRUE(c.Has(b));
  EXPECT_EQ(c.bytes(), 300u);
  // b's chain can still be dropped normally afterwards.
  c.ReturnReleased(b);
  EXPECT_TRUE(c.Has(b));  // pinned by d
  c.ReturnReleased(d);
  EXPECT_FALSE(c.Has(d));
  EXPECT_FALSE(c.Has(b));
  EXPECT_EQ(c.bytes(), 100u);
}

TEST(LineageCacheTest, EntryLargerThanTheBoundIsNotKept) {
  LineageCache c(50);
  TaskID t = TaskID::FromRandom();
  c.Add(t, Spec(1), 100, 1, {}, 3);
  EXPECT_FALSE(c.Has(t));
  EXPECT_EQ(c.bytes(), 0u);
}

TEST(LineageCacheTest, ShrinkingTheBoundEvicts) {
  LineageCache c(1000);
  TaskID a = TaskID::FromRandom(), b = TaskID::FromRandom();
  c.Add(a, Spec(1), 100, 1, {}, 3);
  c.Add(b, Spec(2), 100, 1, {}, 3);
  c.set_max_bytes(150);
  EXPECT_FALSE(c.Has(a));
  EXPECT_TRUE(c.Has(b));
}

TEST(LineageCacheTest, ReAddOfAKeptTaskKeepsItsLinks) {
  LineageCache c(1 << 20);
  TaskID a = TaskID::FromRandom(), b = TaskID::FromRandom();
  c.Add(a, Spec(1), 10, 1, {}, 3);
  c.Add(b, Spec(2), 10, 1, {a}, 3);
  c.ReturnReleased(a);
  c.Add(b, Spec(2), 10, 1, {a}, 2);  // b re-ran (a recovery): nothing changes
  EXPECT_TRUE(c.Has(a));
  EXPECT_EQ(c.Find(a)->dependents, 1);
  EXPECT_EQ(c.Find(b)->reconstructions_left, 3);
}

}  // namespace
}  // namespace rayts
