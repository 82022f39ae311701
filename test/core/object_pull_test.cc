// PullManager: chunk assembly and pull bookkeeping between two real plasma
// stores (a source node's and a destination node's, each over its own
// memory); the chunk requests are answered from the source store by the
// test, in the order it chooses, as a node server would from its socket.
#include "core/raylet/object_pull.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
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

  void Make(uint64_t dest_capacity, uint64_t in_flight, uint64_t max_pulling = 0) {
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
    h.after = [this](std::chrono::milliseconds delay, std::function<void()> fn) {
      timers_.push_back(Timer{delay, std::move(fn)});
    };
    pm_.emplace(PullManager::Options{kChunk, in_flight, max_pulling, dest_capacity}, std::move(h));
    dst_->SetRoomCallback([this] { room_++; });
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
  struct Timer {
    std::chrono::milliseconds delay;
    std::function<void()> fn;
  };
  std::vector<Timer> timers_;  // Hooks::after: the test fires them
  int room_ = 0;               // the destination store's room callbacks
  NodeID node_ = NodeID::FromRandom();
  NodeID unreachable_ = NodeID::FromRandom();
};

TEST_F(PullTest, ChunksAnsweredOutOfOrderAssembleTheObjectWithinTheInFlightBound) {
  ObjectID id = Id(1);
  const uint64_t size = 4 * kChunk + 123;  // 5 chunks, the last short
  PutAtSource(id, size, 3);
  std::vector<Status> done;
  EXPECT_EQ(pm_->Pull(id, node_, size, [&](const Status& s) { done.push_back(s); }), PullManager::Outcome::kStarted);
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
  EXPECT_EQ(pm_->Pull(id, node_, kChunk + 1, [&](const Status& s) { ok += s.ok(); }), PullManager::Outcome::kStarted);
  EXPECT_EQ(pm_->Pull(id, node_, kChunk + 1, [&](const Status& s) { ok += s.ok(); }), PullManager::Outcome::kJoined);
  EXPECT_EQ(reqs_.size(), 2u);  // one transfer's chunks only
  while (!reqs_.empty()) Answer(Take());
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(pm_->stats().started, 1u);
  EXPECT_EQ(pm_->stats().merged, 1u);
  EXPECT_EQ(pm_->stats().bytes, kChunk + 1);
  ExpectSameBytes(id);
}

TEST_F(PullTest, APullBiggerThanTheWholeStoreFailsAtOnceNamingTheObject) {
  Make(/*dest_capacity=*/2 * kChunk, 2 * kChunk);
  ObjectID id = Id(3);
  PutAtSource(id, 3 * kChunk, 1);
  std::optional<Status> done;
  EXPECT_EQ(pm_->Pull(id, node_, 3 * kChunk, [&](const Status& s) { done = s; }), PullManager::Outcome::kFailed);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->code(), StatusCode::kOutOfMemory);
  EXPECT_NE(done->message().find(id.Hex()), std::string::npos) << done->message();
  EXPECT_NE(done->message().find("bigger than the whole object store"), std::string::npos) << done->message();
  EXPECT_TRUE(reqs_.empty());
  EXPECT_TRUE(timers_.empty());  // not queued: no wait
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


