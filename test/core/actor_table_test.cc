#include "core/gcs/actor_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace rayts::gcs {
namespace {

constexpr ActorState kPending = ActorState::kPendingCreation;
constexpr ActorState kAlive = ActorState::kAlive;
constexpr ActorState kRestarting = ActorState::kRestarting;
constexpr ActorState kDead = ActorState::kDead;

class ActorTableTest : public ::testing::Test {
 protected:
  ActorInfo Spec(const std::string& name = "", const std::string& ns = "default", int max_restarts = 0,
                 bool detached = false) {
    ActorInfo a;
    a.id = ActorID::FromRandom();
    a.name = name;
    a.ns = ns;
    a.class_name = "Counter";
    a.detached = detached;
    a.max_restarts = max_restarts;
    a.owner_worker = owner_;
    a.job = 1;
    a.creation_spec = "ctor-bytes";
    return a;
  }

  // Registers and returns the id; fails the test on error.
  ActorID Add(ActorInfo a) {
    StatusOr<ActorInfo> r = table_.Register(std::move(a), false);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : ActorID::Nil();
  }

  ActorState StateOf(const ActorID& id) {
    const ActorInfo* a = table_.Get(id);
    EXPECT_NE(a, nullptr);
    return a ? a->state : kDead;
  }

  // Records every state a subscription sees.
  uint64_t Record(const ActorID& id, std::vector<ActorState>* seen) {
    return table_.Subscribe(id, [seen](const ActorInfo& a) { seen->push_back(a.state); });
  }

  ActorTable table_;
  WorkerID owner_ = WorkerID::FromRandom();
};

TEST_F(ActorTableTest, StateNames) {
  EXPECT_STREQ(ActorStateName(kPending), "PENDING_CREATION");
  EXPECT_STREQ(ActorStateName(kAlive), "ALIVE");
  EXPECT_STREQ(ActorStateName(kRestarting), "RESTARTING");
  EXPECT_STREQ(ActorStateName(kDead), "DEAD");
}

TEST_F(ActorTableTest, FullLifecycleWithOneRestart) {
  ActorID id = Add(Spec("c", "ns", /*max_restarts=*/1));
  const ActorInfo* a = table_.Get(id);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->state, kPending);
  EXPECT_EQ(a->num_restarts, 0);
  EXPECT_EQ(a->creation_spec, "ctor-bytes");
  EXPECT_EQ(table_.num_alive(), 0u);

  WorkerID w1 = WorkerID::FromRandom();
  ASSERT_TRUE(table_.OnCreated(id, w1, "/tmp/w1.sock").ok());
  EXPECT_EQ(a->state, kAlive);
  EXPECT_EQ(a->worker, w1);
  EXPECT_EQ(a->address, "/tmp/w1.sock");
  EXPECT_EQ(table_.num_alive(), 1u);

  StatusOr<ActorState> s = table_.OnWorkerDied(id, "worker process exited with code 1");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, kRestarting);
  EXPECT_EQ(a->num_restarts, 1);
  EXPECT_TRUE(a->address.empty());
  EXPECT_TRUE(a->worker.IsNil());
  EXPECT_TRUE(a->death_cause.empty());
  EXPECT_EQ(table_.num_alive(), 0u);
  EXPECT_EQ(table_.GetByName("ns", "c"), a);  // a restarting actor keeps its name

  WorkerID w2 = WorkerID::FromRandom();
  ASSERT_TRUE(table_.OnCreated(id, w2, "/tmp/w2.sock").ok());
  EXPECT_EQ(a->state, kAlive);
  EXPECT_EQ(a->worker, w2);
  EXPECT_EQ(table_.num_alive(), 1u);

  s = table_.OnWorkerDied(id, "worker process exited with code 1");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, kDead);
  EXPECT_EQ(a->num_restarts, 1);
  EXPECT_EQ(a->death_cause, "worker process exited with code 1");
  EXPECT_TRUE(a->address.empty());
  EXPECT_EQ(table_.num_alive(), 0u);
  EXPECT_EQ(table_.GetByName("ns", "c"), nullptr);
  EXPECT_EQ(table_.Get(id), a);  // DEAD actors stay visible
}

