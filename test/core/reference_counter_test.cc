#include "core/core_worker/reference_counter.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <vector>

namespace rayts {
namespace {

struct Released {
  ObjectID id;
  bool owned;
  std::string owner_address;
  int64_t local;
  int64_t submitted;
};

class ReferenceCounterTest : public ::testing::Test {
 protected:
  ReferenceCounter rc_{[this](const ObjectID& id, const ReferenceCounter::Ref& r) {
    released_.push_back({id, r.owned, r.owner_address, r.local, r.submitted});
  }};
  std::vector<Released> released_;
  size_t ReleasesOf(const ObjectID& id) const {
    size_t n = 0;
    for (auto& r : released_) n += r.id == id;
    return n;
  }
};

TEST_F(ReferenceCounterTest, OwnedReleasedWhenLocalDropsToZero) {
  ObjectID id = ObjectID::FromRandom();
  rc_.AddOwned(id);
  ASSERT_TRUE(rc_.Has(id));
  const auto* r = rc_.Find(id);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->owned);
  EXPECT_EQ(r->local, 1);
  EXPECT_EQ(r->submitted, 0);
  EXPECT_TRUE(r->owner_address.empty());
  rc_.RemoveLocal(id);
  ASSERT_EQ(released_.size(), 1u);
  EXPECT_EQ(released_[0].id, id);
  EXPECT_TRUE(released_[0].owned);
  EXPECT_EQ(released_[0].local, 0);
  EXPECT_EQ(released_[0].submitted, 0);
  EXPECT_FALSE(rc_.Has(id));
  EXPECT_EQ(rc_.Find(id), nullptr);
  EXPECT_EQ(rc_.size(), 0u);
  EXPECT_EQ(rc_.bad_decrements(), 0u);
}

TEST_F(ReferenceCounterTest, LocalZeroFirstThenSubmittedZero) {
  ObjectID id = ObjectID::FromRandom();
  rc_.AddOwned(id, 2);
  rc_.AddSubmitted(id);
  rc_.AddSubmitted(id);
  EXPECT_EQ(rc_.Find(id)->submitted, 2);
  rc_.RemoveLocal(id);
  rc_.RemoveLocal(id);
  EXPECT_TRUE(released_.empty()) << "released while tasks still reference it";
  EXPECT_EQ(rc_.Find(id)->local, 0);
  rc_.RemoveSubmitted(id);
  EXPECT_TRUE(released_.empty());
  rc_.RemoveSubmitted(id);
  ASSERT_EQ(released_.size(), 1u);
  EXPECT_TRUE(released_[0].owned);
  EXPECT_FALSE(rc_.Has(id));
  EXPECT_EQ(rc_.bad_decrements(), 0u);
}

TEST_F(ReferenceCounterTest, SubmittedZeroFirstThenLocalZero) {
  ObjectID id = ObjectID::FromRandom();
  rc_.AddOwned(id);
  rc_.AddSubmitted(id);
  rc_.RemoveSubmitted(id);
  EXPECT_TRUE(released_.empty()) << "released while a local handle is alive";
  EXPECT_TRUE(rc_.Has(id));
  rc_.RemoveLocal(id);
  ASSERT_EQ(released_.size(), 1u);
  EXPECT_EQ(released_[0].id, id);
  EXPECT_EQ(rc_.bad_decrements(), 0u);
}

TEST_F(ReferenceCounterTest, ReleasedExactlyOnceExtraDecrementsAreBad) {
  ObjectID id = ObjectID::FromRandom();
  rc_.AddOwned(id);
  rc_.RemoveLocal(id);
  rc_.RemoveLocal(id);
  rc_.RemoveSubmitted(id);
  EXPECT_EQ(ReleasesOf(id), 1u);
  EXPECT_EQ(rc_.bad_decrements(), 2u);
  EXPECT_FALSE(rc_.Has(id));
}

TEST_F(ReferenceCounterTest, RemoveLocalBatch) {
  ObjectID id = ObjectID::FromRandom();
  rc_.AddOwned(id, 5);
  rc_.RemoveLocal(id, 3);
  EXPECT_EQ(rc_.Find(id)->local, 2);
  EXPECT_TRUE(released_.empty());
  rc_.RemoveLocal(id, 2);
  EXPECT_EQ(ReleasesOf(id), 1u);
  EXPECT_EQ(rc_.bad_decrements(), 0u);
}

TEST_F(ReferenceCounterTest, OverDecrementClampsAtZeroNeverNegative) {
  ObjectID id = ObjectID::FromRandom();
  rc_.AddOwned(id, 2);
  rc_.AddSubmitted(id);
  rc_.RemoveLocal(id, 5);  // more than held
  EXPECT_EQ(rc_.bad_decrements(), 1u);
  ASSERT_TRUE(rc_.Has(id));
  EXPECT_EQ(rc_.Find(id)->local, 0);
  EXPECT_EQ(rc_.Find(id)->submitted, 1);
  EXPECT_TRUE(released_.empty());
  rc_.RemoveSubmitted(id);
  ASSERT_EQ(ReleasesOf(id), 1u);
  EXPECT_EQ(released_[0].local, 0);
  EXPECT_EQ(released_[0].submitted, 0);
}

TEST_F(ReferenceCounterTest, SubmittedDecrementAtZeroIsBadAndDoesNotGoNegative) {
  ObjectID id = ObjectID::FromRandom();
  rc_.AddOwned(id);
  rc_.RemoveSubmitted(id);  // submitted is 0
  EXPECT_EQ(rc_.bad_decrements(), 1u);
  // A zero-count decrement must not go negative; with local still 1 the
  // object stays.
  ASSERT_TRUE(rc_.Has(id));
  EXPECT_EQ(rc_.Find(id)->submitted, 0);
  EXPECT_EQ(rc_.Find(id)->local, 1);
  EXPECT_TRUE(released_.empty());
  rc_.RemoveLocal(id);
  EXPECT_EQ(ReleasesOf(id), 1u);
}

TEST_F(ReferenceCounterTest, UnknownIdDecrementsCountedAndHarmless) {
  ObjectID id = ObjectID::FromRandom();
  rc_.RemoveLocal(id);
  rc_.RemoveSubmitted(id);
  rc_.RemoveLocal(id, 10);
  EXPECT_EQ(rc_.bad_decrements(), 3u);
  EXPECT_FALSE(rc_.Has(id));
  EXPECT_EQ(rc_.size(), 0u);
  EXPECT_TRUE(released_.empty());
}

TEST_F(ReferenceCounterTest, AddSubmittedOnUnknownIdIsIgnored) {
  ObjectID id = ObjectID::FromRandom();
  rc_.AddSubmitted(id);
  EXPECT_FALSE(rc_.Has(id));
  EXPECT_EQ(rc_.size(), 0u);
}

TEST_F(ReferenceCounterTest, BorrowedEntryKeepsOwnerAddress) {
  ObjectID id = ObjectID::FromRandom();
  rc_.AddLocal(id, "/tmp/owner.sock");
  const auto* r = rc_.Find(id);
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(r->owned);
  EXPECT_EQ(r->owner_address, "/tmp/owner.sock");
  EXPECT_EQ(r->local, 1);
  // A second handle does not change ownership info.
  rc_.AddLocal(id, "/tmp/other.sock");
  EXPECT_EQ(rc_.Find(id)->local, 2);
  EXPECT_EQ(rc_.Find(id)->owner_address, "/tmp/owner.sock");
  rc_.AddSubmitted(id);
  rc_.RemoveLocal(id, 2);
  EXPECT_TRUE(released_.empty());
  rc_.RemoveSubmitted(id);
  ASSERT_EQ(released_.size(), 1u);
  EXPECT_FALSE(released_[0].owned);
  EXPECT_EQ(released_[0].owner_address, "/tmp/owner.sock");
  EXPECT_EQ(rc_.bad_decrements(), 0u);
}

TEST_F(ReferenceCounterTest, AddLocalWithEmptyOwnerIsOwned) {
  ObjectID id = ObjectID::FromRandom();
  rc_.AddLocal(id, "");
  EXPECT_TRUE(rc_.Find(id)->owned);
  rc_.AddLocal(id, "");
  rc_.RemoveLocal(id);
  EXPECT_TRUE(released_.empty());
  rc_.RemoveLocal(id);
  ASSERT_EQ(released_.size(), 1u);
  EXPECT_TRUE(released_[0].owned);
}

TEST_F(ReferenceCounterTest, AddOwnedOnExistingAddsHandles) {
  ObjectID id = ObjectID::FromRandom();
  rc_.AddOwned(id);
  rc_.AddOwned(id, 2);
  EXPECT_EQ(rc_.Find(id)->local, 3);
  rc_.AddLocal(id, "");
  EXPECT_EQ(rc_.Find(id)->local, 4);
  rc_.RemoveLocal(id, 4);
  EXPECT_EQ(ReleasesOf(id), 1u);
}

TEST_F(ReferenceCounterTest, ReleaseCallbackSeesOwnedFlagPerObject) {
  ObjectID owned = ObjectID::FromRandom();
  ObjectID borrowed = ObjectID::FromRandom();
  rc_.AddOwned(owned);
  rc_.AddLocal(borrowed, "owner-addr");
  rc_.RemoveLocal(borrowed);
  rc_.RemoveLocal(owned);
  ASSERT_EQ(released_.size(), 2u);
  EXPECT_EQ(released_[0].id, borrowed);
  EXPECT_FALSE(released_[0].owned);
  EXPECT_EQ(released_[1].id, owned);
  EXPECT_TRUE(released_[1].owned);
}

TEST_F(ReferenceCounterTest, ReaddAfterReleaseIsFreshEntry) {
  ObjectID id = ObjectID::FromRandom();
  rc_.AddOwned(id);
  rc_.RemoveLocal(id);
  rc_.AddLocal(id, "remote");
  EXPECT_FALSE(rc_.Find(id)->owned);
  EXPECT_EQ(rc_.Find(id)->local, 1);
  rc_.RemoveLocal(id);
  EXPECT_EQ(ReleasesOf(id), 2u);
}

TEST_F(ReferenceCounterTest, ForEachVisitsEveryEntry) {
  std::map<ObjectID, int64_t> want;
  for (int i = 0; i < 20; i++) {
    ObjectID id = ObjectID::FromRandom();
    if (i % 2) {
      rc_.AddOwned(id, i);
    } else {
      for (int k = 0; k <= i; k++) rc_.AddLocal(id, "owner");
    }
    want[id] = i % 2 ? i : i + 1;
  }
  std::map<ObjectID, int64_t> seen;
  size_t owned = 0;
  rc_.ForEach([&](const ObjectID& id, const ReferenceCounter::Ref& r) {
    EXPECT_TRUE(seen.emplace(id, r.local).second) << "visited twice";
    owned += r.owned;
  });
  EXPECT_EQ(seen, want);
  EXPECT_EQ(owned, 10u);
  EXPECT_EQ(rc_.size(), 20u);
}

TEST_F(ReferenceCounterTest, RandomOperationsMatchModel) {
  // A simple model: counts per id, released exactly once when both hit zero.
  std::mt19937 rng(7);
  std::vector<ObjectID> ids;
  for (int i = 0; i < 16; i++) ids.push_back(ObjectID::FromRandom());
  struct M { int64_t local = 0, submitted = 0; bool live = false; };
  std::map<ObjectID, M> model;
  std::map<ObjectID, size_t> model_releases;
  uint64_t model_bad = 0;
  for (int step = 0; step < 20000; step++) {
    const ObjectID& id = ids[rng() % ids.size()];
    M& m = model[id];
    switch (rng() % 5) {
      case 0:
        rc_.AddOwned(id);
        m.live = true;
        m.local++;
        break;
      case 1:
        rc_.AddLocal(id, "x");
        m.live = true;
        m.local++;
        break;
      case 2:
        rc_.AddSubmitted(id);
        if (m.live) m.submitted++;
        break;
      case 3:
      case 4: {
        bool sub = rng() % 2;
        if (sub) rc_.RemoveSubmitted(id); else rc_.RemoveLocal(id);
        if (!m.live) { model_bad++; break; }
        int64_t& c = sub ? m.submitted : m.local;
        if (c < 1) { model_bad++; c = 0; } else { c--; }
        if (m.local == 0 && m.submitted == 0) { m = M{}; model_releases[id]++; }
        break;
      }
    }
    const auto* r = rc_.Find(id);
    ASSERT_EQ(r != nullptr, model[id].live) << "step " << step;
    if (r) {
      ASSERT_GE(r->local, 0);
      ASSERT_GE(r->submitted, 0);
      ASSERT_EQ(r->local, model[id].local);
      ASSERT_EQ(r->submitted, model[id].submitted);
    }
  }
  EXPECT_EQ(rc_.bad_decrements(), model_bad);
  std::map<ObjectID, size_t> actual;
  for (auto& r : released_) actual[r.id]++;
  EXPECT_EQ(actual, model_releases);
}

}  // namespace
}  // namespace rayts

