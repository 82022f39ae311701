#include "core/plasma/plasma_store.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <vector>

#include "test/core/test_util.h"

namespace rayts::plasma {
namespace {

using test::Id;

// Records the callbacks a Get delivers.
struct GetRecorder {
  int calls = 0;
  std::vector<GetResult> results;
  GetCallback cb() {
    return [this](std::vector<GetResult> r) {
      calls++;
      results = std::move(r);
    };
  }
};

constexpr ClientId kOwner = 1;
constexpr ClientId kReader = 2;
constexpr ClientId kOther = 3;

class PlasmaStoreTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kCapacity = 1024;
  PlasmaStore store_{kCapacity, nullptr};

  uint64_t Put(uint8_t n, uint64_t size, bool pinned = false, ClientId c = kOwner) {
    auto off = store_.Create(c, Id(n), size, pinned);
    EXPECT_TRUE(off.ok()) << off.status().ToString();
    EXPECT_TRUE(store_.Seal(c, Id(n)).ok());
    return off.ok() ? *off : ~0ull;
  }
  // Get that must complete synchronously.
  GetResult GetNow(ClientId c, uint8_t n) {
    GetRecorder rec;
    EXPECT_EQ(store_.Get(c, {Id(n)}, rec.cb()), 0u);
    EXPECT_EQ(rec.calls, 1);
    return rec.results.empty() ? GetResult{} : rec.results[0];
  }
};

// The room callback (the node server's queued pulls): called when memory is
// freed or an object becomes evictable, not for a create, seal or get.
TEST_F(PlasmaStoreTest, TheRoomCallbackFiresWhenMemoryFreesOrAnObjectBecomesEvictable) {
  int room = 0;
  store_.SetRoomCallback([&] { room++; });
  Put(1, 100, /*pinned=*/true);
  GetNow(kReader, 1);
  EXPECT_EQ(room, 0);
  store_.Delete(Id(1));  // read: not freed yet
  EXPECT_EQ(room, 0);
  store_.Release(kReader, Id(1));  // the last ref: freed
  EXPECT_EQ(room, 1);
  Put(2, 100, /*pinned=*/false);  // sealed, unreferenced, unpinned: evictable at once
  EXPECT_EQ(room, 2);
  GetNow(kReader, 2);
  store_.Release(kReader, Id(2));  // evictable again
  EXPECT_EQ(room, 3);
  auto off = store_.Create(kOwner, Id(3), 100, /*pinned=*/true);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(room, 3);
  ASSERT_TRUE(store_.Abort(kOwner, Id(3)).ok());  // freed
  EXPECT_EQ(room, 4);
}

TEST_F(PlasmaStoreTest, CreateSealGetReleaseDelete) {
  auto off = store_.Create(kOwner, Id(1), 100, /*pinned=*/true);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(*off % 64, 0u);
  EXPECT_FALSE(store_.Contains(Id(1)));
  EXPECT_EQ(store_.num_objects(), 1u);
  EXPECT_EQ(store_.used_bytes(), 128u);
  EXPECT_EQ(store_.pinned_bytes(), 128u);
  ASSERT_TRUE(store_.Seal(kOwner, Id(1)).ok());
  EXPECT_TRUE(store_.Contains(Id(1)));

  GetResult r = GetNow(kReader, 1);
  EXPECT_EQ(r.id, Id(1));
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.offset, *off);
  EXPECT_EQ(r.size, 100u);
  store_.Release(kReader, Id(1));
  EXPECT_TRUE(store_.Contains(Id(1)));  // still pinned by its owner

  store_.Delete(Id(1));
  EXPECT_FALSE(store_.Contains(Id(1)));
  EXPECT_EQ(store_.num_objects(), 0u);
  EXPECT_EQ(store_.used_bytes(), 0u);
  EXPECT_EQ(store_.pinned_bytes(), 0u);
  EXPECT_EQ(store_.evicted_count(), 0u);
}