TEST_F(ActorTableTest, MaxRestartsZeroDiesAtOnce) {
  ActorID id = Add(Spec("", "ns", 0));
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "a").ok());
  StatusOr<ActorState> s = table_.OnWorkerDied(id, "worker process exited with code 137");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, kDead);
  EXPECT_EQ(table_.Get(id)->num_restarts, 0);
  EXPECT_EQ(table_.Get(id)->death_cause, "worker process exited with code 137");
}

TEST_F(ActorTableTest, WorkerDiedWhilePendingCreationUsesBudget) {
  ActorID id = Add(Spec("", "ns", 1));
  StatusOr<ActorState> s = table_.OnWorkerDied(id, "crash");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, kRestarting);
  // The replacement worker dies before the constructor finishes: no budget.
  s = table_.OnWorkerDied(id, "crash again");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, kDead);
  EXPECT_EQ(table_.Get(id)->num_restarts, 1);
  EXPECT_EQ(table_.Get(id)->death_cause, "crash again");
}

TEST_F(ActorTableTest, MinusOneRestartsForever) {
  ActorID id = Add(Spec("", "ns", -1));
  for (int i = 1; i <= 100; i++) {
    ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());
    StatusOr<ActorState> s = table_.OnWorkerDied(id, "crash");
    ASSERT_TRUE(s.ok());
    ASSERT_EQ(*s, kRestarting) << "restart " << i;
    ASSERT_EQ(table_.Get(id)->num_restarts, i);
  }
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());
  EXPECT_EQ(StateOf(id), kAlive);
  ASSERT_TRUE(table_.Kill(id, /*no_restart=*/true, "killed by ray.kill").ok());
  EXPECT_EQ(StateOf(id), kDead);
}

TEST_F(ActorTableTest, InvalidTransitionsAreRejected) {
  ActorID id = Add(Spec("c1", "ns"));
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());

  // ALIVE -> ALIVE.
  Status st = table_.OnCreated(id, WorkerID::FromRandom(), "w");
  EXPECT_EQ(st.code(), StatusCode::kInvalid);
  EXPECT_NE(st.message().find("from ALIVE to ALIVE"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("'c1'"), std::string::npos) << st.message();

  // A constructor cannot fail once the actor is ALIVE.
  st = table_.OnCreationFailed(id, "constructor threw: x");
  EXPECT_EQ(st.code(), StatusCode::kInvalid);
  EXPECT_NE(st.message().find("from ALIVE to DEAD"), std::string::npos) << st.message();
  EXPECT_EQ(StateOf(id), kAlive);

  ASSERT_TRUE(table_.Kill(id, true, "killed by ray.kill").ok());

  // DEAD is terminal.
  st = table_.OnCreated(id, WorkerID::FromRandom(), "w");
  EXPECT_EQ(st.code(), StatusCode::kInvalid);
  EXPECT_NE(st.message().find("from DEAD to ALIVE"), std::string::npos) << st.message();
  StatusOr<ActorState> s = table_.OnWorkerDied(id, "crash");
  EXPECT_EQ(s.status().code(), StatusCode::kInvalid);
  EXPECT_NE(s.status().message().find("from DEAD to"), std::string::npos);
  EXPECT_EQ(table_.OnCreationFailed(id, "x").code(), StatusCode::kInvalid);
  EXPECT_TRUE(table_.Kill(id, false, "again").ok());  // killing a dead actor: no-op
  table_.OnHandlesReleased(id);
  table_.OnOwnerDied(owner_);
  EXPECT_EQ(StateOf(id), kDead);
  EXPECT_EQ(table_.Get(id)->death_cause, "killed by ray.kill");

  // Unknown actors.
  ActorID unknown = ActorID::FromRandom();
  EXPECT_EQ(table_.OnCreated(unknown, WorkerID::FromRandom(), "w").code(), StatusCode::kNotFound);
  EXPECT_EQ(table_.OnWorkerDied(unknown, "x").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(table_.OnCreationFailed(unknown, "x").code(), StatusCode::kNotFound);
  EXPECT_EQ(table_.Kill(unknown, true, "x").code(), StatusCode::kNotFound);
  EXPECT_EQ(table_.Get(unknown), nullptr);
}

TEST_F(ActorTableTest, RegisterRejectsBadInput) {
  ActorInfo a = Spec();
  a.id = ActorID::Nil();
  EXPECT_EQ(table_.Register(a, false).status().code(), StatusCode::kInvalidArgument);
  ActorInfo b = Spec();
  b.max_restarts = -2;
  StatusOr<ActorInfo> r = table_.Register(b, false);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("max_restarts"), std::string::npos);
  EXPECT_TRUE(table_.List().empty());
}

