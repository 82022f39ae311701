// How a worker ended reaches the owner's WorkerCrashedError (crash_causes.h):
// the node's WorkerDied notice, before or after the worker's connection
// closes, or none within the bound; and a lease whose worker said it exits
// goes back to the node as exiting (never leased again).
#include <gtest/gtest.h>

#include "test/core/fake_transport.h"

namespace rayts::test {
namespace {

using proto::Body;

class CrashCausesTest : public FakeTransportTest {
 protected:
  void SetUp() override {
    StartWorker("/owner");
    cls_ = RegisterClass("crashy", "() => 1");
  }
  ObjectID Submit(int max_retries) {
    SubmitRequest r;
    r.cls = cls_;
    r.max_retries = max_retries;
    std::vector<ObjectID> ids;
    EXPECT_TRUE(cw_->submitter().Submit(std::move(r), &ids).ok());
    return ids.at(0);
  }
  void Grant(const std::string& worker, uint64_t lease_id, const WorkerID& wid) {
    auto reqs = t_.NodeFrames(Body::RequestWorkerLease);
    t_.DeliverControl(*cw_, LeaseGrantFrame(reqs.back()->body_as_RequestWorkerLease()->request_id(), lease_id, worker,
                                            1, wid));
  }
  LookupResult Get(const ObjectID& id) { return cw_->objects().TryGet(id); }

  std::shared_ptr<const TaskClass> cls_;
  WorkerID w1_ = WorkerID::FromRandom();
};

TEST_F(CrashCausesTest, TheNodesNoticeAfterTheCloseGivesTheExitCodeAndTheStderrTail) {
  ObjectID ret = Submit(0);
  Grant("/w1", 11, w1_);
  t_.ClosePeer("/w1");
  EXPECT_FALSE(Get(ret).ready);
  t_.DeliverControl(*cw_, WorkerDiedFrame(w1_, 11, 4242, 3, "first\nlast words"));
  auto r = Get(ret);
  ASSERT_TRUE(r.ready);
  std::string v = ValueOf(r);
  EXPECT_NE(v.find("\"kind\":\"worker_crashed\""), std::string::npos) << v;
  EXPECT_NE(v.find("the worker running task crashy (pid 4242) exited with code 3; retries exhausted"), std::string::npos)
      << v;
  EXPECT_NE(v.find("its last stderr lines:\\n  first\\n  last words"), std::string::npos) << v;
  EXPECT_NE(v.find("\"exitCode\":3"), std::string::npos) << v;
  EXPECT_NE(v.find("\"stderr\":\"first\\nlast words\""), std::string::npos) << v;
  EXPECT_EQ(v.find("\"signal\""), std::string::npos) << v;
}

TEST_F(CrashCausesTest, ANoticeBeforeTheCloseIsKeptAndASignalIsNamed) {
  ObjectID ret = Submit(0);
  Grant("/w1", 11, w1_);
  t_.DeliverControl(*cw_, WorkerDiedFrame(w1_, 11, 77, -9, ""));
  EXPECT_FALSE(Get(ret).ready) << "the connection has not closed yet";
  t_.ClosePeer("/w1");
  auto r = Get(ret);
  ASSERT_TRUE(r.ready) << "failed at the close, with the notice kept";
  std::string v = ValueOf(r);
  EXPECT_NE(v.find("(pid 77) was killed by signal 9 (SIGKILL)"), std::string::npos) << v;
  EXPECT_NE(v.find("\"signal\":\"SIGKILL\""), std::string::npos) << v;
  EXPECT_EQ(v.find("exitCode"), std::string::npos) << v;
  EXPECT_EQ(v.find("its last stderr lines"), std::string::npos) << "no stderr, no such lines: " << v;
}

TEST_F(CrashCausesTest, WithoutANoticeTheTaskFailsAfterTheBoundSayingItDiedUnexpectedly) {
  ObjectID ret = Submit(0);
  Grant("/w1", 11, w1_);
  t_.ClosePeer("/w1");
  t_.Advance(CrashCauses::kWait - std::chrono::milliseconds(1));
  EXPECT_FALSE(Get(ret).ready);
  t_.Advance(std::chrono::milliseconds(2));
  auto r = Get(ret);
  ASSERT_TRUE(r.ready);
  EXPECT_NE(ValueOf(r).find("died unexpectedly"), std::string::npos) << ValueOf(r);
  // A late notice changes nothing (and is not kept for a worker nobody waits for twice).
  t_.DeliverControl(*cw_, WorkerDiedFrame(w1_, 11, 4242, 3, "late"));
  EXPECT_EQ(ValueOf(Get(ret)).find("late"), std::string::npos);
}

TEST_F(CrashCausesTest, ATaskRetriedAfterADeathDoesNotWaitForTheCause) {
  ObjectID ret = Submit(1);
  Grant("/w1", 11, w1_);
  t_.ClosePeer("/w1");
  EXPECT_EQ(t_.NodeFrames(Body::RequestWorkerLease).size(), 2u) << "retried at once, on a new lease";
  EXPECT_FALSE(Get(ret).ready);
}

TEST_F(CrashCausesTest, AnIdleLeaseOfAWorkerThatSaidItExitsGoesBackAsExiting) {
  ObjectID ret = Submit(3);
  Grant("/w1", 11, w1_);
  auto pushes = t_.PeerAt("/w1")->link->Of(Body::PushTask);
  ASSERT_EQ(pushes.size(), 1u);
  t_.DeliverFromPeer("/w1", WorkerExitingFrame(1));
  t_.DeliverFromPeer("/w1", PushReplyFrame(SpecTaskId(pushes[0]), {"v"}));
  EXPECT_EQ(ValueOf(Get(ret)), "v");
  t_.Advance(std::chrono::milliseconds(60));  // past the idle return
  auto returns = t_.NodeFrames(Body::ReturnWorkerLease);
  ASSERT_EQ(returns.size(), 1u);
  EXPECT_TRUE(returns[0]->body_as_ReturnWorkerLease()->worker_exiting()) << "the node must not lease it again";
}

}  // namespace
}  // namespace rayts::test