TEST_F(PlasmaStoreTest, ProtocolErrors) {
  EXPECT_EQ(store_.Seal(kOwner, Id(1)).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_.Abort(kOwner, Id(1)).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_.Create(kOwner, Id(1), 10, false).ok());
  EXPECT_EQ(store_.Create(kOther, Id(1), 10, false).status().code(),
            StatusCode::kObjectBeingCreated);  // not sealed yet
  EXPECT_EQ(store_.Seal(kOther, Id(1)).code(), StatusCode::kInvalid);
  EXPECT_EQ(store_.Abort(kOther, Id(1)).code(), StatusCode::kInvalid);
  ASSERT_TRUE(store_.Seal(kOwner, Id(1)).ok());
  EXPECT_EQ(store_.Seal(kOwner, Id(1)).code(), StatusCode::kInvalid);
  EXPECT_EQ(store_.Abort(kOwner, Id(1)).code(), StatusCode::kInvalid);
  // Releases of refs never taken, and ops on unknown ids, are no-ops.
  store_.Release(kReader, Id(1));
  store_.Release(kReader, Id(9));
  store_.Delete(Id(9));
  store_.Unpin(Id(9));
  store_.CancelGet(12345);
  store_.DisconnectClient(99);
  EXPECT_TRUE(store_.Contains(Id(1)));
}

TEST_F(PlasmaStoreTest, GetWaitsUntilSealAndKeepsRequestOrder) {
  Put(1, 64);
  GetRecorder rec;
  uint64_t get_id = store_.Get(kReader, {Id(2), Id(1), Id(3)}, rec.cb());
  EXPECT_NE(get_id, 0u);
  EXPECT_EQ(rec.calls, 0);

  auto off2 = store_.Create(kOwner, Id(2), 200, false);
  ASSERT_TRUE(off2.ok());
  EXPECT_EQ(rec.calls, 0);  // created is not enough
  ASSERT_TRUE(store_.Seal(kOwner, Id(2)).ok());
  EXPECT_EQ(rec.calls, 0);  // 3 still missing
  auto off3 = store_.Create(kOther, Id(3), 10, false);
  ASSERT_TRUE(off3.ok());
  ASSERT_TRUE(store_.Seal(kOther, Id(3)).ok());
  ASSERT_EQ(rec.calls, 1);
  ASSERT_EQ(rec.results.size(), 3u);
  EXPECT_EQ(rec.results[0].id, Id(2));
  EXPECT_EQ(rec.results[0].offset, *off2);
  EXPECT_EQ(rec.results[0].size, 200u);
  EXPECT_EQ(rec.results[1].id, Id(1));
  EXPECT_EQ(rec.results[2].id, Id(3));
  EXPECT_EQ(rec.results[2].offset, *off3);
  for (auto& r : rec.results) EXPECT_TRUE(r.found);

  // The reader holds a ref on each: deletes defer until it releases.
  for (uint8_t n : {1, 2, 3}) store_.Delete(Id(n));
  EXPECT_EQ(store_.num_objects(), 3u);
  for (uint8_t n : {1, 2, 3}) store_.Release(kReader, Id(n));
  EXPECT_EQ(store_.num_objects(), 0u);
  EXPECT_EQ(store_.used_bytes(), 0u);
  store_.CancelGet(get_id);  // already completed: ignored
  EXPECT_EQ(rec.calls, 1);
}

TEST_F(PlasmaStoreTest, SeveralGetsAndDuplicateIdsEachTakeARef) {
  GetRecorder a, b;
  EXPECT_NE(store_.Get(kReader, {Id(1), Id(1)}, a.cb()), 0u);
  EXPECT_NE(store_.Get(kOther, {Id(1)}, b.cb()), 0u);
  Put(1, 64);
  ASSERT_EQ(a.calls, 1);
  ASSERT_EQ(b.calls, 1);
  EXPECT_TRUE(a.results[0].found && a.results[1].found);
  store_.Delete(Id(1));
  store_.Release(kReader, Id(1));
  store_.Release(kOther, Id(1));
  EXPECT_TRUE(store_.Contains(Id(1)));  // kReader still holds its second ref
  store_.Release(kReader, Id(1));
  EXPECT_FALSE(store_.Contains(Id(1)));
}

