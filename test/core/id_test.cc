// Regression: IdHash hashed only the first and last 8 bytes, so every return
// id of one process (same task-id prefix, same return index) collided and
// the memory store degraded to a linked list (task throughput fell 5x/round).
#include <gtest/gtest.h>

#include <unordered_set>

#include "core/common/id.h"

namespace rayts {

TEST(IdHash, ReturnIdsOfOneProcessDoNotCollide) {
  TaskID prefix = TaskID::FromRandom();
  std::unordered_set<size_t> hashes;
  for (uint64_t counter = 1; counter <= 10000; counter++) {
    TaskID t = prefix;
    std::memcpy(t.bytes.data() + 8, &counter, 8);
    hashes.insert(ObjectIdFor(t, 1).Hash());
  }
  EXPECT_EQ(hashes.size(), 10000u);
}

TEST(Id, ObjectIdEncodesTaskAndIndex) {
  TaskID t = TaskID::FromRandom();
  ObjectID o = ObjectIdFor(t, 7);
  EXPECT_EQ(TaskIdOf(o), t);
  EXPECT_EQ(ObjectIndexOf(o), 7u);
  EXPECT_FALSE(IsPutObject(o));
  EXPECT_TRUE(IsPutObject(ObjectIdFor(t, kPutIndexBit | 1)));
  EXPECT_EQ(ObjectID::FromBinary(o.Binary()), o);
  EXPECT_EQ(o.Hex().size(), 40u);
}

}  // namespace rayts