// Admission: a pull that does not fit waits in the queue (no chunk asked,
// no copy created) and starts once the store frees room.
TEST_F(PullTest, APullThatDoesNotFitWaitsAndStartsWhenTheStoreFreesRoom) {
  Make(/*dest_capacity=*/4 * kChunk, 2 * kChunk);
  ObjectID local = Id(20), id = Id(21);
  auto off = dst_->Create(kServer, local, 3 * kChunk, /*pinned=*/true);  // a primary of this node
  ASSERT_TRUE(off.ok());
  ASSERT_TRUE(dst_->Seal(kServer, local).ok());
  PutAtSource(id, 2 * kChunk, 5);
  std::optional<Status> done;
  EXPECT_EQ(pm_->Pull(id, node_, 2 * kChunk, [&](const Status& s) { done = s; }), PullManager::Outcome::kQueued);
  EXPECT_FALSE(done);
  EXPECT_TRUE(pm_->Queued(id));
  EXPECT_TRUE(reqs_.empty());
  EXPECT_FALSE(dst_->Contains(id));
  ASSERT_EQ(timers_.size(), 1u);  // its bound is armed
  EXPECT_EQ(timers_[0].delay, PullManager::kDefaultQueueBound);
  // Room that is not enough yet changes nothing.
  pm_->OnRoom();
  EXPECT_TRUE(pm_->Queued(id));
  // The owner frees the local object: the store reports room, the pull starts.
  int room = room_;
  dst_->Delete(local);
  EXPECT_GT(room_, room);
  pm_->OnRoom();  // as the node server posts it
  EXPECT_FALSE(pm_->Queued(id));
  EXPECT_TRUE(pm_->Pulling(id));
  EXPECT_EQ(reqs_.size(), 2u);
  while (!reqs_.empty()) Answer(Take());
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->ok()) << done->ToString();
  EXPECT_EQ(pm_->stats().queued, 1u);
  ExpectSameBytes(id);
  timers_[0].fn();  // the bound passing after the start changes nothing
  EXPECT_TRUE(done->ok());
}

// A second pull of a queued object joins it; an object made evictable
// (a reader released the last ref of an unpinned copy) is room too.
TEST_F(PullTest, AnEvictableObjectIsRoomAndJoinedWaitersAreAllAnswered) {
  Make(/*dest_capacity=*/4 * kChunk, 2 * kChunk);
  ObjectID copy = Id(22), id = Id(23);
  auto off = dst_->Create(kServer, copy, 3 * kChunk, /*pinned=*/false);  // a secondary copy, read by kServer
  ASSERT_TRUE(off.ok());
  ASSERT_TRUE(dst_->Seal(kServer, copy).ok());
  std::optional<plasma::GetResult> g;
  uint64_t gid = dst_->Get(kServer, {copy}, [&](std::vector<plasma::GetResult> rs) { g = rs[0]; });
  if (gid) dst_->CancelGet(gid);
  ASSERT_TRUE(g && g->found);  // a reader holds it: not evictable
  PutAtSource(id, 2 * kChunk, 6);
  int ok = 0;
  EXPECT_EQ(pm_->Pull(id, node_, 2 * kChunk, [&](const Status& s) { ok += s.ok(); }), PullManager::Outcome::kQueued);
  EXPECT_EQ(pm_->Pull(id, node_, 2 * kChunk, [&](const Status& s) { ok += s.ok(); }), PullManager::Outcome::kJoined);
  int room = room_;
  dst_->Release(kServer, copy);  // evictable now
  EXPECT_GT(room_, room);
  pm_->OnRoom();
  ASSERT_FALSE(pm_->Queued(id));
  while (!reqs_.empty()) Answer(Take());
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(pm_->stats().started, 1u);
  EXPECT_FALSE(dst_->Contains(copy));  // evicted for the pull
  ExpectSameBytes(id);
}