namespace rayts {
namespace {

TEST(ReferenceCounterOwnershipTest, ContainedRefsAreReleasedWithTheOuterObject) {
  std::vector<ObjectID> released;
  ReferenceCounter rc([&](const ObjectID& id, const ReferenceCounter::Ref&) { released.push_back(id); });
  ObjectID inner = ObjectID::FromRandom(), outer = ObjectID::FromRandom();
  rc.AddOwned(inner);
  rc.AddOwned(outer);
  EXPECT_FALSE(rc.AddContained(inner, ""));
  ASSERT_TRUE(rc.SetContains(outer, {inner}));
  rc.RemoveLocal(inner);
  EXPECT_TRUE(rc.Has(inner));
  rc.RemoveLocal(outer);
  EXPECT_FALSE(rc.Has(outer));
  EXPECT_FALSE(rc.Has(inner));
  ASSERT_EQ(released.size(), 2u);
  EXPECT_EQ(released[0], outer);  // the outer first, then what it held
  EXPECT_EQ(released[1], inner);
}

TEST(ReferenceCounterOwnershipTest, OwnedObjectWithABorrowerIsNotReleased) {
  int releases = 0;
  ReferenceCounter rc([&](const ObjectID&, const ReferenceCounter::Ref&) { releases++; });
  ObjectID x = ObjectID::FromRandom();
  rc.AddOwned(x);
  ASSERT_TRUE(rc.AddBorrower(x, "/b.sock"));
  ASSERT_TRUE(rc.AddBorrower(x, "/b.sock"));  // registered twice (itself + on its behalf)
  rc.RemoveLocal(x);
  EXPECT_EQ(releases, 0);
  EXPECT_EQ(rc.Find(x)->BorrowerCount(), 1);
  rc.RemoveBorrower(x, "/b.sock", 1);
  EXPECT_EQ(releases, 0);
  rc.RemoveBorrower(x, "/b.sock", 1);
  EXPECT_EQ(releases, 1);
  EXPECT_EQ(rc.bad_decrements(), 0u);
}

TEST(ReferenceCounterOwnershipTest, DropBorrowerReleasesWhatOnlyItHeld) {
  std::vector<ObjectID> released;
  ReferenceCounter rc([&](const ObjectID& id, const ReferenceCounter::Ref&) { released.push_back(id); });
  ObjectID x = ObjectID::FromRandom(), y = ObjectID::FromRandom();
  rc.AddOwned(x, 0);
  rc.AddOwned(y, 1);
  rc.AddBorrower(x, "/dead.sock");
  rc.AddBorrower(y, "/dead.sock");
  rc.AddBorrower(y, "/alive.sock");
  auto ids = rc.DropBorrower("/dead.sock");
  EXPECT_EQ(ids.size(), 2u);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0], x);
  EXPECT_TRUE(rc.Has(y));
}

