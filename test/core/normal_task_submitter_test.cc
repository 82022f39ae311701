// NormalTaskSubmitter over a fake transport and a fake clock (the shape of
// Ray's normal_task_submitter_test.cc): lease grant, reuse, idle return,
// retry on worker death, cancellation, infeasible requests, pipelining.
#include <gtest/gtest.h>

#include "test/core/fake_transport.h"

namespace rayts::test {
namespace {

using proto::Body;

class NormalTaskSubmitterTest : public FakeTransportTest {
 protected:
  void SetUp() override {
    StartWorker("/owner");
    cls_ = RegisterClass("f", "(x) => x");
  }

  // Submits one task of class f; its return object in *ret.
  TaskID Submit(ObjectID* ret, int max_retries = 3) {
    SubmitRequest r;
    r.cls = cls_;
    r.max_retries = max_retries;
    std::vector<ObjectID> ids;
    auto tid = cw_->submitter().Submit(std::move(r), &ids);
    EXPECT_TRUE(tid.ok()) << tid.status().ToString();
    if (ret) *ret = ids.at(0);
    return *tid;
  }
  std::vector<const proto::Envelope*> LeaseRequests() { return t_.NodeFrames(Body::RequestWorkerLease); }
  uint64_t LastLeaseRequest() { return LeaseRequests().back()->body_as_RequestWorkerLease()->request_id(); }
  void Grant(const std::string& worker, uint64_t lease_id, int spare = 1) {
    t_.DeliverControl(*cw_, LeaseGrantFrame(LastLeaseRequest(), lease_id, worker, spare));
  }
  std::vector<const proto::Envelope*> Pushes(const std::string& worker) {
    FakeTransport::Peer* p = t_.PeerAt(worker);
    return p ? p->link->Of(Body::PushTask) : std::vector<const proto::Envelope*>{};
  }
  LookupResult Get(const ObjectID& id) { return cw_->objects().TryGet(id); }
  // Pipelining on: one lease on /w1 with no spare worker, whose first task
  // took `first` from push to reply.
  void PipelineAfter(std::chrono::microseconds first) {
    TaskID tid = Submit(nullptr);
    Grant("/w1", 11, /*spare=*/0);
    t_.Advance(first);
    t_.DeliverFromPeer("/w1", PushReplyFrame(tid, {"x"}));
  }