TEST_F(ActorTableTest, RegisterResetsLifecycleFields) {
  ActorInfo a = Spec("", "ns", 3);
  a.state = kAlive;
  a.num_restarts = 7;
  a.address = "stale";
  a.worker = WorkerID::FromRandom();
  a.death_cause = "stale";
  StatusOr<ActorInfo> r = table_.Register(a, false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, kPending);
  EXPECT_EQ(r->num_restarts, 0);
  EXPECT_TRUE(r->address.empty());
  EXPECT_TRUE(r->worker.IsNil());
  EXPECT_TRUE(r->death_cause.empty());
  EXPECT_EQ(table_.num_alive(), 0u);
}

TEST_F(ActorTableTest, RegisterSameIdIsIdempotent) {
  ActorInfo a = Spec("c", "ns");
  ActorID id = Add(a);
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());
  StatusOr<ActorInfo> again = table_.Register(a, false);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->id, id);
  EXPECT_EQ(again->state, kAlive);
  EXPECT_EQ(table_.List().size(), 1u);
}

TEST_F(ActorTableTest, NamesAreUniquePerNamespace) {
  ActorID first = Add(Spec("c1", "ns"));
  StatusOr<ActorInfo> dup = table_.Register(Spec("c1", "ns"), false);
  ASSERT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.status().message(), "an actor named 'c1' already exists in namespace 'ns'");

  // Same name in another namespace is a different actor.
  ActorID other = Add(Spec("c1", "other"));
  EXPECT_NE(first, other);
  EXPECT_EQ(table_.GetByName("ns", "c1")->id, first);
  EXPECT_EQ(table_.GetByName("other", "c1")->id, other);
  EXPECT_EQ(table_.GetByName("ns", "nope"), nullptr);

  // Anonymous actors never collide.
  Add(Spec("", "ns"));
  Add(Spec("", "ns"));
  EXPECT_EQ(table_.List().size(), 4u);
}

TEST_F(ActorTableTest, NameIsReusableAfterDeath) {
  ActorID first = Add(Spec("c1", "ns"));
  ASSERT_TRUE(table_.Kill(first, true, "killed by ray.kill").ok());
  EXPECT_EQ(table_.GetByName("ns", "c1"), nullptr);

  ActorID second = Add(Spec("c1", "ns"));
  EXPECT_NE(first, second);
  EXPECT_EQ(table_.GetByName("ns", "c1")->id, second);
  EXPECT_EQ(StateOf(first), kDead);
  EXPECT_EQ(StateOf(second), kPending);
}

TEST_F(ActorTableTest, GetIfExistsReturnsTheExistingActor) {
  ActorID first = Add(Spec("c1", "ns"));
  ASSERT_TRUE(table_.OnCreated(first, WorkerID::FromRandom(), "w").ok());
  StatusOr<ActorInfo> got = table_.Register(Spec("c1", "ns"), /*get_if_exists=*/true);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->id, first);
  EXPECT_EQ(got->state, kAlive);
  EXPECT_EQ(table_.List().size(), 1u);

  // With no live holder of the name, get_if_exists creates.
  StatusOr<ActorInfo> fresh = table_.Register(Spec("c2", "ns"), true);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->state, kPending);
  ASSERT_TRUE(table_.Kill(first, true, "killed by ray.kill").ok());
  StatusOr<ActorInfo> replaced = table_.Register(Spec("c1", "ns"), true);
  ASSERT_TRUE(replaced.ok());
  EXPECT_NE(replaced->id, first);
  EXPECT_EQ(replaced->state, kPending);
}

TEST_F(ActorTableTest, KillWithNoRestartDiesDespiteBudget) {
  ActorID id = Add(Spec("", "ns", 5));
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());
  ASSERT_TRUE(table_.Kill(id, /*no_restart=*/true, "killed by ray.kill").ok());
  EXPECT_EQ(StateOf(id), kDead);
  EXPECT_EQ(table_.Get(id)->death_cause, "killed by ray.kill");
  EXPECT_EQ(table_.Get(id)->num_restarts, 0);
  EXPECT_EQ(table_.num_alive(), 0u);
}

