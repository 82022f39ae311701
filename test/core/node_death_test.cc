// The owner's side of a node's death (CoreWorker::OnNodeDiedLocked over a
// fake transport): a NodeDied notice asks again, at the owner's own node,
// what waited at the dead node; closes the leases it granted (what ran
// there is retried); names the node's death when a task's retries are out;
// rebuilds an owned object whose primary copy was there from lineage, or
// makes it an ObjectLostError naming the death; fails fetches from owners
// that lived there; and a node that keeps failing before it is marked dead
// is asked again with backoff, not in a hot loop. The copies a node reports
// (ObjectLocationsUpdate) are named to getters, and when the primary's node
// dies a copy elsewhere becomes the primary (no rebuild). And DeadNodes /
// OnNodeOf tell whose process is whose.
#include <gtest/gtest.h>

#include "core/core_worker/dead_nodes.h"
#include "test/core/fake_transport.h"

namespace rayts::test {
namespace {

using proto::Body;
using Fbb = flatbuffers::FlatBufferBuilder;
constexpr const char* kNodeB = "10.0.0.2:7002";
constexpr const char* kSocketB = "/tmp/s_b/sockets/node.sock";
constexpr const char* kWorkerB = "/tmp/s_b/sockets/w1.sock@10.0.0.2:7100";

Frame NodeDiedFrame(const NodeID& id, const std::string& reason) {
  Fbb fbb(256);
  auto nid = fbb.CreateVector(id.data(), NodeID::kSize);
  return FinishFrame(fbb, proto::CreateNodeDied(fbb, nid, fbb.CreateString(kSocketB), fbb.CreateString(kNodeB),
                                                fbb.CreateString(reason)));
}

// A reply of `task` whose one return value is in plasma on node `node`.
Frame PlasmaReplyFrame(const TaskID& task, const NodeID& node, uint64_t size) {
  Fbb fbb(256);
  ObjectID id = ObjectIdFor(task, 1);
  auto oid = fbb.CreateVector(id.data(), ObjectID::kSize);
  auto nid = fbb.CreateVector(node.data(), NodeID::kSize);
  std::vector<flatbuffers::Offset<proto::ReturnObject>> rets{
      proto::CreateReturnObject(fbb, oid, 0, /*in_plasma=*/true, false, size, 0, nid)};
  auto rv = fbb.CreateVector(rets);
  auto tid = fbb.CreateVector(task.data(), TaskID::kSize);
  return FinishFrame(fbb, proto::CreatePushTaskReply(fbb, tid, 0, 0, rv));
}

class NodeDeathTest : public FakeTransportTest {
 protected:
  void SetUp() override {
    StartWorker("/tmp/s_a/sockets/driver.sock@10.0.0.1:7000");
    cls_ = RegisterClass("f", "(x) => x");
  }
  TaskID Submit(int max_retries, ObjectID* ret) {
    SubmitRequest r;
    r.cls = cls_;
    r.max_retries = max_retries;
    std::vector<ObjectID> ids;
    auto tid = cw_->submitter().Submit(std::move(r), &ids);
    EXPECT_TRUE(tid.ok());
    *ret = ids.at(0);
    return *tid;
  }
  std::vector<const proto::Envelope*> LocalRequests() { return t_.NodeFrames(Body::RequestWorkerLease); }
  void SpillToB() {
    uint64_t id = LocalRequests().back()->body_as_RequestWorkerLease()->request_id();
    t_.DeliverControl(*cw_, SpillbackFrame(id, kNodeB));
  }
  uint64_t LastAtB() {
    return t_.PeerAt(kNodeB)->link->Of(Body::RequestWorkerLease).back()->body_as_RequestWorkerLease()->request_id();
  }
  // The task runs on a worker B granted.
  void RunOnB() {
    SpillToB();
    t_.DeliverFromPeer(kNodeB, LeaseGrantFrame(LastAtB(), 21, kWorkerB));
    ASSERT_EQ(t_.PeerAt(kWorkerB)->link->Of(Body::PushTask).size(), 1u);
  }
  void BDies() { t_.DeliverControl(*cw_, NodeDiedFrame(b_, "failed 3 health checks in a row")); }