TEST_F(PlasmaStoreTest, CancelGetReturnsMissingAsNotFound) {
  Put(1, 64);
  GetRecorder rec;
  uint64_t get_id = store_.Get(kReader, {Id(1), Id(2)}, rec.cb());
  ASSERT_NE(get_id, 0u);
  store_.CancelGet(get_id);
  ASSERT_EQ(rec.calls, 1);
  EXPECT_TRUE(rec.results[0].found);
  EXPECT_FALSE(rec.results[1].found);
  EXPECT_EQ(rec.results[1].id, Id(2));
  EXPECT_EQ(rec.results[1].size, 0u);

  // A ref was taken for the found object only.
  store_.Delete(Id(1));
  EXPECT_TRUE(store_.Contains(Id(1)));
  store_.Release(kReader, Id(1));
  EXPECT_FALSE(store_.Contains(Id(1)));

  // The cancelled get does not fire again, and took no ref on Id(2).
  Put(2, 64);
  EXPECT_EQ(rec.calls, 1);
  store_.CancelGet(get_id);
  EXPECT_EQ(rec.calls, 1);
  store_.Delete(Id(2));
  EXPECT_EQ(store_.num_objects(), 0u);
}

TEST_F(PlasmaStoreTest, DeleteWhileReferencedDefersToLastRelease) {
  Put(1, 300, /*pinned=*/true);
  GetNow(kReader, 1);
  GetNow(kOther, 1);
  store_.Delete(Id(1));
  EXPECT_EQ(store_.pinned_bytes(), 0u);
  EXPECT_TRUE(store_.Contains(Id(1)));  // readable until released
  EXPECT_TRUE(GetNow(kReader, 1).found);
  EXPECT_EQ(store_.Create(kOwner, Id(1), 10, false).status().code(),
            StatusCode::kObjectExists);  // sealed
  store_.Release(kReader, Id(1));
  store_.Release(kReader, Id(1));
  EXPECT_EQ(store_.num_objects(), 1u);
  EXPECT_EQ(store_.evictable_bytes(), 0u);  // delete-pending is not evictable
  store_.Release(kOther, Id(1));
  EXPECT_EQ(store_.num_objects(), 0u);
  EXPECT_EQ(store_.used_bytes(), 0u);
  EXPECT_EQ(store_.evicted_count(), 0u);
}

TEST_F(PlasmaStoreTest, DeleteWhileBeingWrittenFreesAtSeal) {
  ASSERT_TRUE(store_.Create(kOwner, Id(1), 64, true).ok());
  store_.Delete(Id(1));
  EXPECT_EQ(store_.num_objects(), 1u);
  ASSERT_TRUE(store_.Seal(kOwner, Id(1)).ok());
  EXPECT_EQ(store_.num_objects(), 0u);

  // A get waiting on it is served first, and its ref keeps it alive.
  ASSERT_TRUE(store_.Create(kOwner, Id(2), 64, true).ok());
  GetRecorder rec;
  ASSERT_NE(store_.Get(kReader, {Id(2)}, rec.cb()), 0u);
  store_.Delete(Id(2));
  ASSERT_TRUE(store_.Seal(kOwner, Id(2)).ok());
  ASSERT_EQ(rec.calls, 1);
  EXPECT_TRUE(rec.results[0].found);
  EXPECT_EQ(store_.num_objects(), 1u);
  store_.Release(kReader, Id(2));
  EXPECT_EQ(store_.num_objects(), 0u);
}