// Queued pulls start highest priority first (get, wait, task argument),
// in arrival order within one, and a get joining a queued argument pull
// raises it. Here the bound on bytes being pulled holds them back.
TEST_F(PullTest, QueuedPullsStartByPriorityThenArrival) {
  Make(/*dest_capacity=*/64 * 1024, 2 * kChunk, /*max_pulling=*/kChunk);
  ObjectID first = Id(30), arg = Id(31), arg2 = Id(32), wait = Id(33), get1 = Id(34), get2 = Id(35);
  for (auto& id : {first, arg, arg2, wait, get1, get2}) PutAtSource(id, kChunk, 1);
  std::vector<ObjectID> finished;
  auto pull = [&](const ObjectID& id, PullPriority p) {
    return pm_->Pull(id, {node_}, kChunk, p, std::chrono::milliseconds(1000), [&finished, id](const Status& s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      finished.push_back(id);
    });
  };
  EXPECT_EQ(pull(first, PullPriority::kTaskArgument), PullManager::Outcome::kStarted);
  EXPECT_EQ(pull(arg, PullPriority::kTaskArgument), PullManager::Outcome::kQueued);
  EXPECT_EQ(pull(arg2, PullPriority::kTaskArgument), PullManager::Outcome::kQueued);
  EXPECT_EQ(pull(wait, PullPriority::kWait), PullManager::Outcome::kQueued);
  EXPECT_EQ(pull(get1, PullPriority::kGet), PullManager::Outcome::kQueued);
  EXPECT_EQ(pull(get2, PullPriority::kGet), PullManager::Outcome::kQueued);
  // A get joins the queued argument pull: it moves up to the gets (keeping its arrival: first of them).
  EXPECT_EQ(pull(arg2, PullPriority::kGet), PullManager::Outcome::kJoined);
  EXPECT_EQ(pm_->num_queued(), 5u);
  EXPECT_EQ(pm_->bytes_pulling(), kChunk);
  while (!reqs_.empty()) {
    ASSERT_EQ(reqs_.size(), 1u);  // one pull under way at a time (the bound)
    Answer(Take());
  }
  // arg2 had two waiters: it finishes twice.
  std::vector<ObjectID> want{first, arg2, arg2, get1, get2, wait, arg};
  EXPECT_EQ(finished, want);
  EXPECT_EQ(pm_->num_queued(), 0u);
  EXPECT_EQ(pm_->bytes_pulling(), 0u);
}

// A queued pull waits for its bound only: then it fails with the full-store
// error naming the object, and the pull it held back may start.
TEST_F(PullTest, AQueuedPullFailsAtItsBoundNamingTheObject) {
  Make(/*dest_capacity=*/4 * kChunk, 2 * kChunk);
  ObjectID local = Id(40), big = Id(41), small = Id(42);
  auto off = dst_->Create(kServer, local, 2 * kChunk, /*pinned=*/true);
  ASSERT_TRUE(off.ok());
  ASSERT_TRUE(dst_->Seal(kServer, local).ok());
  PutAtSource(small, kChunk, 2);
  std::optional<Status> dbig, dsmall;
  EXPECT_EQ(pm_->Pull(big, {node_}, 3 * kChunk, PullPriority::kGet, std::chrono::milliseconds(250),
                      [&](const Status& s) { dbig = s; }),
            PullManager::Outcome::kQueued);
  // Fits, but a get is queued ahead of this argument pull: it waits behind it.
  EXPECT_EQ(pm_->Pull(small, {node_}, kChunk, PullPriority::kTaskArgument, std::chrono::milliseconds(5000),
                      [&](const Status& s) { dsmall = s; }),
            PullManager::Outcome::kQueued);
  ASSERT_EQ(timers_.size(), 2u);
  EXPECT_EQ(timers_[0].delay, std::chrono::milliseconds(250));
  timers_[0].fn();
  ASSERT_TRUE(dbig);
  EXPECT_EQ(dbig->code(), StatusCode::kOutOfMemory);
  EXPECT_NE(dbig->message().find(big.Hex()), std::string::npos) << dbig->message();
  EXPECT_NE(dbig->message().find("waited 250 ms"), std::string::npos) << dbig->message();
  EXPECT_FALSE(pm_->Pulling(big));
  EXPECT_FALSE(dst_->Contains(big));
  // The small pull starts now.
  EXPECT_FALSE(pm_->Queued(small));
  while (!reqs_.empty()) Answer(Take());
  ASSERT_TRUE(dsmall);
  EXPECT_TRUE(dsmall->ok()) << dsmall->ToString();
  EXPECT_EQ(pm_->stats().failed, 1u);
}

