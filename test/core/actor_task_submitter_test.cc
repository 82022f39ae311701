// ActorTaskSubmitter over a fake transport: creation and ordered calls,
// restart with the resend of a call cut off, death, kill, and a borrowed
// handle's GCS lookup.
#include <gtest/gtest.h>

#include "core/gcs/gcs_client.h"
#include "test/core/fake_transport.h"

namespace rayts::test {
namespace {

using proto::Body;

class ActorTaskSubmitterTest : public FakeTransportTest {
 protected:
  void SetUp() override {
    StartWorker("/owner");
    cls_ = RegisterClass("Counter", "class Counter {}");
  }

  TaskID Create(int max_restarts, int max_task_retries, ObjectID* ready) {
    SubmitRequest r;
    r.cls = cls_;
    r.mutable_actor().max_restarts = max_restarts;
    r.mutable_actor().max_task_retries = max_task_retries;
    auto id = cw_->actors().Create(std::move(r), ready);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return *id;
  }
  StatusOr<TaskID> Call(const TaskID& actor, const std::string& method, ObjectID* ret) {
    SubmitRequest r;
    r.cls = cls_;
    r.actor_id = actor;
    r.mutable_actor().method = method;
    std::vector<ObjectID> ids;
    auto tid = cw_->actors().Submit(std::move(r), &ids);
    if (tid.ok() && ret) *ret = ids.at(0);
    return tid;
  }
  uint64_t LastLeaseRequest() {
    return t_.NodeFrames(Body::RequestWorkerLease).back()->body_as_RequestWorkerLease()->request_id();
  }
  void Grant(const std::string& worker, uint64_t lease_id) {
    t_.DeliverControl(*cw_, LeaseGrantFrame(LastLeaseRequest(), lease_id, worker));
  }
  std::vector<const proto::PushTask*> Pushes(const std::string& worker) {
    std::vector<const proto::PushTask*> out;
    if (auto* p = t_.PeerAt(worker))
      for (auto* e : p->link->Of(Body::PushTask)) out.push_back(e->body_as_PushTask());
    return out;
  }
  static TaskID IdOf(const proto::PushTask* p) { return TaskID::FromBytes(p->spec()->task_id()->data()); }
  LookupResult Get(const ObjectID& id) { return cw_->objects().TryGet(id); }
  size_t GcsFrames() { return t_.NodeFrames(Body::GcsRequest).size(); }