  std::shared_ptr<const TaskClass> cls_;
  NodeID b_ = NodeID::FromRandom();
};

TEST_F(NodeDeathTest, ARequestWaitingAtTheDeadNodeIsAskedAgainHere) {
  ObjectID ret;
  Submit(3, &ret);
  SpillToB();
  ASSERT_EQ(LocalRequests().size(), 1u);
  BDies();  // B's connection still looks open: the notice alone does it
  ASSERT_EQ(LocalRequests().size(), 2u);
  EXPECT_FALSE(LocalRequests()[1]->body_as_RequestWorkerLease()->grant_or_reject());
  EXPECT_TRUE(t_.PeerAt(kNodeB)->link->closed());
}

TEST_F(NodeDeathTest, ATaskRunningThereIsRetriedAndWithoutRetriesFailsNamingTheDeath) {
  ObjectID ret;
  Submit(1, &ret);
  RunOnB();
  BDies();
  EXPECT_TRUE(t_.PeerAt(kWorkerB)->link->closed()) << "the lease's worker is given up";
  t_.ClosePeer(kWorkerB);
  ASSERT_EQ(LocalRequests().size(), 2u) << "retried: a new lease is asked for here";
  EXPECT_FALSE(cw_->objects().TryGet(ret).ready);
  EXPECT_TRUE(t_.PeerAt(kNodeB)->link->Of(Body::ReturnWorkerLease).empty()) << "nothing goes back to a dead node";
}

TEST_F(NodeDeathTest, RetriesOutTheCrashNamesTheNodesDeathOnceItIsKnown) {
  ObjectID ret;
  Submit(0, &ret);
  RunOnB();
  t_.ClosePeer(kWorkerB);  // the kill closes the connection before the GCS says anything
  EXPECT_FALSE(cw_->objects().TryGet(ret).ready) << "waits for why (no WorkerDied comes for another node's worker)";
  t_.Advance(CrashCauses::kWait + std::chrono::milliseconds(1));
  EXPECT_FALSE(cw_->objects().TryGet(ret).ready) << "a remote worker's wait is kRemoteWait";
  BDies();
  auto r = cw_->objects().TryGet(ret);
  ASSERT_TRUE(r.ready);
  std::string v = ValueOf(r);
  EXPECT_NE(v.find("WorkerCrashedError"), std::string::npos) << v;
  EXPECT_NE(v.find("died with its node: node " + b_.Hex() + " died (failed 3 health checks in a row)"),
            std::string::npos)
      << v;
}

TEST_F(NodeDeathTest, AnObjectWhosePrimaryWasThereIsRebuiltFromLineageOrLost) {
  ObjectID kept, lost;
  TaskID t1 = Submit(2, &kept);
  RunOnB();
  t_.DeliverFromPeer(kWorkerB, PlasmaReplyFrame(t1, b_, 1 << 20));
  ASSERT_TRUE(cw_->objects().TryGet(kept).ready);
  TaskID t2 = Submit(0, &lost);
  auto pushes = t_.PeerAt(kWorkerB)->link->Of(Body::PushTask);
  ASSERT_EQ(pushes.size(), 2u);
  t_.DeliverFromPeer(kWorkerB, PlasmaReplyFrame(t2, b_, 1 << 20));
  ASSERT_TRUE(cw_->objects().TryGet(lost).ready);
  size_t before = LocalRequests().size();

  BDies();
  EXPECT_FALSE(cw_->objects().TryGet(kept).ready) << "its task runs again";
  EXPECT_GT(LocalRequests().size(), before) << "the re-run asks for a lease here";
  EXPECT_EQ(cw_->tasks().reconstructions(), 1u);
  auto r = cw_->objects().TryGet(lost);
  ASSERT_TRUE(r.ready);
  std::string v = ValueOf(r);
  EXPECT_NE(v.find("ObjectLostError"), std::string::npos) << v;
  EXPECT_NE(v.find("was lost with its primary copy: node " + b_.Hex() + " died"), std::string::npos) << v;
}

TEST_F(NodeDeathTest, AFetchFromAnOwnerThatLivedThereFailsWithOwnerDied) {
  ObjectID id = ObjectID::FromRandom();
  const std::string owner = "/tmp/s_b/sockets/w9.sock@10.0.0.2:7200";
  cw_->objects().AddLocalRef(id, owner);
  cw_->objects().Subscribe(id, owner);
  EXPECT_FALSE(cw_->objects().TryGet(id).ready);
  BDies();
  auto r = cw_->objects().TryGet(id);
  ASSERT_TRUE(r.ready);
  std::string v = ValueOf(r);
  EXPECT_NE(v.find("OwnerDiedError"), std::string::npos) << v;
  EXPECT_NE(v.find("could be fetched: node " + b_.Hex() + " died"), std::string::npos) << v;
}

TEST_F(NodeDeathTest, ANodeThatKeepsFailingBeforeItIsMarkedDeadIsAskedWithBackoffNotInAHotLoop) {
  ObjectID ret;
  Submit(3, &ret);
  t_.unreachable.insert(kNodeB);  // killed; the GCS has not noticed, so spillback still names it
  SpillToB();
  t_.RunPosted();
  ASSERT_EQ(LocalRequests().size(), 2u) << "the first failure: asked here again at once";
  SpillToB();
  t_.RunPosted();
  EXPECT_EQ(LocalRequests().size(), 2u) << "the second waits";
  t_.Advance(NodeLinks::kFirstBackoff);
  ASSERT_EQ(LocalRequests().size(), 3u);
  SpillToB();
  t_.Advance(NodeLinks::kFirstBackoff);
  EXPECT_EQ(LocalRequests().size(), 3u) << "the wait doubles";
  t_.Advance(NodeLinks::kFirstBackoff);
  EXPECT_EQ(LocalRequests().size(), 4u);
  // Its death, once known, ends a wait at once.
  SpillToB();
  ASSERT_EQ(LocalRequests().size(), 4u);
  BDies();
  EXPECT_EQ(LocalRequests().size(), 5u);
}

// A node's report of the copies of our objects it gained and lost.
Frame LocationsFrame(const NodeID& node, const std::vector<ObjectID>& added, const std::vector<ObjectID>& removed) {
  Fbb fbb(256);
  auto cat = [&](const std::vector<ObjectID>& ids) {
    std::string s;
    for (auto& id : ids) s.append(reinterpret_cast<const char*>(id.data()), ObjectID::kSize);
    return fbb.CreateVector(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  auto nid = fbb.CreateVector(node.data(), NodeID::kSize);
  auto a = cat(added);
  auto r = cat(removed);
  return FinishFrame(fbb, proto::CreateObjectLocationsUpdate(fbb, nid, a, r));
}

class ObjectCopiesTest : public NodeDeathTest {
 protected:
  // A result of a task run on B, in plasma there; node C reported a copy.
  ObjectID ResultOnBCopiedToC() {
    ObjectID ret;
    TaskID t = Submit(2, &ret);
    RunOnB();
    t_.DeliverFromPeer(kWorkerB, PlasmaReplyFrame(t, b_, 1 << 20));
    EXPECT_TRUE(cw_->objects().TryGet(ret).ready);
    Report(LocationsFrame(c_, {ret}, {}));
    return ret;
  }
  void Report(const Frame& f) {
    CoreGuard lock(cw_->context());
    cw_->OnInboundLocked(inbound_, *Env(f));
  }
  std::vector<NodeID> CopiesOf(const ObjectID& id) {
    CoreGuard lock(cw_->context());
    auto* c = cw_->objects().CopiesOfLocked(id);
    return c ? *c : std::vector<NodeID>{};
  }
  NodeID c_ = NodeID::FromRandom();
  std::shared_ptr<FakeLink> inbound_ = std::make_shared<FakeLink>();
};

TEST_F(ObjectCopiesTest, AReportedCopyIsNamedToGettersAndLeavesWhenReportedGone) {
  ObjectID ret = ResultOnBCopiedToC();
  EXPECT_EQ(CopiesOf(ret), std::vector<NodeID>{c_});
  // A getter of a fourth node is told the primary's node and the copy.
  Fbb fbb(128);
  auto oid = fbb.CreateVector(ret.data(), ObjectID::kSize);
  NodeID d = NodeID::FromRandom();
  auto nid = fbb.CreateVector(d.data(), NodeID::kSize);
  Frame get = FinishFrame(fbb, proto::CreateGetObject(fbb, 7, oid, false, nid));
  auto asker = std::make_shared<FakeLink>();
  {
    CoreGuard lock(cw_->context());
    cw_->OnInboundLocked(asker, *Env(get));
  }
  auto replies = asker->Of(Body::GetObjectReply);
  ASSERT_EQ(replies.size(), 1u);
  auto* item = replies[0]->body_as_GetObjectReply()->item();
  ASSERT_NE(item->copies(), nullptr);
  EXPECT_EQ(NodeID::FromBytes(item->node_id()->data()), b_);
  ASSERT_EQ(item->copies()->size(), NodeID::kSize);
  EXPECT_EQ(NodeID::FromBytes(item->copies()->data()), c_);
  // The owner's own reads pull from B, then from C.
  PullFrom from = cw_->objects().RemoteLocation(ret);
  EXPECT_EQ(from.node, b_);
  EXPECT_EQ(from.sources, std::string(reinterpret_cast<const char*>(c_.data()), NodeID::kSize));
  EXPECT_EQ(from.owner, cw_->context().address());
  // Evicted on C: gone from the set.
  Report(LocationsFrame(c_, {}, {ret}));
  EXPECT_TRUE(CopiesOf(ret).empty());
}

TEST_F(ObjectCopiesTest, WhenThePrimarysNodeDiesTheCopyElsewhereBecomesThePrimary) {
  ObjectID ret = ResultOnBCopiedToC();
  size_t before = LocalRequests().size();
  BDies();
  EXPECT_TRUE(cw_->objects().TryGet(ret).ready) << "not rebuilt: C's copy is the primary now";
  EXPECT_EQ(cw_->tasks().reconstructions(), 0u);
  EXPECT_EQ(LocalRequests().size(), before) << "no re-run asks for a lease";
  EXPECT_EQ(cw_->objects().RemoteLocation(ret).node, c_);
  auto pins = t_.NodeFrames(Body::PinObjects);
  ASSERT_EQ(pins.size(), 1u);
  EXPECT_EQ(ObjectID::FromBytes(pins[0]->body_as_PinObjects()->object_ids()->data()), ret);
  EXPECT_EQ(NodeID::FromBytes(pins[0]->body_as_PinObjects()->node_ids()->data()), c_);
  // Freed: the new primary's node is told.
  cw_->objects().RemoveLocalRefs(std::vector<ObjectID>{ret});
  auto frees = t_.NodeFrames(Body::FreeObjects);
  ASSERT_FALSE(frees.empty());
  auto* nodes = frees.back()->body_as_FreeObjects()->node_ids();
  ASSERT_NE(nodes, nullptr);
  bool names_c = false;
  for (size_t i = 0; i + NodeID::kSize <= nodes->size(); i += NodeID::kSize) names_c |= NodeID::FromBytes(nodes->data() + i) == c_;
  EXPECT_TRUE(names_c);
}

TEST_F(ObjectCopiesTest, LocalityCountsTheArgumentBytesOnEveryCopysNode) {
  ObjectID x = ResultOnBCopiedToC();  // 1 MiB on B, a copy on C
  ObjectID y;
  TaskID ty = Submit(2, &y);  // runs on B's worker too; its 1 MiB result lies on C only
  ASSERT_EQ(t_.PeerAt(kWorkerB)->link->Of(Body::PushTask).size(), 2u);
  t_.DeliverFromPeer(kWorkerB, PlasmaReplyFrame(ty, c_, 1 << 20));
  ASSERT_TRUE(cw_->objects().TryGet(y).ready);
  // A task taking both: C holds 2 MiB of them, B 1 MiB (a tie, without the copy).
  SubmitRequest r;
  r.cls = cls_;
  r.args = {TaskArgIn::Ref(x, ""), TaskArgIn::Ref(y, "")};
  std::vector<ObjectID> ids;
  ASSERT_TRUE(cw_->submitter().Submit(std::move(r), &ids).ok());
  auto* near = LocalRequests().back()->body_as_RequestWorkerLease()->locality_node_id();
  ASSERT_NE(near, nullptr);
  ASSERT_EQ(near->size(), NodeID::kSize);
  EXPECT_EQ(NodeID::FromBytes(near->data()), c_);
}

TEST_F(ObjectCopiesTest, AReportFromADeadNodeIsIgnoredAndItsCopiesGoWithIt) {
  ObjectID ret = ResultOnBCopiedToC();
  Frame died = NodeDiedFrame(c_, "stopped");
  t_.DeliverControl(*cw_, died);
  EXPECT_TRUE(CopiesOf(ret).empty());
  Report(LocationsFrame(c_, {ret}, {}));
  EXPECT_TRUE(CopiesOf(ret).empty()) << "a late report of a dead node";
}

TEST(DeadNodesTest, AProcessIsOfTheNodeWhoseSocketDirectoryItListensIn) {
  EXPECT_TRUE(OnNodeOf(kWorkerB, kSocketB));
  EXPECT_TRUE(OnNodeOf("/tmp/s_b/sockets/w1.sock", kSocketB));
  EXPECT_FALSE(OnNodeOf("/tmp/s_a/sockets/w1.sock@10.0.0.1:7100", kSocketB));
  EXPECT_FALSE(OnNodeOf("10.0.0.2:7002", kSocketB)) << "a node server's TCP address names no process";
  DeadNodes dead;
  NodeID b = NodeID::FromRandom();
  EXPECT_TRUE(dead.Add({b, kSocketB, kNodeB, "stopped"}));
  EXPECT_FALSE(dead.Add({b, kSocketB, kNodeB, "again"}));
  ASSERT_NE(dead.AtManager(kNodeB), nullptr);
  EXPECT_EQ(dead.AtManager(""), nullptr);
  ASSERT_NE(dead.OfProcess(kWorkerB), nullptr);
  EXPECT_EQ(dead.OfProcess(kWorkerB)->Describe(), "node " + b.Hex() + " died (stopped)");
  EXPECT_EQ(dead.Find(NodeID::FromRandom()), nullptr);
}

}  // namespace
}  // namespace rayts::test