TEST_F(ActorTableTest, KillWithoutNoRestartRestartsWhileBudgetLasts) {
  ActorID id = Add(Spec("", "ns", 1));
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());
  ASSERT_TRUE(table_.Kill(id, /*no_restart=*/false, "killed by ray.kill").ok());
  EXPECT_EQ(StateOf(id), kRestarting);
  EXPECT_EQ(table_.Get(id)->num_restarts, 1);
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());
  ASSERT_TRUE(table_.Kill(id, false, "killed by ray.kill").ok());
  EXPECT_EQ(StateOf(id), kDead);
  EXPECT_EQ(table_.Get(id)->death_cause, "killed by ray.kill");
}

TEST_F(ActorTableTest, OwnerDeathKillsNonDetachedOnly) {
  ActorID owned = Add(Spec("a", "ns", 3));
  ActorID detached = Add(Spec("d", "ns", 3, /*detached=*/true));
  ActorInfo other_spec = Spec("o", "ns", 3);
  other_spec.owner_worker = WorkerID::FromRandom();
  ActorID other = Add(other_spec);
  for (ActorID id : {owned, detached, other}) {
    ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());
  }
  table_.OnOwnerDied(owner_);
  EXPECT_EQ(StateOf(owned), kDead);  // no restart even with budget
  EXPECT_EQ(table_.Get(owned)->death_cause, "owner died");
  EXPECT_EQ(StateOf(detached), kAlive);
  EXPECT_EQ(StateOf(other), kAlive);
  EXPECT_EQ(table_.num_alive(), 2u);
  EXPECT_EQ(table_.GetByName("ns", "a"), nullptr);
  EXPECT_NE(table_.GetByName("ns", "d"), nullptr);
}

TEST_F(ActorTableTest, JobFinishedKillsNonDetachedActorsOfThatJob) {
  ActorID job1 = Add(Spec("", "ns"));
  ActorID job1_detached = Add(Spec("", "ns", 0, true));
  ActorInfo s = Spec("", "ns");
  s.job = 2;
  ActorID job2 = Add(s);
  table_.OnJobFinished(1);
  EXPECT_EQ(StateOf(job1), kDead);
  EXPECT_EQ(table_.Get(job1)->death_cause, "job finished");
  EXPECT_EQ(StateOf(job1_detached), kPending);
  EXPECT_EQ(StateOf(job2), kPending);
}

TEST_F(ActorTableTest, HandlesReleasedKillsNonDetachedOnly) {
  ActorID normal = Add(Spec("", "ns", 2));
  ActorID detached = Add(Spec("", "ns", 2, true));
  ASSERT_TRUE(table_.OnCreated(normal, WorkerID::FromRandom(), "w").ok());
  ASSERT_TRUE(table_.OnCreated(detached, WorkerID::FromRandom(), "w").ok());
  table_.OnHandlesReleased(normal);
  table_.OnHandlesReleased(detached);
  table_.OnHandlesReleased(ActorID::FromRandom());  // unknown: ignored
  EXPECT_EQ(StateOf(normal), kDead);
  EXPECT_EQ(table_.Get(normal)->death_cause, "all handles released");
  EXPECT_EQ(table_.Get(normal)->num_restarts, 0);
  EXPECT_EQ(StateOf(detached), kAlive);
}

TEST_F(ActorTableTest, CreationFailureKeepsTheCauseAndSkipsRestart) {
  ActorID id = Add(Spec("c", "ns", 3));
  ASSERT_TRUE(table_.OnCreationFailed(id, "constructor threw: TypeError: x").ok());
  EXPECT_EQ(StateOf(id), kDead);
  EXPECT_EQ(table_.Get(id)->death_cause, "constructor threw: TypeError: x");
  EXPECT_EQ(table_.Get(id)->num_restarts, 0);

  // A constructor re-run on restart may throw too.
  ActorID r = Add(Spec("", "ns", 3));
  ASSERT_TRUE(table_.OnCreated(r, WorkerID::FromRandom(), "w").ok());
  ASSERT_EQ(*table_.OnWorkerDied(r, "crash"), kRestarting);
  ASSERT_TRUE(table_.OnCreationFailed(r, "constructor threw: Error: again").ok());
  EXPECT_EQ(StateOf(r), kDead);
  EXPECT_EQ(table_.Get(r)->death_cause, "constructor threw: Error: again");
}