TEST_F(PlasmaStoreTest, AbortFreesAndWaitingGetsKeepWaiting) {
  ASSERT_TRUE(store_.Create(kOwner, Id(1), 500, true).ok());
  GetRecorder rec;
  ASSERT_NE(store_.Get(kReader, {Id(1)}, rec.cb()), 0u);
  ASSERT_TRUE(store_.Abort(kOwner, Id(1)).ok());
  EXPECT_EQ(store_.num_objects(), 0u);
  EXPECT_EQ(store_.used_bytes(), 0u);
  EXPECT_EQ(store_.pinned_bytes(), 0u);
  EXPECT_EQ(rec.calls, 0);
  Put(1, 64, true, kOther);  // re-created, e.g. by lineage reconstruction
  ASSERT_EQ(rec.calls, 1);
  EXPECT_TRUE(rec.results[0].found);
}

TEST_F(PlasmaStoreTest, EvictsLeastRecentlyReleasedFirst) {
  for (uint8_t n = 1; n <= 4; n++) Put(n, 256);  // fills the store
  EXPECT_EQ(store_.used_bytes(), kCapacity);
  EXPECT_EQ(store_.evictable_bytes(), kCapacity);
  // Touch 1: get + release makes it the most recent.
  GetNow(kReader, 1);
  store_.Release(kReader, Id(1));

  ASSERT_TRUE(store_.Create(kOwner, Id(5), 256, false).ok());
  EXPECT_FALSE(store_.Contains(Id(2)));
  EXPECT_TRUE(store_.Contains(Id(1)));
  EXPECT_EQ(store_.evicted_count(), 1u);
  ASSERT_TRUE(store_.Seal(kOwner, Id(5)).ok());

  // LRU is now 3, 4, 1, 5; 512 bytes evict 3 and 4.
  ASSERT_TRUE(store_.Create(kOwner, Id(6), 512, false).ok());
  EXPECT_FALSE(store_.Contains(Id(3)));
  EXPECT_FALSE(store_.Contains(Id(4)));
  EXPECT_TRUE(store_.Contains(Id(1)));
  EXPECT_TRUE(store_.Contains(Id(5)));
  EXPECT_EQ(store_.evicted_count(), 3u);
  EXPECT_EQ(store_.used_bytes(), kCapacity);
}

TEST_F(PlasmaStoreTest, PinnedReferencedAndUnsealedAreNeverEvicted) {
  Put(1, 256, /*pinned=*/true);
  Put(2, 256);
  GetNow(kReader, 2);  // referenced
  Put(3, 256);         // evictable
  ASSERT_TRUE(store_.Create(kOther, Id(4), 256, false).ok());  // unsealed
  EXPECT_EQ(store_.evictable_bytes(), 256u);

  ASSERT_TRUE(store_.Create(kOwner, Id(5), 256, false).ok());
  EXPECT_FALSE(store_.Contains(Id(3)));
  EXPECT_EQ(store_.evicted_count(), 1u);

  auto full = store_.Create(kOwner, Id(6), 64, false);
  EXPECT_EQ(full.status().code(), StatusCode::kOutOfMemory);
  EXPECT_TRUE(store_.Contains(Id(1)));
  EXPECT_TRUE(store_.Contains(Id(2)));
  EXPECT_EQ(store_.num_objects(), 4u);
  EXPECT_EQ(store_.evicted_count(), 1u);

  // Unpin and release make them evictable again.
  store_.Unpin(Id(1));
  ASSERT_TRUE(store_.Create(kOwner, Id(6), 64, false).ok());
  EXPECT_FALSE(store_.Contains(Id(1)));
  store_.Release(kReader, Id(2));
  ASSERT_TRUE(store_.Create(kOwner, Id(7), 256, false).ok());
  EXPECT_FALSE(store_.Contains(Id(2)));
}

