// PullManager: chunk assembly and pull bookkeeping between two real plasma
// stores (a source node's and a destination node's, each over its own
// memory); the chunk requests are answered from the source store by the
// test, in the order it chooses, as a node server would from its socket.
#include "core/raylet/object_pull.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <optional>
#include <vector>

#include "core/plasma/plasma_store.h"
#include "test/core/test_util.h"

namespace rayts::raylet {
namespace {

using test::Id;

constexpr plasma::ClientId kPuller = 99;
constexpr plasma::ClientId kServer = 7;
constexpr uint64_t kChunk = 1000;

struct Req {
  NodeID from;
  uint64_t id = 0;
  ObjectID object;
  uint64_t offset = 0, length = 0;
};

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(/*dest_capacity=*/64 * 1024, /*in_flight=*/2 * kChunk); }

  void Make(uint64_t dest_capacity, uint64_t in_flight) {
    src_mem_.assign(64 * 1024, 0);
    dst_mem_.assign(dest_capacity, 0);
    src_.emplace(src_mem_.size(), src_mem_.data());
    dst_.emplace(dst_mem_.size(), dst_mem_.data());
    PullManager::Hooks h;
    h.create = [this](const ObjectID& id, uint64_t size) -> StatusOr<uint8_t*> {
      auto off = dst_->Create(kPuller, id, size, /*pinned=*/false, /*allow_spill=*/false);
      if (!off.ok()) return off.status();
      return dst_mem_.data() + *off;
    };
    h.seal = [this](const ObjectID& id) {
      return dst_->Seal(kPuller, id);
    };
    h.abort = [this](const ObjectID& id) { (void)dst_->Abort(kPuller, id); };
    h.request_chunk = [this](const NodeID& from, uint64_t req, const ObjectID& id, uint64_t off, uint64_t len) {
      if (from == unreachable_) return false;
      reqs_.push_back(Req{from, req, id, off, len});
      return true;
    };
    pm_.emplace(PullManager::Options{kChunk, in_flight}, std::move(h));
  }

  // An object of `size` bytes sealed in the source store, byte i = (i * 7 + seed).
  void PutAtSource(const ObjectID& id, uint64_t size, uint8_t seed) {
    auto off = src_->Create(kServer, id, size, /*pinned=*/true);
    ASSERT_TRUE(off.ok()) << off.status().ToString();
    for (uint64_t i = 0; i < size; i++) src_mem_[*off + i] = static_cast<uint8_t>(i * 7 + seed);
    ASSERT_TRUE(src_->Seal(kServer, id).ok());
  }

  // Answers request `r` from the source store, as ServeChunk does.
  void Answer(const Req& r) {
    std::optional<plasma::GetResult> g;
    uint64_t gid = src_->Get(kServer, {r.object}, [&](std::vector<plasma::GetResult> rs) { g = rs[0]; });
    if (gid != 0) src_->CancelGet(gid);
    ASSERT_TRUE(g && g->found);
    pm_->OnChunk(r.id, Status::OK(), g->size, r.offset, src_mem_.data() + g->offset + r.offset, r.length);
    src_->Release(kServer, r.object);
  }

  Req Take() {
    EXPECT_FALSE(reqs_.empty());
    Req r = reqs_.front();
    reqs_.pop_front();
    return r;
  }

  // The destination's sealed copy equals the source's.
  void ExpectSameBytes(const ObjectID& id) {
    std::optional<plasma::GetResult> s, d;
    uint64_t g1 = src_->Get(kServer, {id}, [&](std::vector<plasma::GetResult> rs) { s = rs[0]; });
    uint64_t g2 = dst_->Get(kServer, {id}, [&](std::vector<plasma::GetResult> rs) { d = rs[0]; });
    if (g1) src_->CancelGet(g1);
    if (g2) dst_->CancelGet(g2);
    ASSERT_TRUE(s && s->found);
    ASSERT_TRUE(d && d->found) << "not sealed at the destination";
    ASSERT_EQ(s->size, d->size);
    EXPECT_EQ(0, std::memcmp(src_mem_.data() + s->offset, dst_mem_.data() + d->offset, s->size));
    src_->Release(kServer, id);
    dst_->Release(kServer, id);
  }

  std::vector<uint8_t> src_mem_, dst_mem_;
  std::optional<plasma::PlasmaStore> src_, dst_;
  std::optional<PullManager> pm_;
  std::deque<Req> reqs_;
  NodeID node_ = NodeID::FromRandom();
  NodeID unreachable_ = NodeID::FromRandom();
};

TEST_F(PullTest, ChunksAnsweredOutOfOrderAssembleTheObjectWithinTheInFlightBound) {
  ObjectID id = Id(1);
  const uint64_t size = 4 * kChunk + 123;  // 5 chunks, the last short
  PutAtSource(id, size, 3);
  std::vector<Status> done;
  EXPECT_TRUE(pm_->Pull(id, node_, size, [&](const Status& s) { done.push_back(s); }));
  // Two chunks in flight at most (2 * kChunk).
  ASSERT_EQ(reqs_.size(), 2u);
  EXPECT_EQ(pm_->bytes_in_flight(), 2 * kChunk);
  EXPECT_EQ(reqs_[0].offset, 0u);
  EXPECT_EQ(reqs_[1].offset, kChunk);
  EXPECT_EQ(reqs_[0].from, node_);
  Req first = Take(), second = Take();
  Answer(second);  // out of order
  ASSERT_EQ(reqs_.size(), 1u);
  EXPECT_EQ(reqs_[0].offset, 2 * kChunk);
  Answer(first);
  while (!reqs_.empty()) {
    EXPECT_LE(pm_->bytes_in_flight(), 2 * kChunk);
    Answer(Take());
  }
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].ok()) << done[0].ToString();
  EXPECT_EQ(pm_->bytes_in_flight(), 0u);
  EXPECT_EQ(pm_->stats().chunks, 5u);
  EXPECT_EQ(pm_->stats().bytes, size);
  EXPECT_FALSE(pm_->Pulling(id));
  ExpectSameBytes(id);
}