TEST_F(ActorTableTest, EmptyCauseStillLeavesADeathCause) {
  ActorID id = Add(Spec());
  ASSERT_TRUE(table_.Kill(id, true, "").ok());
  EXPECT_FALSE(table_.Get(id)->death_cause.empty());
}

TEST_F(ActorTableTest, ListIsInRegistrationOrderAndCountsAlive) {
  std::vector<ActorID> ids;
  for (int i = 0; i < 20; i++) ids.push_back(Add(Spec()));
  for (int i = 0; i < 20; i += 2) ASSERT_TRUE(table_.OnCreated(ids[i], WorkerID::FromRandom(), "w").ok());
  EXPECT_EQ(table_.num_alive(), 10u);
  std::vector<const ActorInfo*> list = table_.List();
  ASSERT_EQ(list.size(), 20u);
  for (int i = 0; i < 20; i++) EXPECT_EQ(list[i]->id, ids[i]);
}

TEST_F(ActorTableTest, OldestDeadActorsAreEvictedPastTheCap) {
  ActorTable small(/*max_dead_actors=*/2);
  std::vector<ActorID> ids;
  for (int i = 0; i < 4; i++) {
    ActorInfo a = Spec();
    ids.push_back(a.id);
    ASSERT_TRUE(small.Register(a, false).ok());
  }
  for (int i = 0; i < 3; i++) ASSERT_TRUE(small.Kill(ids[i], true, "x").ok());
  EXPECT_EQ(small.Get(ids[0]), nullptr);
  EXPECT_NE(small.Get(ids[1]), nullptr);
  EXPECT_NE(small.Get(ids[2]), nullptr);
  EXPECT_NE(small.Get(ids[3]), nullptr);  // live actors are never evicted
  EXPECT_EQ(small.List().size(), 3u);
}

TEST_F(ActorTableTest, ListenersSeeEveryTransitionInOrder) {
  ActorInfo spec = Spec("c", "ns", 1);
  std::vector<ActorState> seen;
  std::vector<int> restarts;
  Record(spec.id, &seen);  // subscribed before registration
  table_.Subscribe(spec.id, [&](const ActorInfo& a) { restarts.push_back(a.num_restarts); });
  ActorID id = Add(spec);
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());
  ASSERT_EQ(*table_.OnWorkerDied(id, "crash"), kRestarting);
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());
  ASSERT_EQ(*table_.OnWorkerDied(id, "crash"), kDead);
  EXPECT_EQ(seen, (std::vector<ActorState>{kPending, kAlive, kRestarting, kAlive, kDead}));
  EXPECT_EQ(restarts, (std::vector<int>{0, 0, 1, 1, 1}));
  // DEAD is terminal: its subscriptions are dropped.
  EXPECT_EQ(table_.num_subscriptions(), 0u);
}

TEST_F(ActorTableTest, ListenerSnapshotCarriesDeathCauseAndAddress) {
  ActorID id = Add(Spec());
  std::vector<std::string> info;
  table_.Subscribe(id, [&](const ActorInfo& a) {
    info.push_back(std::string(ActorStateName(a.state)) + "|" + a.address + "|" + a.death_cause);
  });
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "/sock").ok());
  ASSERT_TRUE(table_.Kill(id, true, "killed by ray.kill").ok());
  EXPECT_EQ(info, (std::vector<std::string>{"ALIVE|/sock|", "DEAD||killed by ray.kill"}));
}

TEST_F(ActorTableTest, ListenersAreScopedToTheirActor) {
  ActorID a = Add(Spec());
  ActorID b = Add(Spec());
  std::vector<ActorState> seen_a, seen_b;
  Record(a, &seen_a);
  Record(b, &seen_b);
  ASSERT_TRUE(table_.OnCreated(a, WorkerID::FromRandom(), "w").ok());
  EXPECT_EQ(seen_a, std::vector<ActorState>{kAlive});
  EXPECT_TRUE(seen_b.empty());
}

