// The owner's side of spillback (NormalTaskSubmitter + NodeLinks over a fake
// transport): a reply naming another node sends the request there with
// grant_or_reject, the lease it grants is used and goes back there; a
// rejection, or the connection to that node breaking while the request
// waits, asks the owner's own node again.
#include <gtest/gtest.h>

#include "test/core/fake_transport.h"

namespace rayts::test {
namespace {

using proto::Body;
using Fbb = flatbuffers::FlatBufferBuilder;
constexpr const char* kNodeB = "10.0.0.2:7002";

Frame RejectedFrame(uint64_t request_id) {
  Fbb fbb(64);
  proto::LeaseReplyBuilder b(fbb);
  b.add_request_id(request_id);
  b.add_rejected(true);
  return FinishFrame(fbb, b.Finish());
}

class SpillbackTest : public FakeTransportTest {
 protected:
  void SetUp() override {
    StartWorker("/owner");
    cls_ = RegisterClass("f", "(x) => x");
  }
  TaskID Submit(ObjectID* ret) {
    SubmitRequest r;
    r.cls = cls_;
    std::vector<ObjectID> ids;
    auto tid = cw_->submitter().Submit(std::move(r), &ids);
    EXPECT_TRUE(tid.ok());
    *ret = ids.at(0);
    return *tid;
  }
  std::vector<const proto::Envelope*> LocalRequests() { return t_.NodeFrames(Body::RequestWorkerLease); }
  std::vector<const proto::Envelope*> RequestsAtB() {
    FakeTransport::Peer* p = t_.PeerAt(kNodeB);
    return p ? p->link->Of(Body::RequestWorkerLease) : std::vector<const proto::Envelope*>{};
  }
  // The node does not answer at once: spills the latest local request to B.
  void SpillToB() {
    uint64_t id = LocalRequests().back()->body_as_RequestWorkerLease()->request_id();
    t_.DeliverControl(*cw_, SpillbackFrame(id, kNodeB));
  }
  uint64_t LastAtB() { return RequestsAtB().back()->body_as_RequestWorkerLease()->request_id(); }

  std::shared_ptr<const TaskClass> cls_;
};

TEST_F(SpillbackTest, TheNodeNamedBySpillbackGrantsAndTheLeaseGoesBackThere) {
  ObjectID ret;
  TaskID tid = Submit(&ret);
  ASSERT_EQ(LocalRequests().size(), 1u);
  EXPECT_FALSE(LocalRequests()[0]->body_as_RequestWorkerLease()->grant_or_reject());
  SpillToB();
  ASSERT_EQ(RequestsAtB().size(), 1u);
  auto* at_b = RequestsAtB()[0]->body_as_RequestWorkerLease();
  EXPECT_TRUE(at_b->grant_or_reject());
  EXPECT_EQ(at_b->scheduling_key(), cls_->scheduling_key);
  EXPECT_EQ(LocalRequests().size(), 1u) << "one request outstanding, now at B";

  t_.DeliverFromPeer(kNodeB, LeaseGrantFrame(LastAtB(), 21, "/b/w1@10.0.0.2:7100"));
  FakeTransport::Peer* w = t_.PeerAt("/b/w1@10.0.0.2:7100");
  ASSERT_NE(w, nullptr);
  ASSERT_EQ(w->link->Of(Body::PushTask).size(), 1u);
  t_.DeliverFromPeer("/b/w1@10.0.0.2:7100", PushReplyFrame(tid, {"v"}));
  EXPECT_EQ(ValueOf(cw_->objects().TryGet(ret)), "v");
  // Idle: returned to B, not to the owner's node.
  t_.Advance(std::chrono::seconds(1));
  auto returns = t_.PeerAt(kNodeB)->link->Of(Body::ReturnWorkerLease);
  ASSERT_EQ(returns.size(), 1u);
  EXPECT_EQ(returns[0]->body_as_ReturnWorkerLease()->lease_id(), 21u);
  EXPECT_TRUE(t_.NodeFrames(Body::ReturnWorkerLease).empty());
}

TEST_F(SpillbackTest, ARejectionAsksTheOwnNodeAgain) {
  ObjectID ret;
  Submit(&ret);
  SpillToB();
  t_.DeliverFromPeer(kNodeB, RejectedFrame(LastAtB()));
  ASSERT_EQ(LocalRequests().size(), 2u);
  EXPECT_FALSE(LocalRequests()[1]->body_as_RequestWorkerLease()->grant_or_reject());
  // Granted there this time.
  t_.DeliverControl(*cw_, LeaseGrantFrame(LocalRequests()[1]->body_as_RequestWorkerLease()->request_id(), 5, "/w1"));
  EXPECT_EQ(t_.PeerAt("/w1")->link->Of(Body::PushTask).size(), 1u);
}

TEST_F(SpillbackTest, TheConnectionToThatNodeBreakingWhileTheRequestWaitsAsksTheOwnNodeAgain) {
  ObjectID ret;
  Submit(&ret);
  SpillToB();
  t_.ClosePeer(kNodeB);
  ASSERT_EQ(LocalRequests().size(), 2u);
  // Unreachable now, its second failure in a row: rejected after the
  // backoff (node_death_test.cc: no hot loop), asked locally again.
  t_.unreachable.insert(kNodeB);
  SpillToB();
  t_.RunPosted();
  t_.Advance(NodeLinks::kFirstBackoff);
  EXPECT_EQ(LocalRequests().size(), 3u);
}

}  // namespace
}  // namespace rayts::test