TEST_F(PullTest, ASecondPullOfTheSameObjectJoinsTheFirst) {
  ObjectID id = Id(2);
  PutAtSource(id, kChunk + 1, 9);
  int ok = 0;
  EXPECT_TRUE(pm_->Pull(id, node_, kChunk + 1, [&](const Status& s) { ok += s.ok(); }));
  EXPECT_FALSE(pm_->Pull(id, node_, kChunk + 1, [&](const Status& s) { ok += s.ok(); }));
  EXPECT_EQ(reqs_.size(), 2u);  // one transfer's chunks only
  while (!reqs_.empty()) Answer(Take());
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(pm_->stats().started, 1u);
  EXPECT_EQ(pm_->stats().merged, 1u);
  EXPECT_EQ(pm_->stats().bytes, kChunk + 1);
  ExpectSameBytes(id);
}

TEST_F(PullTest, APullThatDoesNotFitFailsNamingTheObject) {
  Make(/*dest_capacity=*/2 * kChunk, 2 * kChunk);
  ObjectID id = Id(3);
  PutAtSource(id, 3 * kChunk, 1);
  std::optional<Status> done;
  EXPECT_FALSE(pm_->Pull(id, node_, 3 * kChunk, [&](const Status& s) { done = s; }));
  ASSERT_TRUE(done);
  EXPECT_EQ(done->code(), StatusCode::kOutOfMemory);
  EXPECT_NE(done->message().find(id.Hex()), std::string::npos) << done->message();
  EXPECT_TRUE(reqs_.empty());
  EXPECT_FALSE(pm_->Pulling(id));
}

TEST_F(PullTest, AFailedChunkAbortsTheCopyAndAnswersEveryWaiter) {
  ObjectID id = Id(4);
  std::vector<Status> done;
  pm_->Pull(id, node_, 3 * kChunk, [&](const Status& s) { done.push_back(s); });
  pm_->Pull(id, node_, 3 * kChunk, [&](const Status& s) { done.push_back(s); });
  Req r = Take();
  pm_->OnChunk(r.id, Status::ObjectLost("not in the object store of node x"), 0, r.offset, nullptr, 0);
  ASSERT_EQ(done.size(), 2u);
  for (auto& s : done) EXPECT_EQ(s.code(), StatusCode::kObjectLost);
  EXPECT_EQ(pm_->bytes_in_flight(), 0u);
  EXPECT_FALSE(dst_->Contains(id));  // aborted: a later pull may create it again
  // The late answer of the other outstanding chunk is ignored.
  Req late = Take();
  pm_->OnChunk(late.id, Status::OK(), 3 * kChunk, late.offset, nullptr, 0);
  EXPECT_EQ(pm_->stats().failed, 1u);
  EXPECT_EQ(pm_->stats().chunks, 0u);
}

TEST_F(PullTest, AChunkThatDisagreesWithTheRequestFailsThePull) {
  ObjectID id = Id(5);
  std::optional<Status> done;
  pm_->Pull(id, node_, kChunk, [&](const Status& s) { done = s; });
  Req r = Take();
  std::vector<uint8_t> bytes(kChunk, 1);
  pm_->OnChunk(r.id, Status::OK(), 2 * kChunk, 0, bytes.data(), bytes.size());  // the object is bigger there
  ASSERT_TRUE(done);
  EXPECT_EQ(done->code(), StatusCode::kIOError);
  EXPECT_FALSE(dst_->Contains(id));
}

TEST_F(PullTest, ALostNodeFailsOnlyItsPullsAndAnUnreachableOneFailsAtOnce) {
  ObjectID a = Id(6), b = Id(7), c = Id(8);
  NodeID other = NodeID::FromRandom();
  PutAtSource(b, 10, 2);
  std::optional<Status> da, db, dc;
  pm_->Pull(a, node_, 10, [&](const Status& s) { da = s; });
  pm_->Pull(b, other, 10, [&](const Status& s) { db = s; });
  pm_->OnNodeGone(node_, Status::IOError("the connection closed"));
  ASSERT_TRUE(da);
  EXPECT_EQ(da->code(), StatusCode::kIOError);
  EXPECT_FALSE(db);
  Req rb = reqs_.back();
  ASSERT_EQ(rb.object, b);
  Answer(rb);
  ASSERT_TRUE(db);
  EXPECT_TRUE(db->ok());
  pm_->Pull(c, unreachable_, 10, [&](const Status& s) { dc = s; });
  ASSERT_TRUE(dc);
  EXPECT_EQ(dc->code(), StatusCode::kObjectLost);  // a get that meets it rebuilds the object (reliability.md)
  EXPECT_FALSE(dst_->Contains(c));
}

TEST_F(PullTest, AnEmptyObjectIsSealedWithoutAChunk) {
  ObjectID id = Id(9);
  std::optional<Status> done;
  pm_->Pull(id, node_, 0, [&](const Status& s) { done = s; });
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->ok());
  EXPECT_TRUE(reqs_.empty());
  EXPECT_TRUE(dst_->Contains(id));
}

}  // namespace
}  // namespace rayts::raylet