// A secondary copy made the primary (its owner's primary node died) is kept
// as a pinned object is; the free hook sees every copy that leaves.
TEST_F(PlasmaStoreTest, PinMakesASealedCopyUnevictableAndTheFreeHookSeesEvictionsAndDeletes) {
  std::vector<ObjectID> freed;
  store_.SetOnFreed([&](const ObjectID& id) { freed.push_back(id); });
  Put(1, 512);  // unpinned: a pulled copy
  Put(2, 256);
  EXPECT_TRUE(store_.Pin(Id(1)));
  EXPECT_FALSE(store_.Pin(Id(9))) << "absent";
  ASSERT_TRUE(store_.Create(kOther, Id(3), 64, false).ok());
  EXPECT_FALSE(store_.Pin(Id(3))) << "not sealed";
  EXPECT_EQ(store_.evictable_bytes(), 256u);
  // Room for 512 more: only 2 can go.
  EXPECT_EQ(store_.Create(kOwner, Id(4), 512, false).status().code(), StatusCode::kOutOfMemory);
  ASSERT_TRUE(store_.Create(kOwner, Id(5), 256, false).ok());
  EXPECT_TRUE(store_.Contains(Id(1)));
  EXPECT_FALSE(store_.Contains(Id(2)));
  EXPECT_EQ(freed, std::vector<ObjectID>{Id(2)});
  store_.Delete(Id(1));
  EXPECT_EQ(freed, (std::vector<ObjectID>{Id(2), Id(1)}));
}

