// TaskReceiver over a fake transport: tasks pushed here become host events,
// replies go back on the link they came on, actor calls run in each
// caller's send order (a gap is skipped after a bounded wait), stale calls
// never run, cancellation and the memory monitor's kill.
#include <gtest/gtest.h>

#include "test/core/fake_transport.h"

namespace rayts::test {
namespace {

using proto::Body;

struct PushSpec {
  TaskID task = TaskID::FromRandom();
  TaskID actor;          // nil: a normal task
  bool creation = false;
  WorkerID caller;
  uint64_t seq = 0, epoch_start = 0;
  uint32_t class_ref = 0;  // >0: the class slot (TaskSpec.class_ref)
  bool define = true;      // carries the class's part (else only the slot)
  std::string name;        // the call's own name ("" with a slot: none)
  int num_returns = 1;
};

Frame PushFrame(const PushSpec& s) {
  flatbuffers::FlatBufferBuilder fbb(256);
  auto tid = fbb.CreateVector(s.task.data(), TaskID::kSize);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> caller;
  flatbuffers::Offset<flatbuffers::String> owner, name;
  flatbuffers::Offset<proto::FunctionDescriptor> fd;
  if (s.define) {
    caller = fbb.CreateVector(s.caller.data(), WorkerID::kSize);
    owner = fbb.CreateString("/caller");
    fd = proto::CreateFunctionDescriptor(fbb, fbb.CreateString("h"), fbb.CreateString("() => 1"), 0, 0,
                                         s.class_ref ? fbb.CreateString("f") : 0);
  }
  if (!s.name.empty()) name = fbb.CreateString(s.name);
  else if (s.class_ref == 0) name = fbb.CreateString("f");
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> actor;
  flatbuffers::Offset<flatbuffers::String> method;
  if (!s.actor.IsNil()) {
    actor = fbb.CreateVector(s.actor.data(), TaskID::kSize);
    if (!s.creation) method = fbb.CreateString("m");
  }
  auto spec = proto::CreateTaskSpec(fbb, tid, 0, caller, owner, fd, 0, s.num_returns, name, 0, actor, s.creation,
                                    method, 0, 0, false, s.seq, s.epoch_start, 0, s.class_ref);
  return FinishFrame(fbb, proto::CreatePushTask(fbb, spec));
}

class TaskReceiverTest : public FakeTransportTest {
 protected:
  void SetUp() override {
    StartWorker("/worker", /*is_driver=*/false);
    link_ = std::make_shared<FakeLink>();
    CoreGuard lock(cw_->context());
    cw_->receiver().OnAcceptedLocked(link_);
  }
  void Push(const PushSpec& s, const std::shared_ptr<FakeLink>& on = nullptr) {
    Frame f = PushFrame(s);
    CoreGuard lock(cw_->context());
    cw_->OnInboundLocked(on ? on : link_, *Env(f));
  }
  // The tasks handed to the host so far (kExecuteTask events).
  std::vector<std::shared_ptr<ExecTask>> Executed() {
    std::vector<std::shared_ptr<ExecTask>> out;
    for (auto& e : cw_->context().DrainEvents())
      if (e.type == Event::Type::kExecuteTask) out.push_back(e.task);
    return out;
  }
  // This worker becomes an actor (its constructor call ran).
  PushSpec StartActor() {
    PushSpec ctor;
    ctor.actor = TaskID::FromRandom();
    ctor.creation = true;
    Push(ctor);
    EXPECT_EQ(Executed().size(), 1u);
    return ctor;
  }
  static ReturnValue Inline(const std::string& v) {
    ReturnValue r;
    r.data = std::make_shared<const std::string>(v);
    r.size = v.size();
    return r;
  }

