#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/core_worker/actor_call_queue.h"
#include "core/core_worker/actor_scheduling_queue.h"

namespace rayts {
namespace {

using Call = ActorCallQueue::Call;
using State = ActorCallQueue::State;

std::vector<uint64_t> Seqs(const std::vector<Call>& calls) {
  std::vector<uint64_t> out;
  for (const Call& c : calls) out.push_back(c.seq);
  return out;
}

std::vector<uint64_t> Range(uint64_t from, uint64_t to) {  // [from, to)
  std::vector<uint64_t> out;
  for (uint64_t i = from; i < to; i++) out.push_back(i);
  return out;
}

// Feeds calls to an executor queue the way the actor's CoreWorker would:
// handle = caller seq, so what runs can be compared with submission order.
void Deliver(ActorSchedulingQueue& q, const std::vector<Call>& calls) {
  for (const Call& c : calls) {
    q.ObserveEpochStart(c.epoch_start);
    q.Add(c.send_seq, c.seq);
  }
}

// ---------------------------------------------------------------- caller

TEST(ActorCallQueueTest, TenThousandCallsInOrder) {
  ActorCallQueue q("Counter(aa)");
  q.OnConnected(1);
  ActorSchedulingQueue exec;
  std::vector<TaskID> tasks;
  for (uint64_t i = 0; i < 10000; i++) {
    tasks.push_back(TaskID::FromRandom());
    ASSERT_EQ(q.Enqueue(tasks.back(), 0), i);
  }
  EXPECT_EQ(q.num_pending(), 10000u);
  std::vector<Call> sent = q.TakeSendable();
  ASSERT_EQ(sent.size(), 10000u);
  for (uint64_t i = 0; i < sent.size(); i++) {
    EXPECT_EQ(sent[i].seq, i);
    EXPECT_EQ(sent[i].task, tasks[i]);
    EXPECT_EQ(sent[i].attempt, 0);
    EXPECT_EQ(sent[i].epoch, 1u);
  }
  EXPECT_TRUE(q.TakeSendable().empty());
  EXPECT_EQ(q.num_in_flight(), 10000u);
  Deliver(exec, sent);
  std::vector<uint64_t> ran = exec.TakeRunnable();
  EXPECT_EQ(ran, Range(0, 10000));
  for (uint64_t seq : ran) ASSERT_TRUE(q.OnReplied(seq));
  EXPECT_EQ(q.num_pending(), 0u);
  EXPECT_EQ(q.num_in_flight(), 0u);
  EXPECT_TRUE(q.TakeFailed().empty());
  EXPECT_FALSE(q.OnReplied(5));      // duplicate
  EXPECT_FALSE(q.OnReplied(10000));  // unknown
}

TEST(ActorCallQueueTest, InterleavedEnqueueSendReply) {
  ActorCallQueue q("A");
  q.OnConnected(1);
  uint64_t replied = 0;
  for (uint64_t round = 0; round < 100; round++) {
    for (int i = 0; i < 7; i++) q.Enqueue(TaskID::FromRandom(), 0);
    std::vector<Call> sent = q.TakeSendable();
    ASSERT_EQ(Seqs(sent), Range(round * 7, round * 7 + 7));
    for (int i = 0; i < 5; i++) ASSERT_TRUE(q.OnReplied(replied++));
  }
  EXPECT_EQ(q.num_pending(), 700u - 500u);
}

TEST(ActorCallQueueTest, HeldWhileDisconnectedOrRestarting) {
  ActorCallQueue q("A");
  EXPECT_EQ(q.state(), State::kDisconnected);
  q.Enqueue(TaskID::FromRandom(), 1);
  q.Enqueue(TaskID::FromRandom(), 1);
  EXPECT_TRUE(q.TakeSendable().empty());  // actor still being created
  q.OnConnected(1);
  EXPECT_EQ(Seqs(q.TakeSendable()), (std::vector<uint64_t>{0, 1}));
  q.OnDisconnected(/*restarting=*/true);
  EXPECT_EQ(q.state(), State::kRestarting);
  q.Enqueue(TaskID::FromRandom(), 0);
  EXPECT_TRUE(q.TakeSendable().empty());
  EXPECT_TRUE(q.TakeFailed().empty());
  EXPECT_EQ(q.num_pending(), 3u);
}

TEST(ActorCallQueueTest, ReconnectResendsUnrepliedInSeqOrderWithAttemptPlusOne) {
  ActorCallQueue q("Counter(bb)");
  q.OnConnected(1);
  ActorSchedulingQueue exec1;
  for (int i = 0; i < 6; i++) q.Enqueue(TaskID::FromRandom(), 2);
  std::vector<Call> first = q.TakeSendable();
  ASSERT_EQ(first.size(), 6u);
  Deliver(exec1, first);
  EXPECT_EQ(exec1.TakeRunnable(), Range(0, 6));
  // Replies for 0, 1 and 4 arrive; then the actor crashes.
  ASSERT_TRUE(q.OnReplied(0));
  ASSERT_TRUE(q.OnReplied(1));
  ASSERT_TRUE(q.OnReplied(4));
  q.OnDisconnected(/*restarting=*/true);
  q.Enqueue(TaskID::FromRandom(), 2);  // seq 6, never sent
  q.OnConnected(2);
  std::vector<Call> again = q.TakeSendable();
  EXPECT_EQ(Seqs(again), (std::vector<uint64_t>{2, 3, 5, 6}));
  EXPECT_EQ(again[0].attempt, 1);
  EXPECT_EQ(again[1].attempt, 1);
  EXPECT_EQ(again[2].attempt, 1);
  EXPECT_EQ(again[3].attempt, 0);
  for (const Call& c : again) {
    EXPECT_EQ(c.epoch, 2u);
    EXPECT_EQ(c.epoch_start, 6u);  // six calls were sent on epoch 1
  }
  for (size_t i = 0; i < 3; i++) EXPECT_EQ(again[i].task, first[again[i].seq].task);
  EXPECT_TRUE(q.TakeFailed().empty());

  // The restarted actor has a fresh queue; the new epoch starts it at 6.
  ActorSchedulingQueue exec2;
  std::vector<Call> shuffled = {again[3], again[1], again[0], again[2]};
  Deliver(exec2, shuffled);
  EXPECT_EQ(exec2.TakeRunnable(), (std::vector<uint64_t>{2, 3, 5, 6}));
  EXPECT_TRUE(exec2.TakeStale().empty());

  // A second restart: attempt 2, then retries are exhausted.
  q.OnConnected(3);
  std::vector<Call> third = q.TakeSendable();
  EXPECT_EQ(Seqs(third), (std::vector<uint64_t>{2, 3, 5, 6}));
  EXPECT_EQ(third[0].attempt, 2);
  EXPECT_EQ(third[3].attempt, 1);
  q.OnConnected(4);
  std::vector<Call> fourth = q.TakeSendable();
  EXPECT_EQ(Seqs(fourth), (std::vector<uint64_t>{6}));
  EXPECT_EQ(fourth[0].attempt, 2);
  EXPECT_EQ(q.TakeFailed().size(), 3u);
}

TEST(ActorCallQueueTest, NoRetriesFailsWithReasonAndLeavesNoGap) {
  ActorCallQueue q("Counter(cc)");
  q.OnConnected(1);
  std::vector<TaskID> t;
  for (int i = 0; i < 4; i++) {
    t.push_back(TaskID::FromRandom());
    q.Enqueue(t.back(), i == 1 ? 0 : 1);  // seq 1 has no retries
  }
  ASSERT_EQ(q.TakeSendable().size(), 4u);
  q.OnDisconnected(/*restarting=*/true, "its worker process exited with code 3");
  // The call without retries fails at the disconnection, not at the
  // reconnection: it can never be resent.
  auto failed = q.TakeFailed();
  ASSERT_EQ(failed.size(), 1u);
  q.OnConnected(7);
  EXPECT_TRUE(q.TakeFailed().empty());
  EXPECT_EQ(failed[0].first, t[1]);
  const std::string& why = failed[0].second;
  EXPECT_NE(why.find("Counter(cc)"), std::string::npos) << why;
  EXPECT_NE(why.find("lost its worker while call seq 1 was in flight (its worker process exited with code 3)"),
            std::string::npos) << why;
  EXPECT_NE(why.find("no retries left"), std::string::npos) << why;
  EXPECT_NE(why.find("maxTaskRetries=0"), std::string::npos) << why;
  EXPECT_EQ(q.num_pending(), 3u);
  EXPECT_FALSE(q.OnReplied(1));  // a failed call is gone

  // The remaining calls are numbered densely on the wire: the executor runs
  // them at once, with no gap left by the failed call.
  std::vector<Call> again = q.TakeSendable();
  EXPECT_EQ(Seqs(again), (std::vector<uint64_t>{0, 2, 3}));
  ActorSchedulingQueue exec;
  Deliver(exec, {again[2], again[0], again[1]});
  EXPECT_FALSE(exec.HasGap());
  EXPECT_EQ(exec.TakeRunnable(), (std::vector<uint64_t>{0, 2, 3}));
}

TEST(ActorCallQueueTest, CallsWaitingForArgumentsHoldLaterCalls) {
  // Submission order on the wire even when a later call's arguments are
  // ready first: call 1 waits for an argument, calls 2 and 3 do not.
  ActorCallQueue q("A");
  q.OnConnected(1);
  q.Enqueue(TaskID::FromRandom(), 0);
  q.Enqueue(TaskID::FromRandom(), 0, /*ready=*/false);
  q.Enqueue(TaskID::FromRandom(), 0);
  q.Enqueue(TaskID::FromRandom(), 0);
  EXPECT_EQ(Seqs(q.TakeSendable()), (std::vector<uint64_t>{0}));
  EXPECT_TRUE(q.TakeSendable().empty());
  EXPECT_FALSE(q.MarkReady(99));
  ASSERT_TRUE(q.MarkReady(1));
  std::vector<Call> rest = q.TakeSendable();
  EXPECT_EQ(Seqs(rest), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(rest[0].send_seq, 1u);  // dense on the wire
  // A call failed by the owner while waiting (its argument failed) leaves
  // the queue without holding the calls behind it.
  q.Enqueue(TaskID::FromRandom(), 0, /*ready=*/false);  // seq 4
  q.Enqueue(TaskID::FromRandom(), 0);                   // seq 5
  EXPECT_TRUE(q.TakeSendable().empty());
  ASSERT_TRUE(q.OnReplied(4));
  std::vector<Call> after = q.TakeSendable();
  EXPECT_EQ(Seqs(after), (std::vector<uint64_t>{5}));
  EXPECT_EQ(after[0].send_seq, 4u);
  // Held across a restart too: resent calls first, then the wait.
  q.Enqueue(TaskID::FromRandom(), 0, /*ready=*/false);  // seq 6
  q.OnDisconnected(/*restarting=*/true, "crash");
  EXPECT_EQ(q.TakeFailed().size(), 5u);  // seqs 0-3 and 5 were in flight, with no retries
  q.OnConnected(2);
  EXPECT_TRUE(q.TakeSendable().empty());
  ASSERT_TRUE(q.MarkReady(6));
  EXPECT_EQ(Seqs(q.TakeSendable()), (std::vector<uint64_t>{6}));
}

TEST(ActorCallQueueTest, UnlimitedRetries) {
  ActorCallQueue q("A");
  q.Enqueue(TaskID::FromRandom(), -1);
  for (uint64_t e = 1; e <= 50; e++) {
    q.OnConnected(e);
    auto sent = q.TakeSendable();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].attempt, static_cast<int>(e - 1));
  }
  EXPECT_TRUE(q.TakeFailed().empty());
}

TEST(ActorCallQueueTest, LateReplyOfEarlierAttemptCompletesTheCall) {
  ActorCallQueue q("A");
  q.OnConnected(1);
  q.Enqueue(TaskID::FromRandom(), 3);
  q.Enqueue(TaskID::FromRandom(), 3);
  ASSERT_EQ(q.TakeSendable().size(), 2u);
  q.OnConnected(2);              // both marked for resend
  EXPECT_TRUE(q.OnReplied(0));   // the first attempt's reply was only late
  EXPECT_EQ(Seqs(q.TakeSendable()), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(q.OnReplied(1));
  EXPECT_FALSE(q.OnReplied(0));  // reply of the resend: duplicate
  EXPECT_EQ(q.num_pending(), 0u);
}

TEST(ActorCallQueueTest, DeadFailsAllPendingAndLaterCalls) {
  ActorCallQueue q("Counter(dd)");
  q.OnConnected(1);
  std::vector<TaskID> t;
  for (int i = 0; i < 5; i++) {
    t.push_back(TaskID::FromRandom());
    q.Enqueue(t.back(), 5);
  }
  ASSERT_EQ(q.TakeSendable().size(), 3u + 2u);
  t.push_back(TaskID::FromRandom());
  q.Enqueue(t.back(), 5);  // queued, not sent
  ASSERT_TRUE(q.OnReplied(2));
  q.OnDisconnected(/*restarting=*/false, "killed by ray.kill");
  EXPECT_EQ(q.state(), State::kDead);
  EXPECT_EQ(q.num_pending(), 0u);
  EXPECT_EQ(q.num_in_flight(), 0u);
  auto failed = q.TakeFailed();
  ASSERT_EQ(failed.size(), 5u);
  std::vector<TaskID> expect = {t[0], t[1], t[3], t[4], t[5]};
  for (size_t i = 0; i < failed.size(); i++) {
    EXPECT_EQ(failed[i].first, expect[i]);
    EXPECT_EQ(failed[i].second, "actor Counter(dd) died: killed by ray.kill");
  }
  // Dead is terminal: a reconnection is ignored, new calls fail at once.
  q.OnConnected(2);
  EXPECT_EQ(q.state(), State::kDead);
  TaskID late = TaskID::FromRandom();
  EXPECT_EQ(q.Enqueue(late, 5), 6u);
  EXPECT_TRUE(q.TakeSendable().empty());
  failed = q.TakeFailed();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].first, late);
  EXPECT_NE(failed[0].second.find("actor Counter(dd) is dead: killed by ray.kill"), std::string::npos)
      << failed[0].second;
  EXPECT_FALSE(q.OnReplied(0));
}