  std::shared_ptr<const TaskClass> cls_;
};

TEST_F(NormalTaskSubmitterTest, GrantPushesTheQueuedTaskAndTheReplyFillsItsReturn) {
  ObjectID ret;
  TaskID tid = Submit(&ret);
  ASSERT_EQ(LeaseRequests().size(), 1u);
  auto* req = LeaseRequests()[0]->body_as_RequestWorkerLease();
  EXPECT_EQ(req->scheduling_key(), cls_->scheduling_key);
  EXPECT_FALSE(req->for_actor());
  EXPECT_TRUE(req->retriable());  // maxRetries 3
  EXPECT_FALSE(Get(ret).ready);

  Grant("/w1", 11);
  auto pushes = Pushes("/w1");
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(SpecTaskId(pushes[0]), tid);
  EXPECT_EQ(pushes[0]->body_as_PushTask()->spec()->attempt(), 0);
  // The function's source travels with the first push on a lease.
  EXPECT_EQ(pushes[0]->body_as_PushTask()->spec()->function()->source()->str(), "(x) => x");

  t_.DeliverFromPeer("/w1", PushReplyFrame(tid, {"v1"}));
  auto r = Get(ret);
  EXPECT_TRUE(r.ready);
  EXPECT_FALSE(r.is_error);
  EXPECT_EQ(ValueOf(r), "v1");
}

TEST_F(NormalTaskSubmitterTest, AnIdleLeaseIsReusedThenReturnedAfterTheIdleTimeout) {
  ObjectID r1, r2;
  TaskID t1 = Submit(&r1);
  Grant("/w1", 11);
  t_.DeliverFromPeer("/w1", PushReplyFrame(t1, {"a"}));
  // Idle now, but within the idle window: the next task reuses the lease.
  t_.Advance(std::chrono::milliseconds(10));
  TaskID t2 = Submit(&r2);
  EXPECT_EQ(LeaseRequests().size(), 1u) << "no second lease request while the first lease is held";
  auto pushes = Pushes("/w1");
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(SpecTaskId(pushes[1]), t2);
  // The class (function, source, owner) went with the first push; the second names its slot only.
  auto* first = pushes[0]->body_as_PushTask()->spec();
  auto* second = pushes[1]->body_as_PushTask()->spec();
  EXPECT_EQ(second->function(), nullptr) << "the class is sent once per lease";
  EXPECT_EQ(second->owner_address(), nullptr);
  EXPECT_NE(first->class_ref(), 0u);
  EXPECT_EQ(second->class_ref(), first->class_ref());
  t_.DeliverFromPeer("/w1", PushReplyFrame(t2, {"b"}));
  EXPECT_EQ(ValueOf(Get(r2)), "b");

  EXPECT_TRUE(t_.NodeFrames(Body::ReturnWorkerLease).empty());
  t_.Advance(std::chrono::milliseconds(49));
  EXPECT_TRUE(t_.NodeFrames(Body::ReturnWorkerLease).empty()) << "returned before the idle timeout";
  t_.Advance(std::chrono::milliseconds(2));
  auto returns = t_.NodeFrames(Body::ReturnWorkerLease);
  ASSERT_EQ(returns.size(), 1u);
  EXPECT_EQ(returns[0]->body_as_ReturnWorkerLease()->lease_id(), 11u);
  EXPECT_FALSE(returns[0]->body_as_ReturnWorkerLease()->worker_exiting());
  EXPECT_TRUE(t_.PeerAt("/w1")->link->closed());
  // Returned once: later timers or closes do not return it again.
  t_.ClosePeer("/w1");
  t_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(t_.NodeFrames(Body::ReturnWorkerLease).size(), 1u);
}

TEST_F(NormalTaskSubmitterTest, AWorkerDeathRetriesTheTaskOnANewLease) {
  ObjectID ret;
  TaskID tid = Submit(&ret, /*max_retries=*/1);
  Grant("/w1", 11);
  t_.ClosePeer("/w1");
  // Retried: a new lease request, then the same task on the new worker as
  // attempt 1.
  ASSERT_EQ(LeaseRequests().size(), 2u);
  EXPECT_FALSE(Get(ret).ready);
  Grant("/w2", 12);
  auto pushes = Pushes("/w2");
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(SpecTaskId(pushes[0]), tid);
  EXPECT_EQ(pushes[0]->body_as_PushTask()->spec()->attempt(), 1);
  // No retries left: the next death fails it with WorkerCrashedError,
  // once the node said how the worker ended or (here) it did not in time.
  t_.ClosePeer("/w2");
  EXPECT_FALSE(Get(ret).ready) << "waits for the node's WorkerDied notice";
  t_.Advance(CrashCauses::kWait);
  auto r = Get(ret);
  ASSERT_TRUE(r.ready);
  EXPECT_TRUE(r.is_error);
  EXPECT_NE(ValueOf(r).find("WorkerCrashedError"), std::string::npos) << ValueOf(r);
  EXPECT_NE(ValueOf(r).find("retries exhausted"), std::string::npos) << ValueOf(r);
}

TEST_F(NormalTaskSubmitterTest, ARetryDoesNotGoToAWorkerThatSaidItExits) {
  ObjectID ret;
  TaskID tid = Submit(&ret, /*max_retries=*/1);
  Grant("/w1", 11);
  // The worker announces its exit, then fails the task with a retryable error.
  t_.DeliverFromPeer("/w1", WorkerExitingFrame(1));
  t_.DeliverFromPeer("/w1", PushReplyFrame(tid, {"{\"name\":\"RangeError\"}"}, true, /*retryable=*/true));
  EXPECT_EQ(Pushes("/w1").size(), 1u) << "the retry must not be pushed to the exiting worker";
  t_.ClosePeer("/w1");
  EXPECT_FALSE(Get(ret).ready) << "the retry still has its attempt";
  Grant("/w2", 12);
  auto p = Pushes("/w2");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0]->body_as_PushTask()->spec()->attempt(), 1);
}