TEST_F(ActorTableTest, ListenerMayUnsubscribeItselfInsideCallback) {
  ActorID id = Add(Spec("", "ns", -1));
  std::vector<ActorState> once, always;
  uint64_t sub = 0;
  sub = table_.Subscribe(id, [&](const ActorInfo& a) {
    once.push_back(a.state);
    table_.Unsubscribe(sub);  // destroys this listener's subscription mid-call
  });
  Record(id, &always);
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());
  ASSERT_EQ(*table_.OnWorkerDied(id, "crash"), kRestarting);
  EXPECT_EQ(once, std::vector<ActorState>{kAlive});
  EXPECT_EQ(always, (std::vector<ActorState>{kAlive, kRestarting}));
  EXPECT_EQ(table_.num_subscriptions(), 1u);
  table_.Unsubscribe(sub);  // already gone: no-op
  table_.Unsubscribe(12345);
}

TEST_F(ActorTableTest, ListenerMayUnsubscribeAnotherThatWouldRunNext) {
  ActorID id = Add(Spec());
  std::vector<ActorState> second;
  uint64_t second_sub = 0;
  table_.Subscribe(id, [&](const ActorInfo&) { table_.Unsubscribe(second_sub); });
  second_sub = Record(id, &second);
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());
  EXPECT_TRUE(second.empty());
}

TEST_F(ActorTableTest, SubscriptionMadeInsideCallbackSeesOnlyLaterTransitions) {
  ActorID id = Add(Spec("", "ns", 1));
  std::vector<ActorState> late;
  bool subscribed = false;
  table_.Subscribe(id, [&](const ActorInfo&) {
    if (!subscribed) {
      subscribed = true;
      Record(id, &late);
    }
  });
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());
  EXPECT_TRUE(late.empty());  // not told of the ALIVE that was being delivered
  ASSERT_EQ(*table_.OnWorkerDied(id, "crash"), kRestarting);
  EXPECT_EQ(late, std::vector<ActorState>{kRestarting});
}

TEST_F(ActorTableTest, TransitionCausedInsideCallbackIsDeliveredInOrder) {
  ActorID id = Add(Spec("", "ns", 0));
  std::vector<ActorState> first, second;
  // The first listener kills the actor as soon as it is ALIVE; the second
  // must still see ALIVE before DEAD.
  table_.Subscribe(id, [&](const ActorInfo& a) {
    first.push_back(a.state);
    if (a.state == kAlive) {
      EXPECT_TRUE(table_.Kill(a.id, true, "killed by ray.kill").ok());
      EXPECT_EQ(table_.Get(a.id)->state, kDead);  // the table already moved
    }
  });
  Record(id, &second);
  ASSERT_TRUE(table_.OnCreated(id, WorkerID::FromRandom(), "w").ok());
  EXPECT_EQ(first, (std::vector<ActorState>{kAlive, kDead}));
  EXPECT_EQ(second, (std::vector<ActorState>{kAlive, kDead}));
  EXPECT_EQ(table_.num_subscriptions(), 0u);
}

TEST_F(ActorTableTest, ListenerMayRegisterActorsDuringOwnerDeath) {
  std::vector<ActorID> ids;
  for (int i = 0; i < 8; i++) ids.push_back(Add(Spec()));
  int registered = 0;
  for (const ActorID& id : ids) {
    table_.Subscribe(id, [&](const ActorInfo& a) {
      if (a.state == kDead) {
        registered++;
        ActorInfo fresh = Spec();
        fresh.owner_worker = WorkerID::FromRandom();
        EXPECT_TRUE(table_.Register(fresh, false).ok());
      }
    });
  }
  table_.OnOwnerDied(owner_);
  EXPECT_EQ(registered, 8);
  for (const ActorID& id : ids) EXPECT_EQ(StateOf(id), kDead);
  EXPECT_EQ(table_.List().size(), 16u);
}

TEST_F(ActorTableTest, SubscribingToDeadActorStoresNothing) {
  ActorID id = Add(Spec());
  ASSERT_TRUE(table_.Kill(id, true, "x").ok());
  bool called = false;
  uint64_t sub = table_.Subscribe(id, [&](const ActorInfo&) { called = true; });
  EXPECT_NE(sub, 0u);
  EXPECT_EQ(table_.num_subscriptions(), 0u);
  table_.Unsubscribe(sub);
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace rayts::gcs
