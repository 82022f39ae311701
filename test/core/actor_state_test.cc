#include "core/core_worker/actor_state.h"

#include <gtest/gtest.h>

#include <string>

#include "test/core/test_util.h"

namespace rayts {
namespace {

TaskID ActorId(uint8_t n) {
  TaskID id;
  id.bytes.fill(0);
  id.bytes[0] = n;
  return id;
}

TEST(ActorState, StartsAliveWithItsCallQueueNamed) {
  ActorState a(ActorId(7), 42, /*borrowed=*/false);
  EXPECT_EQ(a.key, 42u);
  EXPECT_FALSE(a.dead);
  EXPECT_EQ(a.calls.actor(), "actor " + ActorId(7).Hex());
  EXPECT_EQ(a.calls.state(), ActorCallQueue::State::kDisconnected);
}

TEST(ActorState, RestartBudgetIsCountedAgainstMaxRestarts) {
  ActorState a(ActorId(1), 1, false);
  a.max_restarts = 2;
  EXPECT_TRUE(a.CanRestart());
  a.num_restarts = 1;
  EXPECT_TRUE(a.CanRestart());
  a.num_restarts = 2;
  EXPECT_FALSE(a.CanRestart());
}

TEST(ActorState, NoRestartsByDefaultAndForeverWithMinusOne) {
  ActorState none(ActorId(1), 1, false);
  EXPECT_FALSE(none.CanRestart());
  EXPECT_FALSE(none.LeaseRetriable());
  ActorState forever(ActorId(2), 2, false);
  forever.max_restarts = -1;
  forever.num_restarts = 1000000;
  EXPECT_TRUE(forever.CanRestart());
  EXPECT_TRUE(forever.LeaseRetriable());
}

TEST(ActorState, NeverRestartsWhenKilledDeadOrBorrowed) {
  ActorState killed(ActorId(1), 1, false);
  killed.max_restarts = -1;
  killed.no_restart = true;
  EXPECT_FALSE(killed.CanRestart());
  ActorState dead(ActorId(2), 2, false);
  dead.max_restarts = -1;
  ASSERT_TRUE(dead.MarkDead("gone"));
  EXPECT_FALSE(dead.CanRestart());
  ActorState borrowed(ActorId(3), 3, /*borrowed=*/true);
  borrowed.max_restarts = -1;  // the owner's budget; a borrower never restarts
  EXPECT_FALSE(borrowed.CanRestart());
}

TEST(ActorState, CallRetriesAreTheActorsMaxTaskRetriesForEveryCaller) {
  ActorState owned(ActorId(1), 1, false);
  owned.max_task_retries = 3;
  EXPECT_EQ(owned.CallRetries(), 3);
  owned.max_task_retries = -1;
  EXPECT_EQ(owned.CallRetries(), -1);
  // A borrowed handle carries the actor's maxTaskRetries (Ray: every caller
  // resends its own calls after a restart).
  ActorState borrowed(ActorId(2), 2, true);
  borrowed.max_task_retries = 3;
  EXPECT_EQ(borrowed.CallRetries(), 3);
  EXPECT_FALSE(borrowed.CanRestart()) << "restarts stay the owner's";
}

TEST(ActorState, MarkDeadKeepsTheFirstCause) {
  ActorState a(ActorId(1), 1, false);
  EXPECT_TRUE(a.MarkDead("its constructor threw"));
  EXPECT_TRUE(a.dead);
  EXPECT_FALSE(a.MarkDead("killed later"));
  EXPECT_EQ(a.death_cause, "its constructor threw");
}

TEST(ActorState, CreationArgRefsAreHandedOverOnce) {
  ActorState a(ActorId(1), 1, false);
  a.creation_arg_refs = {test::Id(1), test::Id(2)};
  auto pinned = a.TakeCreationArgRefs();
  EXPECT_EQ(pinned.size(), 2u);
  EXPECT_TRUE(a.creation_arg_refs.empty());
  EXPECT_TRUE(a.TakeCreationArgRefs().empty());
}

TEST(ActorState, LookupsAreBounded) {
  ActorState a(ActorId(1), 1, true);
  for (int i = 0; i < ActorState::kLookupRetries; i++) EXPECT_FALSE(a.LookupFailed()) << i;
  EXPECT_TRUE(a.LookupFailed());
  a.lookup_retries = 0;  // a success resets the count
  EXPECT_FALSE(a.LookupFailed());
  // While the GCS still names the broken address, longer (its node's death is not known yet).
  a.lookup_retries = 0;
  for (int i = 0; i < ActorState::kStaleLookupRetries; i++) EXPECT_FALSE(a.LookupFailed(/*stale=*/true)) << i;
  EXPECT_TRUE(a.LookupFailed(/*stale=*/true));
}

TEST(ActorState, DiedJsonNamesTheActorAndEscapesTheCause) {
  ActorState a(ActorId(9), 1, false);
  std::string json = a.DiedJson("it said \"bye\"");
  EXPECT_EQ(json, "{\"kind\":\"actor_died\",\"name\":\"ActorDiedError\",\"message\":\"it said \\\"bye\\\"\","
                  "\"actorId\":\"" + ActorId(9).Hex() + "\"}");
}

TEST(ActorState, DiedJsonCarriesTheConstructorsErrorRecord) {
  ActorState a(ActorId(9), 1, false);
  a.death_cause_record = "{\"name\":\"TypeError\",\"message\":\"bad arg\"}";
  std::string json = a.DiedJson("its constructor threw");
  EXPECT_NE(json.find(",\"cause\":{\"name\":\"TypeError\",\"message\":\"bad arg\"}}"), std::string::npos) << json;
}

}  // namespace
}  // namespace rayts