TEST_F(NormalTaskSubmitterTest, AWorkerThatExitedWithACodeSaysSoInWorkerCrashedError) {
  ObjectID ret;
  Submit(&ret, /*max_retries=*/0);
  Grant("/w1", 11);
  t_.DeliverFromPeer("/w1", WorkerExitingFrame(3));
  t_.ClosePeer("/w1");
  t_.Advance(CrashCauses::kWait);  // the node never said more
  EXPECT_NE(ValueOf(Get(ret)).find("exited with code 3"), std::string::npos) << ValueOf(Get(ret));
}

TEST_F(NormalTaskSubmitterTest, AWorkerKilledByTheMemoryMonitorFailsWithOutOfMemoryError) {
  ObjectID ret;
  Submit(&ret, /*max_retries=*/0);
  Grant("/w1", 11);
  flatbuffers::FlatBufferBuilder fbb(64);
  auto why = fbb.CreateString("memory used 95% > 90%");
  t_.DeliverFromPeer("/w1", FinishFrame(fbb, proto::CreateWorkerExiting(fbb, 137, why)));
  t_.ClosePeer("/w1");
  auto r = Get(ret);
  ASSERT_TRUE(r.ready);
  EXPECT_NE(ValueOf(r).find("OutOfMemoryError"), std::string::npos) << ValueOf(r);
  EXPECT_NE(ValueOf(r).find("memory used 95%"), std::string::npos) << ValueOf(r);
}

TEST_F(NormalTaskSubmitterTest, CancelOfAQueuedTaskFailsItAndWithdrawsTheLeaseRequest) {
  ObjectID ret;
  TaskID tid = Submit(&ret);
  ASSERT_TRUE(cw_->tasks().Cancel(tid, false, false).ok());
  auto r = Get(ret);
  ASSERT_TRUE(r.ready);
  EXPECT_NE(ValueOf(r).find("TaskCancelledError"), std::string::npos) << ValueOf(r);
  // The lease request stays outstanding; the grant that answers it finds
  // nothing to run, and the lease goes back after the idle timeout.
  Grant("/w1", 11);
  EXPECT_TRUE(Pushes("/w1").empty());
  t_.Advance(std::chrono::milliseconds(60));
  EXPECT_EQ(t_.NodeFrames(Body::ReturnWorkerLease).size(), 1u) << "the unused lease goes back";
}

TEST_F(NormalTaskSubmitterTest, CancelOfARunningTaskAsksItsWorker) {
  ObjectID ret;
  TaskID tid = Submit(&ret);
  Grant("/w1", 11);
  ASSERT_TRUE(cw_->tasks().Cancel(tid, /*force=*/true, /*recursive=*/true).ok());
  auto cancels = t_.PeerAt("/w1")->link->Of(Body::CancelTask);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_TRUE(cancels[0]->body_as_CancelTask()->force());
  EXPECT_TRUE(cancels[0]->body_as_CancelTask()->recursive());
  // A forced cancel ends the worker: the closed link fails the task as
  // cancelled, and it is not retried.
  t_.ClosePeer("/w1");
  EXPECT_EQ(LeaseRequests().size(), 1u);
  EXPECT_NE(ValueOf(Get(ret)).find("TaskCancelledError"), std::string::npos);
  // Finished: cancelling again is a no-op.
  EXPECT_TRUE(cw_->tasks().Cancel(tid, false, false).ok());
}

TEST_F(NormalTaskSubmitterTest, AnInfeasibleLeaseRequestFailsEveryQueuedTaskOfItsShape) {
  ObjectID r1, r2;
  Submit(&r1);
  Submit(&r2);
  ASSERT_EQ(LeaseRequests().size(), 1u) << "one request per key while one is outstanding";
  t_.DeliverControl(*cw_, LeaseErrorFrame(LastLeaseRequest(), StatusCode::kInfeasible, "needs CPU: 64"));
  for (auto& id : {r1, r2}) {
    auto r = Get(id);
    ASSERT_TRUE(r.ready);
    EXPECT_NE(ValueOf(r).find("InfeasibleResourceError"), std::string::npos) << ValueOf(r);
    EXPECT_NE(ValueOf(r).find("needs CPU: 64"), std::string::npos) << ValueOf(r);
  }
}