  std::shared_ptr<const TaskClass> cls_;
};

TEST_F(ActorTaskSubmitterTest, TheConstructorGoesFirstThenCallsInSubmissionOrder) {
  ObjectID ready;
  TaskID actor = Create(0, 0, &ready);
  auto reqs = t_.NodeFrames(Body::RequestWorkerLease);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_TRUE(reqs[0]->body_as_RequestWorkerLease()->for_actor());
  EXPECT_FALSE(reqs[0]->body_as_RequestWorkerLease()->retriable()) << "maxRestarts 0";
  // Calls made before the actor has a worker queue.
  ObjectID r0, r1;
  TaskID c0 = *Call(actor, "inc", &r0);
  TaskID c1 = *Call(actor, "inc", &r1);
  EXPECT_EQ(t_.NodeFrames(Body::RequestWorkerLease).size(), 1u);
  Grant("/a1", 21);
  auto p = Pushes("/a1");
  ASSERT_EQ(p.size(), 1u) << "calls wait for the constructor's answer";
  EXPECT_TRUE(p[0]->spec()->actor_creation());
  // Constructed: the owner reports it alive (a GCS actor-table update) and
  // sends the calls.
  size_t before = GcsFrames();
  t_.DeliverFromPeer("/a1", PushReplyFrame(IdOf(p[0]), {"null"}));
  EXPECT_EQ(GcsFrames(), before + 1);
  EXPECT_TRUE(Get(ready).ready);
  p = Pushes("/a1");
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(IdOf(p[1]), c0);
  EXPECT_EQ(IdOf(p[2]), c1);
  EXPECT_EQ(p[1]->spec()->actor_seq(), 0u);
  EXPECT_EQ(p[2]->spec()->actor_seq(), 1u);
  EXPECT_EQ(p[1]->spec()->method()->str(), "inc");
  t_.DeliverFromPeer("/a1", PushReplyFrame(c1, {"2"}));
  t_.DeliverFromPeer("/a1", PushReplyFrame(c0, {"1"}));
  EXPECT_EQ(ValueOf(Get(r0)), "1");
  EXPECT_EQ(ValueOf(Get(r1)), "2");
  // Held for the actor's life: no idle return.
  t_.Advance(std::chrono::seconds(5));
  EXPECT_TRUE(t_.NodeFrames(Body::ReturnWorkerLease).empty());
}

TEST_F(ActorTaskSubmitterTest, ARestartResendsTheCallCutOffThenRunsTheRest) {
  ObjectID ready, r0;
  TaskID actor = Create(/*max_restarts=*/1, /*max_task_retries=*/1, &ready);
  Grant("/a1", 21);
  TaskID c0 = *Call(actor, "work", &r0);
  auto first = Pushes("/a1");
  ASSERT_EQ(first.size(), 1u);
  t_.DeliverFromPeer("/a1", PushReplyFrame(IdOf(first[0]), {"null"}));
  ASSERT_EQ(Pushes("/a1").size(), 2u);
  // The worker dies with the call in flight.
  t_.ClosePeer("/a1");
  EXPECT_FALSE(Get(r0).ready) << "maxTaskRetries 1: the call waits for the restart";
  ASSERT_EQ(t_.NodeFrames(Body::RequestWorkerLease).size(), 2u) << "a new lease for the restart";
  ObjectID r1;
  TaskID c1 = *Call(actor, "work", &r1);  // made during the restart: queues behind
  Grant("/a2", 22);
  auto second = Pushes("/a2");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_TRUE(second[0]->spec()->actor_creation()) << "the constructor runs again first";
  t_.DeliverFromPeer("/a2", PushReplyFrame(IdOf(second[0]), {"null"}));
  second = Pushes("/a2");
  ASSERT_EQ(second.size(), 3u);
  EXPECT_EQ(IdOf(second[1]), c0);
  EXPECT_EQ(second[1]->spec()->attempt(), 1) << "the resend of the call that was cut off";
  EXPECT_EQ(IdOf(second[2]), c1);
  EXPECT_GT(second[1]->spec()->actor_epoch_start(), 0u) << "a new connection epoch";
  t_.DeliverFromPeer("/a2", PushReplyFrame(c0, {"done"}));
  EXPECT_EQ(ValueOf(Get(r0)), "done");
}

TEST_F(ActorTaskSubmitterTest, CallsWaitWhileTheConstructorKeepsLosingItsWorker) {
  // maxRestarts 3, maxTaskRetries 0: the constructor's worker dies twice;
  // the call made meanwhile was never sent, so it costs no retry and runs
  // on the third incarnation (Ray holds calls until the actor is ALIVE).
  ObjectID ready, r0;
  TaskID actor = Create(/*max_restarts=*/3, /*max_task_retries=*/0, &ready);
  TaskID c0 = *Call(actor, "work", &r0);
  for (const char* w : {"/a1", "/a2"}) {
    Grant(w, 20);
    ASSERT_EQ(Pushes(w).size(), 1u) << "only the constructor is sent";
    t_.ClosePeer(w);
    EXPECT_FALSE(Get(r0).ready) << "the call waits";
  }
  Grant("/a3", 23);
  auto p = Pushes("/a3");
  ASSERT_EQ(p.size(), 1u);
  t_.DeliverFromPeer("/a3", PushReplyFrame(IdOf(p[0]), {"null"}));
  p = Pushes("/a3");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(IdOf(p[1]), c0);
  t_.DeliverFromPeer("/a3", PushReplyFrame(c0, {"ok"}));
  EXPECT_EQ(ValueOf(Get(r0)), "ok");
}

TEST_F(ActorTaskSubmitterTest, WithoutRestartsTheDeathFailsCallsInFlightAndLater) {
  ObjectID ready, r0;
  TaskID actor = Create(0, 0, &ready);
  Grant("/a1", 21);
  Call(actor, "work", &r0);
  t_.DeliverFromPeer("/a1", WorkerExitingFrame(3));
  t_.ClosePeer("/a1");
  auto r = Get(r0);
  ASSERT_TRUE(r.ready);
  EXPECT_NE(ValueOf(r).find("ActorDiedError"), std::string::npos) << ValueOf(r);
  EXPECT_NE(ValueOf(r).find("exited with code 3"), std::string::npos) << ValueOf(r);
  EXPECT_EQ(t_.NodeFrames(Body::RequestWorkerLease).size(), 1u) << "not restarted";
  // The constructor's own result reports the death too.
  EXPECT_TRUE(Get(ready).is_error);
  // A later call fails at once with the same cause.
  ObjectID r1;
  ASSERT_TRUE(Call(actor, "work", &r1).ok());
  EXPECT_NE(ValueOf(Get(r1)).find("exited with code 3"), std::string::npos) << ValueOf(Get(r1));
}

TEST_F(ActorTaskSubmitterTest, KillWithNoRestartReturnsTheLeaseWithItsWorker) {
  ObjectID ready;
  TaskID actor = Create(/*max_restarts=*/5, 0, &ready);
  Grant("/a1", 21);
  cw_->actors().Kill(actor, "killed by ray.kill()", /*no_restart=*/true);
  auto returns = t_.NodeFrames(Body::ReturnWorkerLease);
  ASSERT_EQ(returns.size(), 1u);
  EXPECT_TRUE(returns[0]->body_as_ReturnWorkerLease()->worker_exiting());
  t_.ClosePeer("/a1");
  EXPECT_EQ(t_.NodeFrames(Body::RequestWorkerLease).size(), 1u) << "noRestart: never restarted";
  ObjectID r;
  ASSERT_TRUE(Call(actor, "work", &r).ok());
  EXPECT_NE(ValueOf(Get(r)).find("killed by ray.kill()"), std::string::npos) << ValueOf(Get(r));
}

TEST_F(ActorTaskSubmitterTest, AnInfeasibleActorDiesAtOnceAndItsCallsSayWhy) {
  ObjectID ready, r0;
  TaskID actor = Create(3, 0, &ready);
  ASSERT_TRUE(Call(actor, "work", &r0).ok());
  t_.DeliverControl(*cw_, LeaseErrorFrame(LastLeaseRequest(), StatusCode::kInfeasible, "needs CPU: 64, the node has CPU: 2"));
  auto c = Get(ready);
  ASSERT_TRUE(c.ready);
  EXPECT_NE(ValueOf(c).find("InfeasibleResourceError"), std::string::npos) << ValueOf(c);
  auto r = Get(r0);
  ASSERT_TRUE(r.ready) << "a call waiting for the actor fails at once";
  EXPECT_NE(ValueOf(r).find("ActorDiedError"), std::string::npos) << ValueOf(r);
  EXPECT_NE(ValueOf(r).find("cannot be placed: needs CPU: 64"), std::string::npos) << ValueOf(r);
  EXPECT_NE(ValueOf(r).find("InfeasibleResourceError"), std::string::npos) << "the cause record travels along";
  EXPECT_EQ(t_.NodeFrames(Body::RequestWorkerLease).size(), 1u) << "not restarted: it can never be placed";
}

TEST_F(ActorTaskSubmitterTest, KillBeforePlacementWithdrawsTheLeaseRequest) {
  ObjectID ready;
  TaskID actor = Create(0, 0, &ready);
  cw_->actors().Kill(actor, "killed early", true);
  ASSERT_EQ(t_.NodeFrames(Body::CancelLeaseRequest).size(), 1u);
  // A grant that crosses the cancel gives the worker straight back.
  Grant("/a1", 21);
  ASSERT_EQ(t_.NodeFrames(Body::ReturnWorkerLease).size(), 1u);
  EXPECT_TRUE(Pushes("/a1").empty());
}

TEST_F(ActorTaskSubmitterTest, ABorrowedHandleLooksTheActorUpAndRetriesAnUnreachableAddress) {
  TaskID actor = TaskID::FromRandom();
  ObjectID r0;
  size_t before = GcsFrames();
  TaskID c0 = *Call(actor, "work", &r0);  // no Create here: owned elsewhere
  ASSERT_EQ(GcsFrames(), before + 1) << "a WaitActor lookup";
  EXPECT_TRUE(t_.NodeFrames(Body::RequestWorkerLease).empty()) << "a borrower never leases";
  auto* wait = t_.NodeFrames(Body::GcsRequest).back()->body_as_GcsRequest();
  t_.unreachable.insert("/gone");
  auto reply = [&](uint64_t rid, const std::string& address) {
    flatbuffers::FlatBufferBuilder fbb(128);
    auto a = fbb.CreateString(address);
    auto body = proto::CreateWaitActorReply(fbb, true, a);
    return FinishFrame(fbb, proto::CreateGcsReply(fbb, rid, 0, 0, proto::GcsReplyBody::WaitActorReply, body.Union()));
  };
  t_.DeliverControl(*cw_, reply(wait->request_id(), "/gone"));
  EXPECT_EQ(GcsFrames(), before + 1) << "asks again only after the retry delay";
  t_.Advance(std::chrono::milliseconds(100));
  ASSERT_EQ(GcsFrames(), before + 2);
  auto* again = t_.NodeFrames(Body::GcsRequest).back()->body_as_GcsRequest();
  t_.DeliverControl(*cw_, reply(again->request_id(), "/a1"));
  auto p = Pushes("/a1");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(IdOf(p[0]), c0);
  t_.DeliverFromPeer("/a1", PushReplyFrame(c0, {"ok"}));
  EXPECT_EQ(ValueOf(Get(r0)), "ok");
}

TEST_F(ActorTaskSubmitterTest, ABorrowerResendsItsCallToTheNewAddressNotTheOneThatBroke) {
  auto wait_reply = [&](const std::string& address) {
    uint64_t rid = t_.NodeFrames(Body::GcsRequest).back()->body_as_GcsRequest()->request_id();
    flatbuffers::FlatBufferBuilder fbb(128);
    auto a = fbb.CreateString(address);
    auto body = proto::CreateWaitActorReply(fbb, true, a);
    t_.DeliverControl(*cw_, FinishFrame(fbb, proto::CreateGcsReply(fbb, rid, 0, 0, proto::GcsReplyBody::WaitActorReply,
                                                                   body.Union())));
  };
  TaskID actor = TaskID::FromRandom();
  SubmitRequest r;
  r.cls = cls_;
  r.actor_id = actor;
  r.mutable_actor().method = "work";
  r.mutable_actor().max_task_retries = 1;  // carried by the handle
  std::vector<ObjectID> ids;
  TaskID c0 = *cw_->actors().Submit(std::move(r), &ids);
  wait_reply("/a1");
  ASSERT_EQ(Pushes("/a1").size(), 1u);
  size_t peers = t_.peers.size();
  t_.ClosePeer("/a1");  // the actor's worker died; the owner restarts it
  EXPECT_FALSE(Get(ids[0]).ready) << "maxTaskRetries 1: kept for a resend";
  // The table still names the old worker: not reconnected, asked again.
  wait_reply("/a1");
  EXPECT_EQ(t_.peers.size(), peers) << "no connection to the address that just broke";
  t_.Advance(std::chrono::milliseconds(100));
  wait_reply("/a2");
  auto p = Pushes("/a2");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(IdOf(p[0]), c0);
  EXPECT_EQ(p[0]->spec()->attempt(), 1);
  t_.DeliverFromPeer("/a2", PushReplyFrame(c0, {"ok"}));
  EXPECT_EQ(ValueOf(Get(ids[0])), "ok");
}

TEST_F(ActorTaskSubmitterTest, TheLastHandleReleasedEndsTheActorOnceIdle) {
  ObjectID ready, r0;
  TaskID actor = Create(3, 0, &ready);
  Grant("/a1", 21);
  TaskID c0 = *Call(actor, "work", &r0);
  ObjectID token = cw_->objects().PutInlineNew(std::make_shared<const std::string>("token"));
  cw_->actors().SetToken(actor, token);
  cw_->objects().RemoveLocalRefs({token});
  t_.RunPosted();  // the kill runs after the releasing call
  EXPECT_TRUE(t_.NodeFrames(Body::ReturnWorkerLease).empty()) << "a call is still running";
  auto p = Pushes("/a1");
  t_.DeliverFromPeer("/a1", PushReplyFrame(IdOf(p[0]), {"null"}));
  t_.DeliverFromPeer("/a1", PushReplyFrame(c0, {"ok"}));
  EXPECT_EQ(ValueOf(Get(r0)), "ok");
  ASSERT_EQ(t_.NodeFrames(Body::ReturnWorkerLease).size(), 1u) << "idle now: ended";
}

}  // namespace
}  // namespace rayts::test