  std::shared_ptr<FakeLink> link_;
};

TEST_F(TaskReceiverTest, APushedTaskRunsOnTheHostAndItsReplyGoesBackOnItsLink) {
  PushSpec s;
  Push(s);
  auto ex = Executed();
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0]->task_id, s.task);
  EXPECT_EQ(ex[0]->task_name(), "f");
  EXPECT_EQ(ex[0]->cls->function.source, "() => 1");
  cw_->receiver().TaskDone(ex[0]->handle, {Inline("42")});
  auto replies = link_->Of(Body::PushTaskReply);
  ASSERT_EQ(replies.size(), 1u);
  auto* r = replies[0]->body_as_PushTaskReply();
  EXPECT_EQ(TaskID::FromBytes(r->task_id()->data()), s.task);
  ASSERT_EQ(r->returns()->size(), 1u);
  EXPECT_EQ(ObjectID::FromBytes(r->returns()->Get(0)->object_id()->data()), ObjectIdFor(s.task, 1));
  // A second TaskDone for the same handle sends nothing.
  cw_->receiver().TaskDone(ex[0]->handle, {Inline("43")});
  EXPECT_EQ(link_->Of(Body::PushTaskReply).size(), 1u);
}

TEST_F(TaskReceiverTest, AClassDefinedOnceServesTheLaterTasksOfItsSlot) {
  PushSpec def;
  def.class_ref = 1;
  Push(def);
  PushSpec later;
  later.class_ref = 1;
  later.define = false;
  Push(later);
  PushSpec named = later;
  named.task = TaskID::FromRandom();
  named.name = "own";
  Push(named);
  auto ex = Executed();
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[1]->cls, ex[0]->cls);  // one class record, not a copy per task
  EXPECT_EQ(ex[1]->cls->function.hash, "h");
  EXPECT_EQ(ex[1]->cls->owner_address, "/caller");
  EXPECT_EQ(ex[1]->task_name(), "f");
  EXPECT_EQ(ex[2]->task_name(), "own");
  // The reply of a slot's task goes back like any other.
  cw_->receiver().TaskDone(ex[1]->handle, {Inline("1")});
  EXPECT_EQ(link_->Of(Body::PushTaskReply).size(), 1u);
  EXPECT_FALSE(link_->closed());
}

TEST_F(TaskReceiverTest, ASlotTheLinkNeverDefinedClosesTheLink) {
  PushSpec s;
  s.class_ref = 3;
  s.define = false;
  Push(s);
  EXPECT_TRUE(Executed().empty());
  EXPECT_TRUE(link_->closed());
  // Another link's definition does not serve this one.
  auto other = std::make_shared<FakeLink>();
  {
    CoreGuard lock(cw_->context());
    cw_->receiver().OnAcceptedLocked(other);
  }
  PushSpec def;
  def.class_ref = 1;
  Push(def, other);
  PushSpec later;
  later.class_ref = 1;
  later.define = false;
  auto fresh = std::make_shared<FakeLink>();
  {
    CoreGuard lock(cw_->context());
    cw_->receiver().OnAcceptedLocked(fresh);
  }
  Push(later, fresh);
  EXPECT_EQ(Executed().size(), 1u);
  EXPECT_TRUE(fresh->closed());
  EXPECT_FALSE(other->closed());
}

TEST_F(TaskReceiverTest, ActorCallsRunInTheCallersSendOrder) {
  PushSpec ctor = StartActor();
  WorkerID caller = WorkerID::FromRandom();
  PushSpec c0, c1, c2;
  for (auto* c : {&c0, &c1, &c2}) {
    c->actor = ctor.actor;
    c->caller = caller;
  }
  c0.seq = 0, c1.seq = 1, c2.seq = 2;
  Push(c2);
  Push(c1);
  EXPECT_TRUE(Executed().empty()) << "calls 1 and 2 wait for call 0";
  Push(c0);
  auto ex = Executed();
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0]->task_id, c0.task);
  EXPECT_EQ(ex[1]->task_id, c1.task);
  EXPECT_EQ(ex[2]->task_id, c2.task);
}

TEST_F(TaskReceiverTest, AMissingCallIsSkippedAfterTheBoundedWait) {
  PushSpec ctor = StartActor();
  PushSpec c1;
  c1.actor = ctor.actor;
  c1.caller = WorkerID::FromRandom();
  c1.seq = 1;  // call 0 never arrives (its caller died between sends)
  Push(c1);
  EXPECT_TRUE(Executed().empty());
  t_.Advance(std::chrono::seconds(9));
  EXPECT_TRUE(Executed().empty()) << "still waiting within the bound";
  t_.Advance(std::chrono::seconds(2));
  auto ex = Executed();
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0]->task_id, c1.task);
}