TEST_F(NormalTaskSubmitterTest, ShortTasksArePipelinedWhenTheNodeHasNoSpareWorker) {
  // spare 0: the node cannot start more workers of this shape.
  ObjectID ret;
  TaskID first = Submit(&ret);
  Grant("/w1", 11, /*spare=*/0);
  ASSERT_EQ(Pushes("/w1").size(), 1u);
  std::vector<TaskID> more;
  for (int i = 0; i < 5; i++) more.push_back(Submit(nullptr));
  EXPECT_EQ(Pushes("/w1").size(), 1u) << "one at a time until the round trip is known";
  t_.Advance(std::chrono::microseconds(100));  // a 100 us round trip
  t_.DeliverFromPeer("/w1", PushReplyFrame(first, {"x"}));
  EXPECT_EQ(Pushes("/w1").size(), 6u) << "short tasks: the rest go out pipelined on the one lease";
  EXPECT_EQ(cw_->GetStats().inflight_tasks, 5u);
}

TEST_F(NormalTaskSubmitterTest, TimeQueuedBehindOtherTasksDoesNotStopPipelining) {
  PipelineAfter(std::chrono::microseconds(100));  // a short first task
  // 40 tasks pipelined at once; the worker serves one per 500 us, so the
  // last one waits 20 ms for its reply, 10x the pipelining threshold.
  std::vector<TaskID> batch;
  for (int i = 0; i < 40; i++) batch.push_back(Submit(nullptr));
  ASSERT_EQ(Pushes("/w1").size(), 41u);
  for (auto& tid : batch) {
    t_.Advance(std::chrono::microseconds(500));
    t_.DeliverFromPeer("/w1", PushReplyFrame(tid, {"y"}));
  }
  // Each took 500 us of service: the next batch is still pipelined.
  for (int i = 0; i < 10; i++) Submit(nullptr);
  EXPECT_EQ(Pushes("/w1").size(), 51u) << "depth fell back to one task per worker";
}

TEST_F(NormalTaskSubmitterTest, RepliesOfABatchArrivingTogetherKeepTheDepthAtTheBudget) {
  // 1.6 ms tasks, pipelined: 50 ms of work is 31 tasks deep.
  PipelineAfter(std::chrono::microseconds(1600));
  for (int i = 0; i < 300; i++) Submit(nullptr);
  auto pushed = Pushes("/w1");
  ASSERT_EQ(pushed.size(), 32u) << "the first task and 31 pipelined";
  // The worker runs them in turn and its replies leave together (it
  // flushes once per macrotask): 49.6 ms later, all 31 in one go.
  t_.Advance(std::chrono::microseconds(31 * 1600));
  for (size_t i = 1; i < pushed.size(); i++) t_.DeliverFromPeer("/w1", PushReplyFrame(SpecTaskId(pushed[i]), {"y"}));
  // Still 1.6 ms a task: 31 more, not the 256 a falling estimate allowed
  // (410 ms of work for a lease past its hold to drain).
  EXPECT_EQ(cw_->GetStats().inflight_tasks, 31u);
  EXPECT_EQ(Pushes("/w1").size(), 63u);
}

TEST_F(NormalTaskSubmitterTest, PipelinedTasksSpreadOverTheLeasesInTurn) {
  // Two leases of one key, both pipelining (spare 0, short tasks known).
  TaskID a = Submit(nullptr);
  TaskID b = Submit(nullptr);
  Grant("/w1", 11, /*spare=*/1);
  Grant("/w2", 12, /*spare=*/0);
  ASSERT_EQ(Pushes("/w1").size(), 1u);
  ASSERT_EQ(Pushes("/w2").size(), 1u);
  t_.Advance(std::chrono::microseconds(100));
  t_.DeliverFromPeer("/w1", PushReplyFrame(a, {"x"}));
  t_.DeliverFromPeer("/w2", PushReplyFrame(b, {"x"}));
  // A short queue: half to each worker, not all on the first.
  for (int i = 0; i < 20; i++) Submit(nullptr);
  EXPECT_EQ(Pushes("/w1").size(), 11u);
  EXPECT_EQ(Pushes("/w2").size(), 11u);
}