TEST(ActorCallQueueTest, MaxPendingCallsLimit) {
  ActorCallQueue q("Counter(ee)", 3);
  q.OnConnected(1);
  for (int i = 0; i < 3; i++) {
    ASSERT_TRUE(q.CanEnqueue().ok());
    q.Enqueue(TaskID::FromRandom(), 0);
  }
  Status s = q.CanEnqueue();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("actor Counter(ee) has 3 pending calls, the limit set by maxPendingCalls (3)"),
            std::string::npos)
      << s.message();
  // In-flight calls still count; a reply frees a slot.
  ASSERT_EQ(q.TakeSendable().size(), 3u);
  EXPECT_FALSE(q.CanEnqueue().ok());
  ASSERT_TRUE(q.OnReplied(0));
  EXPECT_TRUE(q.CanEnqueue().ok());
  q.SetMaxPending(0);  // no limit
  for (int i = 0; i < 100; i++) q.Enqueue(TaskID::FromRandom(), 0);
  EXPECT_TRUE(q.CanEnqueue().ok());
  q.SetMaxPending(50);
  EXPECT_NE(q.CanEnqueue().message().find("has 102 pending calls"), std::string::npos);
}

// -------------------------------------------------------------- executor

TEST(ActorSchedulingQueueTest, OutOfOrderArrivalIsReordered) {
  ActorSchedulingQueue q;
  EXPECT_TRUE(q.ordered());
  q.Add(2, 102);
  q.Add(1, 101);
  EXPECT_TRUE(q.TakeRunnable().empty());
  EXPECT_TRUE(q.HasGap());
  q.Add(0, 100);
  EXPECT_FALSE(q.HasGap());
  EXPECT_EQ(q.TakeRunnable(), (std::vector<uint64_t>{100, 101, 102}));
  q.Add(4, 104);
  q.Add(5, 105);
  EXPECT_TRUE(q.TakeRunnable().empty());
  q.Add(3, 103);
  EXPECT_EQ(q.TakeRunnable(), (std::vector<uint64_t>{103, 104, 105}));
  EXPECT_EQ(q.next_expected(), 6u);
  EXPECT_EQ(q.num_queued(), 0u);
}