// Sources: a failed chunk moves the pull to the next source, which is asked
// for the chunks not received (the received ones are kept).
TEST_F(PullTest, AFailedSourceHandsThePullToTheNextKeepingTheReceivedChunks) {
  ObjectID id = Id(50);
  const uint64_t size = 3 * kChunk + 10;
  PutAtSource(id, size, 4);
  NodeID second = NodeID::FromRandom();
  std::optional<Status> done;
  EXPECT_EQ(pm_->Pull(id, {node_, second}, size, PullPriority::kGet, std::chrono::milliseconds(1000),
                      [&](const Status& s) { done = s; }),
            PullManager::Outcome::kStarted);
  Req a0 = Take(), a1 = Take();
  EXPECT_EQ(a0.from, node_);
  Answer(a0);                       // chunk 0 from the first source
  Req a2 = Take();                  // chunk 2 asked of it
  EXPECT_EQ(a2.from, node_);
  pm_->OnChunk(a1.id, Status::ObjectLost("not in the object store of node x"), 0, a1.offset, nullptr, 0);
  EXPECT_FALSE(done);
  EXPECT_EQ(pm_->stats().retried, 1u);
  // Chunks 1 and 2 (and then 3) go to the second source; chunk 0 is not asked again.
  std::vector<uint64_t> offsets;
  while (!reqs_.empty()) {
    Req r = Take();
    EXPECT_EQ(r.from, second);
    offsets.push_back(r.offset);
    Answer(r);
  }
  std::sort(offsets.begin(), offsets.end());
  EXPECT_EQ(offsets, (std::vector<uint64_t>{kChunk, 2 * kChunk, 3 * kChunk}));
  Answer(a2);  // the late answer of the failed source: ignored
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->ok()) << done->ToString();
  EXPECT_EQ(pm_->stats().bytes, size);
  ExpectSameBytes(id);
}

// An unreachable or lost source is passed over too; when every source has
// failed, the pull fails with the last one's error.
TEST_F(PullTest, UnreachableAndLostSourcesArePassedOverUntilNoneIsLeft) {
  ObjectID id = Id(51), lost = Id(52);
  PutAtSource(id, 10, 8);
  NodeID second = NodeID::FromRandom(), third = NodeID::FromRandom();
  std::optional<Status> done, dlost;
  pm_->Pull(id, {unreachable_, second}, 10, PullPriority::kWait, std::chrono::milliseconds(1000),
            [&](const Status& s) { done = s; });
  ASSERT_EQ(reqs_.size(), 1u);
  EXPECT_EQ(reqs_[0].from, second);
  pm_->OnNodeGone(second, Status::ObjectLost("the connection to node 2 closed"));
  // `id` had no source left after `second`.
  ASSERT_TRUE(done);
  EXPECT_EQ(done->code(), StatusCode::kObjectLost);
  EXPECT_NE(done->message().find("any of the 2 nodes"), std::string::npos) << done->message();
  EXPECT_NE(done->message().find("connection to node 2 closed"), std::string::npos) << done->message();
  EXPECT_FALSE(dst_->Contains(id));
  reqs_.pop_front();  // its request to second, never answered
  pm_->Pull(lost, {second, third}, 10, PullPriority::kGet, std::chrono::milliseconds(1000),
            [&](const Status& s) { dlost = s; });
  ASSERT_EQ(reqs_.size(), 1u);
  EXPECT_EQ(reqs_[0].from, second);
  pm_->OnNodeGone(second, Status::ObjectLost("gone"));
  ASSERT_EQ(reqs_.size(), 2u);
  EXPECT_EQ(reqs_[1].from, third);
  EXPECT_FALSE(dlost);
  PutAtSource(lost, 10, 1);
  reqs_.pop_front();
  Answer(Take());  // from third
  ASSERT_TRUE(dlost);
  EXPECT_TRUE(dlost->ok()) << dlost->ToString();
}
}  // namespace
}  // namespace rayts::raylet