TEST_F(NormalTaskSubmitterTest, TheIdleTimerIsArmedOncePerIdlePeriodNotPerReply) {
  ObjectID ret;
  TaskID tid = Submit(&ret);
  Grant("/w1", 11);
  int arms_after_grant = t_.arms;
  t_.DeliverFromPeer("/w1", PushReplyFrame(tid, {"x"}));
  for (int i = 0; i < 20; i++) {
    tid = Submit(nullptr);
    t_.Advance(std::chrono::microseconds(200));
    t_.DeliverFromPeer("/w1", PushReplyFrame(tid, {"x"}));
  }
  EXPECT_LE(t_.arms - arms_after_grant, 1) << "20 sequential tasks re-armed the idle timer";
  EXPECT_TRUE(t_.NodeFrames(Body::ReturnWorkerLease).empty());
  t_.Advance(std::chrono::milliseconds(51));
  EXPECT_EQ(t_.NodeFrames(Body::ReturnWorkerLease).size(), 1u) << "50 ms after the last reply";
}

TEST_F(NormalTaskSubmitterTest, ALeaseHeldPast500MsGoesBackWhileTasksStillQueue) {
  std::vector<TaskID> tids;
  for (int i = 0; i < 4; i++) tids.push_back(Submit(nullptr));
  Grant("/w1", 11);  // one lease, one task at a time (spare 1)
  ASSERT_EQ(Pushes("/w1").size(), 1u);
  // Tasks answer within the first 500 ms: the lease is kept and reused.
  t_.Advance(std::chrono::milliseconds(200));
  t_.DeliverFromPeer("/w1", PushReplyFrame(tids[0], {"a"}));
  ASSERT_EQ(Pushes("/w1").size(), 2u);
  EXPECT_TRUE(t_.NodeFrames(Body::ReturnWorkerLease).empty());
  // Past 500 ms since the grant: no new task on it, and at its next idle
  // moment it goes back although two tasks still queue.
  t_.Advance(std::chrono::milliseconds(400));
  size_t requests = t_.NodeFrames(Body::RequestWorkerLease).size();
  t_.DeliverFromPeer("/w1", PushReplyFrame(tids[1], {"b"}));
  EXPECT_EQ(Pushes("/w1").size(), 2u) << "an expired lease gets no new task";
  auto returns = t_.NodeFrames(Body::ReturnWorkerLease);
  ASSERT_EQ(returns.size(), 1u);
  EXPECT_FALSE(returns[0]->body_as_ReturnWorkerLease()->worker_exiting());
  EXPECT_GE(t_.NodeFrames(Body::RequestWorkerLease).size(), requests) << "the key still has a request out";
  EXPECT_EQ(cw_->GetStats().queued_tasks, 2u);
  // The next grant (here the same worker again) runs the rest.
  Grant("/w1", 12);
  EXPECT_EQ(Pushes("/w1").size(), 1u) << "a new connection for the new lease";
  EXPECT_EQ(SpecTaskId(Pushes("/w1")[0]), tids[2]);
}

TEST_F(NormalTaskSubmitterTest, AFailedArgumentFailsTheTaskWithTheSameError) {
  ObjectID arg;
  TaskID producer = Submit(&arg);
  SubmitRequest r;
  r.cls = cls_;
  TaskArgIn a;
  a.by_ref = true;
  a.id = arg;
  r.args.push_back(a);
  std::vector<ObjectID> ids;
  ASSERT_TRUE(cw_->submitter().Submit(std::move(r), &ids).ok());
  Grant("/w1", 11);
  ASSERT_EQ(Pushes("/w1").size(), 1u) << "the consumer waits for its argument";
  t_.DeliverFromPeer("/w1", PushReplyFrame(producer, {"{\"name\":\"Boom\"}"}, /*is_error=*/true));
  auto r2 = Get(ids[0]);
  ASSERT_TRUE(r2.ready);
  EXPECT_TRUE(r2.is_error);
  EXPECT_EQ(ValueOf(r2), "{\"name\":\"Boom\"}");
  EXPECT_EQ(Pushes("/w1").size(), 1u) << "never pushed";
}

