// The actor table's part in restarts the GCS makes itself: a detached actor
// whose creator is gone and whose node dies goes RESTARTING while its
// budget lasts (ActorTable::OnNodeDead lists it for the host), ALIVE again
// where the host placed it, and DEAD naming the node past its budget or
// when nothing can create it again; its restart spec is kept in the store.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/gcs/actor_record.h"
#include "core/gcs/actor_table.h"
#include "core/gcs/store_client.h"

namespace rayts::gcs {
namespace {

ActorInfo Detached(const std::string& name, const WorkerID& owner, const NodeID& owner_node, int max_restarts) {
  ActorInfo a;
  a.id = ActorID::FromRandom();
  a.name = name;
  a.ns = "ns";
  a.class_name = "Counter";
  a.detached = true;
  a.max_restarts = max_restarts;
  a.owner_worker = owner;
  a.owner_node = owner_node;
  a.job = 1;
  return a;
}

std::string Binary() { return std::string("\x00\x01\t\n\\spec\xff", 11); }

TEST(ActorRestartRecordTest, RestartSpecAndReasonRoundTrip) {
  ActorInfo a = Detached("k", WorkerID::FromRandom(), NodeID::FromRandom(), 2);
  a.restart_spec = Binary();
  a.not_restartable = "why\tnot";
  auto back = DecodeActorRecord(EncodeActorRecord(a));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->restart_spec, Binary());
  EXPECT_EQ(back->not_restartable, "why\tnot");
}

struct RestartFixture : ::testing::Test {
  InMemoryStoreClient store;
  ActorTable table{ActorTable::kDefaultMaxDeadActors, &store};
  NodeID b = NodeID::FromRandom(), c = NodeID::FromRandom(), head = NodeID::FromRandom();
  WorkerID driver = WorkerID::FromRandom();

  // Registered by `driver` (on the head), created on `on`, then the driver exits.
  ActorID Orphan(const std::string& name, int max_restarts, const std::string& spec, const std::string& why = "") {
    auto r = table.Register(Detached(name, driver, head, max_restarts), false);
    EXPECT_TRUE(r.ok());
    EXPECT_TRUE(table.SetRestartSpec(r->id, spec, why).ok());
    EXPECT_TRUE(table.OnCreated(r->id, WorkerID::FromRandom(), "/b/w-" + name + ".sock", b).ok());
    return r->id;
  }
};

TEST_F(RestartFixture, OrphanWithSpecRestartsThenDiesNamingTheNodePastItsBudget) {
  ActorID id = Orphan("k", 1, Binary());
  std::vector<ActorState> seen;
  table.Subscribe(id, [&](const ActorInfo& a) { seen.push_back(a.state); });
  table.OnOwnerDied(driver);
  ASSERT_EQ(table.Get(id)->state, ActorState::kAlive);
  EXPECT_FALSE(table.Get(id)->owner_alive);

  std::vector<ActorID> restart;
  EXPECT_TRUE(table.OnNodeDead(b, "failed 3 health checks", &restart).empty());
  EXPECT_EQ(restart, std::vector<ActorID>{id});
  const ActorInfo* a = table.Get(id);
  EXPECT_EQ(a->state, ActorState::kRestarting);
  EXPECT_EQ(a->num_restarts, 1);
  EXPECT_TRUE(a->address.empty());
  EXPECT_EQ(table.GetByName("ns", "k"), a);  // it keeps its name while it restarts
  auto stored = DecodeActorRecord(*store.Get(kActorStoreTable, id.Hex()));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, ActorState::kRestarting);
  EXPECT_EQ(stored->restart_spec, Binary());

  // The host placed it on c.
  ASSERT_TRUE(table.OnCreated(id, WorkerID::FromRandom(), "/c/w-k.sock", c).ok());
  EXPECT_EQ(table.Get(id)->node, c);
  EXPECT_EQ(table.Get(id)->address, "/c/w-k.sock");

  // c dies too: the budget is used up.
  restart.clear();
  table.OnNodeDead(c, "failed 3 health checks", &restart);
  EXPECT_TRUE(restart.empty());
  EXPECT_EQ(table.Get(id)->state, ActorState::kDead);
  EXPECT_NE(table.Get(id)->death_cause.find("its node " + c.Hex() + " died"), std::string::npos)
      << table.Get(id)->death_cause;
  EXPECT_EQ(table.Get(id)->num_restarts, 1);
  EXPECT_EQ(seen, (std::vector<ActorState>{ActorState::kRestarting, ActorState::kAlive, ActorState::kDead}));
}

TEST_F(RestartFixture, OrphanWithoutSpecDiesSayingWhy) {
  ActorID by_ref = Orphan("r", 3, "", "its constructor took an argument by reference");
  ActorID none = Orphan("n", -1, "");
  table.OnOwnerDied(driver);
  std::vector<ActorID> restart;
  table.OnNodeDead(b, "stopped", &restart);
  EXPECT_TRUE(restart.empty());
  EXPECT_EQ(table.Get(by_ref)->state, ActorState::kDead);
  EXPECT_NE(table.Get(by_ref)->death_cause.find("its node " + b.Hex() + " died (stopped)"), std::string::npos);
  EXPECT_NE(table.Get(by_ref)->death_cause.find("by reference"), std::string::npos) << table.Get(by_ref)->death_cause;
  EXPECT_NE(table.Get(none)->death_cause.find("holds no creation spec"), std::string::npos) << table.Get(none)->death_cause;
}

TEST_F(RestartFixture, OwnerAliveOrNoBudgetIsNotTheGcsToRestart) {
  ActorID owned = Orphan("o", 2, Binary());  // its driver lives: it restarts it
  std::vector<ActorID> restart;
  table.OnNodeDead(b, "stopped", &restart);
  EXPECT_TRUE(restart.empty());
  EXPECT_EQ(table.Get(owned)->state, ActorState::kAlive);

  ActorID zero = Orphan("z", 0, Binary());
  table.OnOwnerDied(driver);
  table.OnNodeDead(b, "stopped", &restart);  // zero (no budget) dies; owned (now orphaned) restarts
  EXPECT_EQ(table.Get(zero)->state, ActorState::kDead);
  EXPECT_EQ(restart, std::vector<ActorID>{owned});
  EXPECT_EQ(table.Get(owned)->state, ActorState::kRestarting);
}

TEST_F(RestartFixture, SetRestartSpecOfUnknownOrDeadActor) {
  EXPECT_EQ(table.SetRestartSpec(ActorID::FromRandom(), Binary(), "").code(), StatusCode::kNotFound);
  ActorID id = Orphan("d", 1, "");
  ASSERT_TRUE(table.Kill(id, /*no_restart=*/true, "killed by ray.kill").ok());
  EXPECT_TRUE(table.SetRestartSpec(id, Binary(), "").ok());
  EXPECT_TRUE(table.Get(id)->restart_spec.empty());  // DEAD: nothing changes
}

}  // namespace
}  // namespace rayts::gcs
