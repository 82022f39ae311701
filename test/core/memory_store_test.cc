#include "core/core_worker/memory_store.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace rayts {
namespace {

std::shared_ptr<const std::string> Val(std::string s) { return std::make_shared<const std::string>(std::move(s)); }

TEST(MemoryStoreTest, UnknownIsNotFound) {
  MemoryStore m;
  EXPECT_EQ(m.Find(ObjectID::FromRandom()), nullptr);
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.InlineBytes(), 0u);
}

TEST(MemoryStoreTest, GetOrCreateMakesPendingEntry) {
  MemoryStore m;
  ObjectID id = ObjectID::FromRandom();
  StoredObject& o = m.GetOrCreate(id);
  EXPECT_FALSE(o.ready);
  EXPECT_EQ(o.data, nullptr);
  const StoredObject* f = m.Find(id);
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->ready);
  EXPECT_EQ(m.size(), 1u);
  // A second GetOrCreate returns the same entry.
  EXPECT_EQ(&m.GetOrCreate(id), f);
  EXPECT_EQ(m.size(), 1u);
}

TEST(MemoryStoreTest, PendingToReady) {
  MemoryStore m;
  ObjectID id = ObjectID::FromRandom();
  m.GetOrCreate(id);
  EXPECT_TRUE(m.Put(id, Val("hello"), false, false, 5));
  const StoredObject* o = m.Find(id);
  ASSERT_NE(o, nullptr);
  EXPECT_TRUE(o->ready);
  EXPECT_FALSE(o->in_plasma);
  EXPECT_FALSE(o->is_error);
  ASSERT_NE(o->data, nullptr);
  EXPECT_EQ(*o->data, "hello");
  EXPECT_EQ(o->size, 5u);
  EXPECT_EQ(m.InlineBytes(), 5u);
  // GetOrCreate on a ready entry does not reset it.
  EXPECT_TRUE(m.GetOrCreate(id).ready);
}

TEST(MemoryStoreTest, PutWithoutPendingEntryCreatesReady) {
  MemoryStore m;
  ObjectID id = ObjectID::FromRandom();
  EXPECT_TRUE(m.Put(id, nullptr, true, false, 1 << 20));
  const StoredObject* o = m.Find(id);
  ASSERT_NE(o, nullptr);
  EXPECT_TRUE(o->ready);
  EXPECT_TRUE(o->in_plasma);
  EXPECT_EQ(o->size, 1u << 20);
  EXPECT_EQ(m.InlineBytes(), 0u);  // plasma values are not inline
}

TEST(MemoryStoreTest, FirstPutWins) {
  MemoryStore m;
  ObjectID id = ObjectID::FromRandom();
  EXPECT_TRUE(m.Put(id, Val("first"), false, false, 5));
  EXPECT_FALSE(m.Put(id, Val("second-value"), true, true, 12));
  const StoredObject* o = m.Find(id);
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(*o->data, "first");
  EXPECT_FALSE(o->in_plasma);
  EXPECT_FALSE(o->is_error);
  EXPECT_EQ(o->size, 5u);
  EXPECT_EQ(m.size(), 1u);
}

TEST(MemoryStoreTest, ErrorRecordFirstWinsOverLaterValue) {
  MemoryStore m;
  ObjectID id = ObjectID::FromRandom();
  m.GetOrCreate(id);
  EXPECT_TRUE(m.Put(id, Val("{\"kind\":\"task\"}"), false, true, 15));
  EXPECT_FALSE(m.Put(id, Val("late"), false, false, 4));
  EXPECT_TRUE(m.Find(id)->is_error);
  EXPECT_EQ(*m.Find(id)->data, "{\"kind\":\"task\"}");
}

TEST(MemoryStoreTest, EraseRemovesAndAllowsFreshEntry) {
  MemoryStore m;
  ObjectID a = ObjectID::FromRandom(), b = ObjectID::FromRandom();
  m.Put(a, Val("aaaa"), false, false, 4);
  m.Put(b, Val("bb"), false, false, 2);
  EXPECT_EQ(m.InlineBytes(), 6u);
  m.Erase(a);
  EXPECT_EQ(m.Find(a), nullptr);
  ASSERT_NE(m.Find(b), nullptr);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.InlineBytes(), 2u);
  m.Erase(a);  // erasing again is a no-op
  m.Erase(ObjectID::FromRandom());
  EXPECT_EQ(m.size(), 1u);
  // After erase a new Put is accepted again.
  EXPECT_TRUE(m.Put(a, Val("new"), false, false, 3));
  EXPECT_EQ(*m.Find(a)->data, "new");
}

TEST(MemoryStoreTest, SharedValueOutlivesErase) {
  MemoryStore m;
  ObjectID id = ObjectID::FromRandom();
  m.Put(id, Val("keep me"), false, false, 7);
  std::shared_ptr<const std::string> held = m.Find(id)->data;
  m.Erase(id);
  EXPECT_EQ(*held, "keep me");
  EXPECT_EQ(held.use_count(), 1);
}

}  // namespace
}  // namespace rayts