// A GeneratorItem frame: item `index` of streaming task `task`, inline value `v`.
Frame GeneratorItemFrame(const TaskID& task, int index, const std::string& v) {
  flatbuffers::FlatBufferBuilder fbb(256);
  ObjectID id = ObjectIdFor(task, static_cast<uint32_t>(index + 1));
  auto oid = fbb.CreateVector(id.data(), ObjectID::kSize);
  auto data = fbb.CreateVector(reinterpret_cast<const uint8_t*>(v.data()), v.size());
  auto ret = proto::CreateReturnObject(fbb, oid, data, false, false, v.size());
  auto tid = fbb.CreateVector(task.data(), TaskID::kSize);
  return FinishFrame(fbb, proto::CreateGeneratorItem(fbb, tid, index, ret));
}

// Ray's test_streaming_generator.py test_generator_basic: a retried stream
// resumes after the items the consumer has, instead of starting over.
TEST_F(NormalTaskSubmitterTest, AStreamingRetrySkipsTheItemsReceivedAndItsErrorTakesTheNextIndex) {
  SubmitRequest r;
  r.cls = cls_;
  r.max_retries = 1;
  r.num_returns = -1;
  std::vector<ObjectID> ids;
  auto tid = cw_->submitter().Submit(std::move(r), &ids);
  ASSERT_TRUE(tid.ok());
  Grant("/w1", 11);
  ASSERT_EQ(Pushes("/w1").size(), 1u);
  EXPECT_EQ(Pushes("/w1")[0]->body_as_PushTask()->spec()->generator_skip(), 0);
  t_.DeliverFromPeer("/w1", GeneratorItemFrame(*tid, 0, "i0"));
  t_.DeliverFromPeer("/w1", GeneratorItemFrame(*tid, 1, "i1"));
  t_.DeliverFromPeer("/w1", GeneratorItemFrame(*tid, 1, "stale"));  // one the owner has: dropped
  size_t items = 0;
  for (auto& e : cw_->context().DrainEvents()) items += e.type == Event::Type::kGeneratorItem;
  EXPECT_EQ(items, 2u);
  EXPECT_EQ(ValueOf(Get(ObjectIdFor(*tid, 2))), "i1");

  // The worker dies: the retry is told to skip the 2 items received.
  t_.ClosePeer("/w1");
  Grant("/w2", 12);
  auto pushes = Pushes("/w2");
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0]->body_as_PushTask()->spec()->attempt(), 1);
  EXPECT_EQ(pushes[0]->body_as_PushTask()->spec()->generator_skip(), 2);

  // No retries left: the error is item 2; items 0 and 1 keep their values.
  t_.ClosePeer("/w2");
  t_.Advance(CrashCauses::kWait);  // no WorkerDied notice from the node: the plain crash error
  auto err = Get(ObjectIdFor(*tid, 3));
  ASSERT_TRUE(err.ready);
  EXPECT_TRUE(err.is_error);
  EXPECT_NE(ValueOf(err).find("WorkerCrashedError"), std::string::npos) << ValueOf(err);
  EXPECT_EQ(ValueOf(Get(ObjectIdFor(*tid, 1))), "i0");
  EXPECT_EQ(ValueOf(Get(ObjectIdFor(*tid, 2))), "i1");
  int64_t end_index = -1;
  for (auto& e : cw_->context().DrainEvents()) {
    if (e.type == Event::Type::kGeneratorEnd) end_index = e.index;
  }
  EXPECT_EQ(end_index, 3);
}

}  // namespace
}  // namespace rayts::test