TEST(ReferenceCounterOwnershipTest, BorrowedEntryReportsItsRegistrationsOnRelease) {
  int64_t given_back = -1;
  ReferenceCounter rc([&](const ObjectID&, const ReferenceCounter::Ref& r) { given_back = r.registered; });
  ObjectID x = ObjectID::FromRandom();
  EXPECT_TRUE(rc.AddLocal(x, "/owner.sock"));   // new borrowed entry: register
  EXPECT_FALSE(rc.AddLocal(x, "/owner.sock"));  // known: no second registration
  rc.AddRegistered(x, 1);
  rc.AddContained(x, "/owner.sock");
  rc.AddRegistered(x, 1);  // a return value holding x, registered on our behalf
  rc.RemoveLocal(x, 2);
  EXPECT_EQ(given_back, -1);
  rc.RemoveContained(x);
  EXPECT_EQ(given_back, 2);
}

TEST(ReferenceCounterOwnershipTest, BorrowerOfUnknownObjectIsNotRecorded) {
  ReferenceCounter rc([](const ObjectID&, const ReferenceCounter::Ref&) {});
  ObjectID x = ObjectID::FromRandom();
  EXPECT_FALSE(rc.AddBorrower(x, "/b.sock"));
  rc.AddLocal(x, "/owner.sock");
  EXPECT_FALSE(rc.AddBorrower(x, "/b.sock")) << "only owners record borrowers";
}

}  // namespace
}  // namespace rayts
