// An actor whose lease another node granted (a spillback), over a fake
// transport: its worker lost without a word is held until the link to that
// node closes (the node died: its death is the cause) or the grace passes
// (the worker's own cause); a kill meanwhile ends the held loss.
#include <gtest/gtest.h>

#include "core/core_worker/actor_state.h"
#include "test/core/fake_transport.h"

namespace rayts::test {
namespace {

using proto::Body;
using Fbb = flatbuffers::FlatBufferBuilder;
constexpr const char* kNodeB = "10.0.0.2:7002";
constexpr const char* kWorker = "/b/w1@10.0.0.2:7100";

class ActorNodeLossTest : public FakeTransportTest {
 protected:
  void SetUp() override {
    StartWorker("/owner");
    cls_ = RegisterClass("Counter", "class Counter {}");
    node_b_ = NodeID::FromRandom();
  }
  // Creates the actor, spills its lease to node B, which grants it; the
  // constructor answers. Returns the actor id.
  TaskID PlacedOnB(int max_restarts) {
    SubmitRequest r;
    r.cls = cls_;
    r.mutable_actor().max_restarts = max_restarts;
    ObjectID ready;
    auto actor = cw_->actors().Create(std::move(r), &ready);
    EXPECT_TRUE(actor.ok());
    uint64_t local = t_.NodeFrames(Body::RequestWorkerLease).back()->body_as_RequestWorkerLease()->request_id();
    Fbb fbb(128);
    auto addr = fbb.CreateString(kNodeB);
    auto id = fbb.CreateVector(node_b_.data(), NodeID::kSize);
    proto::LeaseReplyBuilder b(fbb);
    b.add_request_id(local);
    b.add_retry_at_address(addr);
    b.add_retry_at_node_id(id);
    t_.DeliverControl(*cw_, FinishFrame(fbb, b.Finish()));
    auto at_b = t_.PeerAt(kNodeB)->link->Of(Body::RequestWorkerLease);
    EXPECT_EQ(at_b.size(), 1u);
    t_.DeliverFromPeer(kNodeB, LeaseGrantFrame(at_b.back()->body_as_RequestWorkerLease()->request_id(), 21, kWorker));
    auto pushes = t_.PeerAt(kWorker)->link->Of(Body::PushTask);
    EXPECT_EQ(pushes.size(), 1u);
    t_.DeliverFromPeer(kWorker, PushReplyFrame(TaskID::FromBytes(pushes[0]->body_as_PushTask()->spec()->task_id()->data()),
                                               {"null"}));
    return *actor;
  }
  ObjectID Call(const TaskID& actor) {
    SubmitRequest r;
    r.cls = cls_;
    r.actor_id = actor;
    r.mutable_actor().method = "work";
    std::vector<ObjectID> ids;
    EXPECT_TRUE(cw_->actors().Submit(std::move(r), &ids).ok());
    return ids.at(0);
  }
  std::string Result(const ObjectID& id) {
    auto r = cw_->objects().TryGet(id);
    return r.ready ? ValueOf(r) : std::string("<pending>");
  }
  size_t LeaseRequests() { return t_.NodeFrames(Body::RequestWorkerLease).size(); }

  std::shared_ptr<const TaskClass> cls_;
  NodeID node_b_;
};

TEST_F(ActorNodeLossTest, AWorkerLostBeforeItsNodeLinkWaitsAndDiesOfTheNode) {
  TaskID actor = PlacedOnB(/*max_restarts=*/0);
  ObjectID r0 = Call(actor);
  t_.ClosePeer(kWorker);  // the worker's connection first, no exit notice
  EXPECT_EQ(Result(r0), "<pending>") << "held: its node may be dying";
  t_.Advance(ActorState::kNodeDeathGrace / 2);
  EXPECT_EQ(Result(r0), "<pending>");
  t_.ClosePeer(kNodeB);  // then the link to its node
  std::string v = Result(r0);
  EXPECT_NE(v.find("ActorDiedError"), std::string::npos) << v;
  EXPECT_NE(v.find("its node " + node_b_.Hex() + " at " + kNodeB + " died"), std::string::npos) << v;
  // Later calls fail at once with the same cause; the grace timer does nothing more.
  t_.Advance(ActorState::kNodeDeathGrace);
  EXPECT_NE(Result(Call(actor)).find(node_b_.Hex()), std::string::npos);
}

TEST_F(ActorNodeLossTest, ANodeThatStaysUpLeavesTheWorkersCauseAfterTheGrace) {
  TaskID actor = PlacedOnB(/*max_restarts=*/1);
  ObjectID r0 = Call(actor);
  size_t before = LeaseRequests();
  t_.ClosePeer(kWorker);
  EXPECT_EQ(LeaseRequests(), before) << "no restart while held";
  t_.Advance(ActorState::kNodeDeathGrace);
  EXPECT_EQ(LeaseRequests(), before + 1) << "restarted once the grace passed";
  std::string v = Result(r0);  // maxTaskRetries 0: the call cut off fails
  EXPECT_NE(v.find("its worker process died"), std::string::npos) << v;
  EXPECT_EQ(v.find("its node"), std::string::npos) << v;
}

TEST_F(ActorNodeLossTest, AKillWhileHeldEndsTheLossWithTheActor) {
  TaskID actor = PlacedOnB(/*max_restarts=*/1);
  ObjectID r0 = Call(actor);
  size_t before = LeaseRequests();
  t_.ClosePeer(kWorker);
  cw_->actors().Kill(actor, "killed by ray.kill()", /*no_restart=*/true);
  EXPECT_NE(Result(r0).find("killed by ray.kill()"), std::string::npos) << Result(r0);
  t_.ClosePeer(kNodeB);
  t_.Advance(ActorState::kNodeDeathGrace);
  EXPECT_EQ(LeaseRequests(), before) << "dead: never restarted";
}

}  // namespace
}  // namespace rayts::test