TEST_F(PlasmaStoreTest, ObjectStoreFullSaysWhatUsesTheMemory) {
  Put(1, 768, /*pinned=*/true);
  Put(2, 256);  // evictable, but evicting it cannot make room for 512
  auto full = store_.Create(kOwner, Id(3), 512, false);
  ASSERT_EQ(full.status().code(), StatusCode::kOutOfMemory);
  const std::string msg = full.status().ToString();
  EXPECT_EQ(msg.rfind("ObjectStoreFull", 0), 0u) << msg;
  EXPECT_NE(msg.find(Id(3).Hex()), std::string::npos) << msg;
  EXPECT_NE(msg.find("512 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("object store 1024 of 1024 bytes used"), std::string::npos) << msg;
  EXPECT_NE(msg.find("spilling to disk is off"), std::string::npos) << msg;
  EXPECT_NE(msg.find("768 pinned"), std::string::npos) << msg;
  EXPECT_NE(msg.find("256 evictable"), std::string::npos) << msg;
  // Nothing was evicted for a request that could not succeed.
  EXPECT_TRUE(store_.Contains(Id(2)));
  EXPECT_EQ(store_.evicted_count(), 0u);

  GetNow(kReader, 2);
  auto full2 = store_.Create(kOwner, Id(3), 64, false);
  ASSERT_EQ(full2.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(full2.status().message().find("256 in use"), std::string::npos)
      << full2.status().message();

  EXPECT_EQ(store_.Create(kOwner, Id(4), kCapacity + 1, false).status().code(),
            StatusCode::kOutOfMemory);
}

TEST_F(PlasmaStoreTest, DisconnectDropsRefsAbortsCreationsAndForgetsGets) {
  Put(1, 256);
  GetNow(kReader, 1);
  GetNow(kReader, 1);
  ASSERT_TRUE(store_.Create(kReader, Id(2), 256, true).ok());  // unsealed
  GetRecorder rec;
  ASSERT_NE(store_.Get(kReader, {Id(1), Id(3)}, rec.cb()), 0u);  // pending
  GetRecorder other;
  ASSERT_NE(store_.Get(kOther, {Id(2)}, other.cb()), 0u);
  EXPECT_EQ(store_.evictable_bytes(), 0u);

  EXPECT_EQ(store_.num_pending_gets(), 2u);
  store_.DisconnectClient(kReader);
  EXPECT_EQ(rec.calls, 0);
  EXPECT_EQ(store_.num_pending_gets(), 1u);
  EXPECT_EQ(store_.num_objects(), 1u);  // Id(2) aborted
  EXPECT_EQ(store_.pinned_bytes(), 0u);
  EXPECT_EQ(store_.evictable_bytes(), 256u);  // all three refs on Id(1) gone
  Put(3, 64);
  EXPECT_EQ(rec.calls, 0);
  EXPECT_EQ(other.calls, 0);  // still waiting for Id(2)
  store_.Delete(Id(1));
  store_.Delete(Id(3));
  EXPECT_EQ(store_.num_objects(), 0u);
  EXPECT_EQ(store_.used_bytes(), 0u);
}

TEST_F(PlasmaStoreTest, CallbackMayCallBackIntoTheStore) {
  GetRecorder rec;
  bool released = false;
  store_.Get(kReader, {Id(1)}, [&](std::vector<GetResult> r) {
    ASSERT_TRUE(r[0].found);
    store_.Release(kReader, Id(1));
    store_.Delete(Id(1));
    released = true;
  });
  Put(1, 64);
  EXPECT_TRUE(released);
  EXPECT_EQ(store_.num_objects(), 0u);
  EXPECT_EQ(store_.used_bytes(), 0u);
}

TEST_F(PlasmaStoreTest, ReusesLowOffsetsFirst) {
  uint64_t a = Put(1, 64, true);
  Put(2, 64, true);
  store_.Delete(Id(1));
  EXPECT_EQ(Put(3, 64, true), a);
}

// Random protocol traffic, including misuse; afterwards, disconnecting every
// client and deleting every id must return the store to empty (no leaked
// bytes, refs or pending gets; the allocator CHECKs any double free).
TEST(PlasmaStoreRandomTest, RandomTrafficLeavesNoLeaks) {
  PlasmaStore store(64 * 64, nullptr);
  std::mt19937_64 rng(7);
  std::vector<uint64_t> get_ids;
  int callbacks = 0;
  for (int step = 0; step < 20000; step++) {
    const ClientId c = 1 + rng() % 4;
    const ObjectID id = Id(static_cast<uint8_t>(rng() % 24));
    switch (rng() % 10) {
      case 0: case 1:
        (void)store.Create(c, id, rng() % 400, rng() % 3 == 0);
        break;
      case 2: case 3:
        (void)store.Seal(c, id);
        break;
      case 4:
        (void)store.Abort(c, id);
        break;
      case 5: {
        uint64_t g = store.Get(c, {id, Id(static_cast<uint8_t>(rng() % 24))},
                               [&](std::vector<GetResult>) { callbacks++; });
        if (g) get_ids.push_back(g);
        break;
      }
      case 6:
        if (!get_ids.empty()) store.CancelGet(get_ids[rng() % get_ids.size()]);
        break;
      case 7:
        store.Release(c, id);
        break;
      case 8:
        if (rng() % 4 == 0) store.Delete(id); else store.Unpin(id);
        break;
      case 9:
        if (rng() % 8 == 0) store.DisconnectClient(c);
        break;
    }
    ASSERT_LE(store.pinned_bytes() + store.evictable_bytes(), store.used_bytes());
    ASSERT_LE(store.used_bytes(), store.capacity());
  }
  EXPECT_GT(callbacks, 0);
  EXPECT_GT(store.evicted_count(), 0u);
  for (ClientId c = 1; c <= 4; c++) store.DisconnectClient(c);
  for (int n = 0; n < 24; n++) store.Delete(Id(static_cast<uint8_t>(n)));
  EXPECT_EQ(store.num_objects(), 0u);
  EXPECT_EQ(store.used_bytes(), 0u);
  EXPECT_EQ(store.pinned_bytes(), 0u);
  EXPECT_EQ(store.evictable_bytes(), 0u);
  EXPECT_EQ(store.num_pending_gets(), 0u);
}

}  // namespace
}  // namespace rayts::plasma

namespace rayts::plasma {
namespace {

class PlasmaLoseTest : public ::testing::Test {
 protected:
  PlasmaStore store_{1024, nullptr};
  ObjectID Seal(uint8_t n, uint64_t size) {
    ObjectID id = ObjectID::FromRandom();
    id.bytes[0] = n;
    EXPECT_TRUE(store_.Create(1, id, size, true).ok());
    EXPECT_TRUE(store_.Seal(1, id).ok());
    return id;
  }
};

TEST_F(PlasmaLoseTest, LostUnreferencedObjectIsFreedAndGetAnswersAtOnce) {
  ObjectID id = Seal(1, 512);
  ASSERT_TRUE(store_.Lose(id).ok());
  EXPECT_FALSE(store_.Contains(id));
  EXPECT_EQ(store_.used_bytes(), 0u);
  int calls = 0;
  bool found = true;
  EXPECT_EQ(store_.Get(2, {id}, [&](std::vector<GetResult> r) { calls++; found = r[0].found; }), 0u);
  EXPECT_EQ(calls, 1);  // not-found now, not after a timeout
  EXPECT_FALSE(found);
  // Recreating the id (reconstruction) works.
  EXPECT_TRUE(store_.Create(1, id, 512, true).ok());
}

TEST_F(PlasmaLoseTest, ReadersOfALostCopyKeepItsBytesUntilTheyRelease) {
  ObjectID id = Seal(1, 512);
  uint64_t old_offset = 0;
  store_.Get(2, {id}, [&](std::vector<GetResult> r) { old_offset = r[0].offset; });
  ASSERT_TRUE(store_.Lose(id).ok());
  EXPECT_FALSE(store_.Contains(id));
  EXPECT_GT(store_.used_bytes(), 0u);  // the reader still maps it
  auto again = store_.Create(1, id, 256, true);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, old_offset);  // the new copy does not overwrite the old one
  ASSERT_TRUE(store_.Seal(1, id).ok());
  store_.Release(2, id);  // drops the lost copy's ref, not the new copy
  EXPECT_TRUE(store_.Contains(id));
  EXPECT_EQ(store_.used_bytes(), 256u);
}

TEST_F(PlasmaLoseTest, ReaderDisconnectFreesALostCopy) {
  ObjectID id = Seal(1, 512);
  store_.Get(2, {id}, [](std::vector<GetResult>) {});
  ASSERT_TRUE(store_.Lose(id).ok());
  store_.DisconnectClient(2);
  EXPECT_EQ(store_.used_bytes(), 0u);
  EXPECT_EQ(store_.num_objects(), 0u);
}

TEST_F(PlasmaLoseTest, LoseOfAnUnsealedOrUnknownObjectFails) {
  ObjectID id = ObjectID::FromRandom();
  EXPECT_EQ(store_.Lose(id).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_.Create(1, id, 64, true).ok());
  EXPECT_EQ(store_.Lose(id).code(), StatusCode::kNotFound);
}

// What the node server does when a retried task stores an id whose sealed
// copy a killed worker left behind: Create says ObjectExists, SealedCreator
// names the (gone) creator, Lose + Create replaces the orphan.
TEST_F(PlasmaLoseTest, SealedCreatorNamesTheCreatorOfSealedObjectsOnly) {
  ObjectID id = ObjectID::FromRandom();
  EXPECT_FALSE(store_.SealedCreator(id).has_value());
  ASSERT_TRUE(store_.Create(7, id, 64, true).ok());
  EXPECT_FALSE(store_.SealedCreator(id).has_value());  // being written
  EXPECT_EQ(store_.CreatorOf(id), std::optional<ClientId>(7));
  ASSERT_TRUE(store_.Seal(7, id).ok());
  ASSERT_EQ(store_.SealedCreator(id), std::optional<ClientId>(7));
  store_.DisconnectClient(7);  // the creator dies; its sealed, pinned copy stays
  EXPECT_TRUE(store_.Contains(id));
  auto again = store_.Create(8, id, 64, true);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kObjectExists);
  EXPECT_NE(again.status().message().find("sealed by client 7"), std::string::npos);
  ASSERT_TRUE(store_.Lose(id).ok());
  ASSERT_TRUE(store_.Create(8, id, 64, true).ok());
  ASSERT_TRUE(store_.Seal(8, id).ok());
  EXPECT_EQ(store_.SealedCreator(id), std::optional<ClientId>(8));
  EXPECT_EQ(store_.num_objects(), 1u);
  EXPECT_EQ(store_.used_bytes(), 64u);
}

}  // namespace
}  // namespace rayts::plasma