TEST_F(TaskReceiverTest, ACallOfAnOlderConnectionArrivingLateNeverRuns) {
  PushSpec ctor = StartActor();
  WorkerID caller = WorkerID::FromRandom();
  // The caller reconnected: its new epoch starts at send number 5.
  PushSpec fresh;
  fresh.actor = ctor.actor;
  fresh.caller = caller;
  fresh.seq = 5;
  fresh.epoch_start = 5;
  Push(fresh);
  ASSERT_EQ(Executed().size(), 1u);
  PushSpec stale = fresh;
  stale.task = TaskID::FromRandom();
  stale.seq = 3;
  stale.epoch_start = 0;
  Push(stale);
  EXPECT_TRUE(Executed().empty()) << "a stale call is dropped";
}

TEST_F(TaskReceiverTest, HeldCallsOfAClosedLinkAreDropped) {
  PushSpec ctor = StartActor();
  PushSpec c1;
  c1.actor = ctor.actor;
  c1.caller = WorkerID::FromRandom();
  c1.seq = 1;
  Push(c1);
  {
    CoreGuard lock(cw_->context());
    cw_->receiver().OnLinkClosedLocked(link_);
    EXPECT_FALSE(cw_->receiver().IsExecutingLocked(c1.task));
  }
  t_.Advance(std::chrono::seconds(20));
  EXPECT_TRUE(Executed().empty()) << "the held call's caller is gone: it never runs";
}

TEST_F(TaskReceiverTest, ACancelRequestReachesTheHostAndForceExitsAfterFlushing) {
  PushSpec s;
  Push(s);
  Executed();
  auto cancel = [&](bool force) {
    flatbuffers::FlatBufferBuilder fbb(64);
    auto tid = fbb.CreateVector(s.task.data(), TaskID::kSize);
    Frame f = FinishFrame(fbb, proto::CreateCancelTask(fbb, tid, force, false));
    CoreGuard lock(cw_->context());
    cw_->OnInboundLocked(link_, *Env(f));
  };
  cancel(false);
  auto events = cw_->context().DrainEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Event::Type::kCancelTask);
  EXPECT_EQ(events[0].task_id, s.task);
  EXPECT_TRUE(t_.exits.empty());
  cancel(true);
  EXPECT_EQ(t_.flushes, 1);
  EXPECT_EQ(t_.exits, std::vector<int>{1});
}

TEST_F(TaskReceiverTest, TheMemoryMonitorsKillTellsEveryCallerWhyThenExits) {
  auto other = std::make_shared<FakeLink>();
  {
    CoreGuard lock(cw_->context());
    cw_->receiver().OnAcceptedLocked(other);
  }
  flatbuffers::FlatBufferBuilder fbb(64);
  auto why = fbb.CreateString("node memory 96% > 95%");
  Frame f = FinishFrame(fbb, proto::CreateKillWorker(fbb, why));
  t_.DeliverControl(*cw_, f);
  for (auto& l : {link_, other}) {
    auto notes = l->Of(Body::WorkerExiting);
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_EQ(notes[0]->body_as_WorkerExiting()->code(), 137);
    EXPECT_EQ(notes[0]->body_as_WorkerExiting()->oom_message()->str(), "node memory 96% > 95%");
  }
  EXPECT_EQ(t_.exits, std::vector<int>{137});
}

TEST_F(TaskReceiverTest, BlockingIsReportedToTheNodeOnlyOnTheOuterTransition) {
  cw_->receiver().SetBlocked(true);
  cw_->receiver().SetBlocked(true);
  cw_->receiver().SetBlocked(false);
  EXPECT_EQ(t_.NodeFrames(Body::NotifyBlocked).size(), 1u);
  cw_->receiver().SetBlocked(false);
  auto notes = t_.NodeFrames(Body::NotifyBlocked);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_TRUE(notes[0]->body_as_NotifyBlocked()->blocked());
  EXPECT_FALSE(notes[1]->body_as_NotifyBlocked()->blocked());
}

}  // namespace
}  // namespace rayts::test
