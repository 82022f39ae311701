// IdMap / IdSet against std::unordered_map: the same random operations give
// the same contents; references survive growth; erase while iterating.
#include "core/common/id_map.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <unordered_map>

namespace rayts {
namespace {

ObjectID Oid(uint32_t task, uint32_t index) {
  TaskID t;
  std::memcpy(t.bytes.data(), &task, 4);  // ids share long prefixes, as real ones do
  return ObjectIdFor(t, index);
}

TEST(IdMapTest, MatchesUnorderedMapUnderRandomOperations) {
  IdMap<ObjectID, std::string> m;
  std::unordered_map<ObjectID, std::string, IdHash> ref;
  std::mt19937 rng(7);
  for (int step = 0; step < 200000; step++) {
    ObjectID k = Oid(rng() % 3000, rng() % 3);
    switch (rng() % 4) {
      case 0:
      case 1: {
        auto [it, fresh] = m.try_emplace(k, std::to_string(step));
        auto [rit, rfresh] = ref.try_emplace(k, std::to_string(step));
        ASSERT_EQ(fresh, rfresh);
        ASSERT_EQ(it->second, rit->second);
        break;
      }
      case 2:
        ASSERT_EQ(m.erase(k), ref.erase(k));
        break;
      default: {
        auto it = m.find(k);
        auto rit = ref.find(k);
        ASSERT_EQ(it == m.end(), rit == ref.end());
        if (rit != ref.end()) ASSERT_EQ(it->second, rit->second);
      }
    }
    ASSERT_EQ(m.size(), ref.size());
  }
  size_t seen = 0;
  for (auto& [k, v] : m) {
    ASSERT_EQ(ref.at(k), v);
    seen++;
  }
  EXPECT_EQ(seen, ref.size());
}

TEST(IdMapTest, ReferencesSurviveGrowth) {
  IdMap<TaskID, int> m;
  TaskID first = TaskID::FromRandom();
  int& v = m[first];
  v = 42;
  for (int i = 0; i < 100000; i++) m[TaskID::FromRandom()] = i;
  EXPECT_EQ(&m[first], &v);
  EXPECT_EQ(m.find(first)->second, 42);
}

TEST(IdMapTest, EraseWhileIteratingVisitsEveryElementOnce) {
  IdMap<ObjectID, int> m;
  for (uint32_t i = 0; i < 5000; i++) m[Oid(i, 0)] = static_cast<int>(i);
  long sum = 0;
  for (auto it = m.begin(); it != m.end();) {
    sum += it->second;
    it = (it->second % 2 == 0) ? m.erase(it) : std::next(it);
  }
  EXPECT_EQ(sum, 4999L * 5000 / 2);
  EXPECT_EQ(m.size(), 2500u);
  for (auto it = m.begin(); it != m.end();) it = m.erase(it);
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.begin(), m.end());
  m[Oid(1, 1)] = 1;  // usable again after draining (its memory was released)
  EXPECT_EQ(m.size(), 1u);
}

TEST(IdMapTest, TombstonesDoNotGrowTheTableWithoutBound) {
  IdMap<ObjectID, int> m;
  for (uint32_t round = 0; round < 100; round++) {
    for (uint32_t i = 0; i < 100; i++) m[Oid(round, i)] = 1;
    for (uint32_t i = 0; i < 100; i++) m.erase(Oid(round, i));
    m[Oid(round, 1000)] = 1;  // one survivor per round: the table never drains
  }
  EXPECT_EQ(m.size(), 100u);
  for (uint32_t round = 0; round < 100; round++) EXPECT_TRUE(m.contains(Oid(round, 1000)));
}

TEST(IdMapTest, MoveLeavesTheSourceEmpty) {
  IdMap<TaskID, std::string> a;
  TaskID k = TaskID::FromRandom();
  a[k] = "x";
  IdMap<TaskID, std::string> b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(b.find(k)->second, "x");
}

TEST(IdSetTest, InsertEraseCount) {
  IdSet<ObjectID> s;
  EXPECT_TRUE(s.insert(Oid(1, 2)).second);
  EXPECT_FALSE(s.insert(Oid(1, 2)).second);
  EXPECT_EQ(s.count(Oid(1, 2)), 1u);
  EXPECT_EQ(s.erase(Oid(1, 2)), 1u);
  EXPECT_EQ(s.erase(Oid(1, 2)), 0u);
  EXPECT_TRUE(s.empty());
}

}  // namespace
}  // namespace rayts