TEST(ActorSchedulingQueueTest, ReversedTenThousand) {
  ActorSchedulingQueue q;
  for (uint64_t i = 10000; i-- > 0;) q.Add(i, i);
  EXPECT_EQ(q.TakeRunnable(), Range(0, 10000));
}

TEST(ActorSchedulingQueueTest, MaxConcurrencyReleasesEverything) {
  ActorSchedulingQueue q(/*max_concurrency=*/8);
  EXPECT_FALSE(q.ordered());
  q.Add(5, 105);
  q.Add(2, 102);
  q.Add(9, 109);
  EXPECT_FALSE(q.HasGap());
  EXPECT_EQ(q.TakeRunnable(), (std::vector<uint64_t>{105, 102, 109}));  // arrival order
  EXPECT_EQ(q.num_queued(), 0u);
  EXPECT_TRUE(q.OnGapTimeout().empty());
  // Stale frames are still refused after a new caller connection.
  q.Add(20, 120);
  q.Add(3, 103);
  q.SetNextExpected(10);
  q.Add(4, 104);
  EXPECT_EQ(q.TakeStale(), (std::vector<uint64_t>{103, 104}));
  EXPECT_EQ(q.TakeRunnable(), (std::vector<uint64_t>{120}));
}

TEST(ActorSchedulingQueueTest, StaleSeqAfterReconnectIsReported) {
  ActorSchedulingQueue q;
  q.Add(0, 100);
  EXPECT_EQ(q.TakeRunnable(), (std::vector<uint64_t>{100}));
  q.Add(2, 102);  // waits for 1, which was lost with the connection
  q.Add(5, 105);
  // The caller reconnects; its new connection starts at 4.
  q.SetNextExpected(4);
  EXPECT_EQ(q.TakeStale(), (std::vector<uint64_t>{102}));
  q.Add(1, 101);  // a late frame of the old connection
  q.Add(5, 205);  // a duplicate of a queued seq
  EXPECT_EQ(q.TakeStale(), (std::vector<uint64_t>{101, 205}));
  EXPECT_TRUE(q.TakeRunnable().empty());
  q.Add(4, 104);
  EXPECT_EQ(q.TakeRunnable(), (std::vector<uint64_t>{104, 105}));
  EXPECT_TRUE(q.TakeStale().empty());
}

