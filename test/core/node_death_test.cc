// The owner's side of a node's death (CoreWorker::OnNodeDiedLocked over a
// fake transport): a NodeDied notice asks again, at the owner's own node,
// what waited at the dead node; closes the leases it granted (what ran
// there is retried); names the node's death when a task's retries are out;
// rebuilds an owned object whose primary copy was there from lineage, or
// makes it an ObjectLostError naming the death; fails fetches from owners
// that lived there; and a node that keeps failing before it is marked dead
// is asked again with backoff, not in a hot loop. And DeadNodes / OnNodeOf
// tell whose process is whose.
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