TEST(ActorSchedulingQueueTest, StaleFramesAcrossCallerEpochs) {
  // Same actor process, the caller's connection broke and came back.
  ActorCallQueue caller("A");
  ActorSchedulingQueue exec;
  caller.OnConnected(1);
  for (int i = 0; i < 3; i++) caller.Enqueue(TaskID::FromRandom(), 1);
  std::vector<Call> old = caller.TakeSendable();  // send_seq 0..2
  Deliver(exec, {old[0]});
  EXPECT_EQ(exec.TakeRunnable(), (std::vector<uint64_t>{0}));
  ASSERT_TRUE(caller.OnReplied(0));
  caller.OnDisconnected(/*restarting=*/true);
  caller.OnConnected(1);
  std::vector<Call> fresh = caller.TakeSendable();  // seq 1, 2 as send_seq 3, 4
  ASSERT_EQ(Seqs(fresh), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(fresh[0].send_seq, 3u);
  Deliver(exec, {fresh[1]});
  Deliver(exec, {old[2], old[1]});  // the old connection's frames, late
  EXPECT_EQ(exec.TakeStale(), (std::vector<uint64_t>{2, 1}));
  Deliver(exec, {fresh[0]});
  EXPECT_EQ(exec.TakeRunnable(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(exec.next_expected(), 5u);
}

TEST(ActorSchedulingQueueTest, GapTimeoutReleasesWithReason) {
  ActorSchedulingQueue q;
  EXPECT_TRUE(q.OnGapTimeout().empty());  // nothing waits
  q.Add(0, 100);
  EXPECT_EQ(q.TakeRunnable(), (std::vector<uint64_t>{100}));
  q.Add(3, 103);
  q.Add(4, 104);
  q.Add(7, 107);
  EXPECT_TRUE(q.TakeRunnable().empty());
  ASSERT_TRUE(q.HasGap());
  EXPECT_EQ(q.OnGapTimeout(), (std::vector<uint64_t>{103, 104}));
  const std::string& why = q.last_gap_reason();
  EXPECT_NE(why.find("calls 1..2"), std::string::npos) << why;
  EXPECT_NE(why.find("died between sends"), std::string::npos) << why;
  EXPECT_TRUE(q.HasGap());  // 5, 6 still missing
  EXPECT_EQ(q.OnGapTimeout(), (std::vector<uint64_t>{107}));
  EXPECT_NE(q.last_gap_reason().find("calls 5..6"), std::string::npos);
  EXPECT_FALSE(q.HasGap());
  // The skipped numbers, if they ever come, are stale.
  q.Add(1, 101);
  EXPECT_EQ(q.TakeStale(), (std::vector<uint64_t>{101}));
  // A gap filled before the timer fires: the timeout changes nothing.
  q.Add(9, 109);
  q.Add(8, 108);
  EXPECT_TRUE(q.OnGapTimeout().empty());
  EXPECT_EQ(q.TakeRunnable(), (std::vector<uint64_t>{108, 109}));
}

TEST(ActorSchedulingQueueTest, ObserveEpochStartIsMonotonic) {
  ActorSchedulingQueue q;
  q.ObserveEpochStart(0);
  EXPECT_EQ(q.next_expected(), 0u);
  q.Add(12, 112);
  q.ObserveEpochStart(10);
  EXPECT_EQ(q.next_expected(), 10u);
  q.ObserveEpochStart(4);  // an older connection's frame
  EXPECT_EQ(q.next_expected(), 10u);
  q.Add(10, 110);
  q.Add(11, 111);
  EXPECT_EQ(q.TakeRunnable(), (std::vector<uint64_t>{110, 111, 112}));
  q.ObserveEpochStart(10);  // same connection: no reset
  EXPECT_EQ(q.next_expected(), 13u);
}

}  // namespace
}  // namespace rayts
