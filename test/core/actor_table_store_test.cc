// The actor table's records in its StoreClient (actor_record.h) and what a
// node's death does to the table (ActorTable::OnNodeDead).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/gcs/actor_record.h"
#include "core/gcs/actor_table.h"
#include "core/gcs/gcs_tables.h"
#include "core/gcs/store_client.h"
#include "test/core/test_util.h"

namespace rayts::gcs {
namespace {

ActorInfo Spec(const std::string& name, const WorkerID& owner, const NodeID& owner_node, bool detached = false,
               int max_restarts = 0) {
  ActorInfo a;
  a.id = ActorID::FromRandom();
  a.name = name;
  a.ns = "ns";
  a.class_name = "Counter";
  a.detached = detached;
  a.max_restarts = max_restarts;
  a.owner_worker = owner;
  a.owner_node = owner_node;
  a.job = 3;
  a.creation_spec = "{\"c\":\"Counter\",\"m\":[\"inc\"]}";
  return a;
}

// The record the store holds for `id`, decoded.
ActorInfo Stored(const StoreClient& store, const ActorID& id) {
  auto bytes = store.Get(kActorStoreTable, id.Hex());
  EXPECT_TRUE(bytes.ok()) << "no record for " << id.Hex();
  if (!bytes.ok()) return ActorInfo{};
  auto a = DecodeActorRecord(*bytes);
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  return a.ok() ? *a : ActorInfo{};
}

TEST(ActorRecordTest, RoundTripsEveryFieldIncludingTabsAndNewlines) {
  ActorInfo a = Spec("we\tird\nname\\", WorkerID::FromRandom(), NodeID::FromRandom(), true, -1);
  a.num_restarts = 4;
  a.state = ActorState::kAlive;
  a.owner_alive = false;
  a.address = "/tmp/s/sockets/w-1.sock@127.0.0.1:4000";
  a.worker = WorkerID::FromRandom();
  a.node = NodeID::FromRandom();
  a.death_cause = "";
  auto back = DecodeActorRecord(EncodeActorRecord(a));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->id, a.id);
  EXPECT_EQ(back->name, a.name);
  EXPECT_EQ(back->ns, a.ns);
  EXPECT_EQ(back->class_name, a.class_name);
  EXPECT_TRUE(back->detached);
  EXPECT_EQ(back->max_restarts, -1);
  EXPECT_EQ(back->num_restarts, 4);
  EXPECT_EQ(back->state, ActorState::kAlive);
  EXPECT_EQ(back->owner_worker, a.owner_worker);
  EXPECT_EQ(back->owner_node, a.owner_node);
  EXPECT_FALSE(back->owner_alive);
  EXPECT_EQ(back->job, 3u);
  EXPECT_EQ(back->address, a.address);
  EXPECT_EQ(back->worker, a.worker);
  EXPECT_EQ(back->node, a.node);
  EXPECT_EQ(back->creation_spec, a.creation_spec);
  // Nil ids stay nil.
  ActorInfo b = Spec("", WorkerID::Nil(), NodeID::Nil());
  auto bb = DecodeActorRecord(EncodeActorRecord(b));
  ASSERT_TRUE(bb.ok());
  EXPECT_TRUE(bb->owner_node.IsNil());
  EXPECT_TRUE(bb->worker.IsNil());
}

TEST(ActorRecordTest, RejectsWhatIsNotARecord) {
  EXPECT_EQ(DecodeActorRecord("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeActorRecord("a1\tzz").status().code(), StatusCode::kInvalidArgument);
  std::string ok = EncodeActorRecord(Spec("x", WorkerID::FromRandom(), NodeID::Nil()));
  std::string bad_state = ok;
  bad_state.replace(bad_state.find("PENDING_CREATION"), 16, "SLEEPING");
  auto r = DecodeActorRecord(bad_state);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("state"), std::string::npos) << r.status().message();
}

TEST(ActorTableStoreTest, EveryTransitionIsWrittenAndEvictionDeletes) {
  InMemoryStoreClient store;
  ActorTable table(/*max_dead_actors=*/1, &store);
  WorkerID owner = WorkerID::FromRandom();
  auto a = table.Register(Spec("c1", owner, NodeID::Nil(), false, 1), false);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(Stored(store, a->id).state, ActorState::kPendingCreation);
  EXPECT_EQ(Stored(store, a->id).name, "c1");

  NodeID node = NodeID::FromRandom();
  ASSERT_TRUE(table.OnCreated(a->id, WorkerID::Nil(), "/s/w.sock", node).ok());
  EXPECT_EQ(Stored(store, a->id).state, ActorState::kAlive);
  EXPECT_EQ(Stored(store, a->id).address, "/s/w.sock");
  EXPECT_EQ(Stored(store, a->id).node, node);

  ASSERT_TRUE(table.OnWorkerDied(a->id, "worker died").ok());
  EXPECT_EQ(Stored(store, a->id).state, ActorState::kRestarting);
  EXPECT_EQ(Stored(store, a->id).num_restarts, 1);
  EXPECT_TRUE(Stored(store, a->id).address.empty());

  ASSERT_TRUE(table.Kill(a->id, true, "killed by ray.kill()").ok());
  EXPECT_EQ(Stored(store, a->id).state, ActorState::kDead);
  EXPECT_EQ(Stored(store, a->id).death_cause, "killed by ray.kill()");

  // A second DEAD actor evicts the first (cap 1): its record goes too.
  auto b = table.Register(Spec("", owner, NodeID::Nil()), false);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(table.Kill(b->id, true, "gone").ok());
  EXPECT_EQ(table.Get(a->id), nullptr);
  EXPECT_EQ(store.Get(kActorStoreTable, a->id.Hex()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.GetAll(kActorStoreTable).size(), 1u);
  EXPECT_EQ(Stored(store, b->id).death_cause, "gone");
}

TEST(ActorTableStoreTest, GcsTablesWriteActorsThroughTheirStore) {
  auto owned = std::make_unique<InMemoryStoreClient>();
  InMemoryStoreClient* store = owned.get();
  GcsTables tables(std::move(owned));
  auto a = tables.actors().Register(Spec("k", WorkerID::FromRandom(), NodeID::Nil(), true), false);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(Stored(*store, a->id).detached);
  // An owner leaving marks the detached actor ownerless, in the store too.
  tables.actors().OnOwnerDied(a->owner_worker);
  EXPECT_EQ(tables.actors().Get(a->id)->state, ActorState::kPendingCreation);
  EXPECT_FALSE(Stored(*store, a->id).owner_alive);
}

TEST(ActorTableStoreTest, NodeOfAddressMatchesTheSessionDirectory) {
  GcsTables tables;
  NodeInfo n1 = test::MakeNodeIn("/tmp/rayts-1/session_1");
  NodeInfo n2 = test::MakeNodeIn("/tmp/rayts-1/session_12");
  tables.RegisterNode(n1);
  tables.RegisterNode(n2);
  EXPECT_EQ(tables.NodeOfAddress("/tmp/rayts-1/session_12/sockets/w-a.sock@127.0.0.1:5000"), n2.node_id);
  EXPECT_EQ(tables.NodeOfAddress("/tmp/rayts-1/session_1/sockets/w-b.sock"), n1.node_id);
  EXPECT_TRUE(tables.NodeOfAddress("/elsewhere/w.sock").IsNil());
  ASSERT_TRUE(tables.MarkNodeDead(n1.node_id, "gone").ok());
  EXPECT_TRUE(tables.NodeOfAddress("/tmp/rayts-1/session_1/sockets/w-b.sock").IsNil());
}

TEST(ActorTableNodeDeathTest, OwnersOnTheNodeEndTheirActorsAndOrphansOnItDie) {
  InMemoryStoreClient store;
  ActorTable table(ActorTable::kDefaultMaxDeadActors, &store);
  NodeID dead = NodeID::FromRandom(), other = NodeID::FromRandom();
  WorkerID owner_there = WorkerID::FromRandom(), owner_elsewhere = WorkerID::FromRandom();
  auto created = [&](ActorInfo spec, const NodeID& on, const std::string& address) {
    auto r = table.Register(std::move(spec), false);
    EXPECT_TRUE(r.ok());
    EXPECT_TRUE(table.OnCreated(r->id, WorkerID::Nil(), address, on).ok());
    return r->id;
  };
  // Owned from the dead node, running elsewhere: ends, its worker to be ended.
  ActorID owned_there = created(Spec("a", owner_there, dead), other, "/other/w-1.sock");
  // Detached, owned from the dead node, running elsewhere: lives on, ownerless.
  ActorID detached_there = created(Spec("b", owner_there, dead, true), other, "/other/w-2.sock");
  // Running on the dead node, owner alive elsewhere: left to its owner.
  ActorID owner_restarts = created(Spec("c", owner_elsewhere, other, false, 1), dead, "/dead/w-3.sock");
  // Detached, running on the dead node, its owner gone: nobody restarts it.
  ActorID orphan = created(Spec("d", owner_elsewhere, other, true, 3), dead, "/dead/w-4.sock");
  table.OnOwnerDied(owner_elsewhere);  // its driver left: c dies with it, d lives on
  EXPECT_EQ(table.Get(owner_restarts)->state, ActorState::kDead);
  EXPECT_EQ(table.Get(orphan)->state, ActorState::kAlive);
  // One more, owner alive elsewhere, running on the dead node.
  WorkerID live_owner = WorkerID::FromRandom();
  ActorID left_to_owner = created(Spec("e", live_owner, other, false, 1), dead, "/dead/w-5.sock");

  std::vector<std::string> to_end = table.OnNodeDead(dead, "failed 3 health checks");
  EXPECT_EQ(to_end, std::vector<std::string>{"/other/w-1.sock"});
  EXPECT_EQ(table.Get(owned_there)->state, ActorState::kDead);
  EXPECT_NE(table.Get(owned_there)->death_cause.find("its owner's node " + dead.Hex() + " died (failed 3 health checks)"),
            std::string::npos) << table.Get(owned_there)->death_cause;
  EXPECT_EQ(table.Get(detached_there)->state, ActorState::kAlive);
  EXPECT_FALSE(table.Get(detached_there)->owner_alive);
  EXPECT_EQ(table.Get(orphan)->state, ActorState::kDead);
  EXPECT_NE(table.Get(orphan)->death_cause.find("its node " + dead.Hex() + " died"), std::string::npos);
  EXPECT_EQ(table.Get(orphan)->num_restarts, 0);
  EXPECT_EQ(table.Get(left_to_owner)->state, ActorState::kAlive);  // the owner reports its restart
  EXPECT_EQ(table.GetByName("ns", "d"), nullptr);  // a dead actor frees its name
  EXPECT_EQ(Stored(store, orphan).state, ActorState::kDead);
  EXPECT_FALSE(Stored(store, detached_there).owner_alive);
  // Again: nothing more happens.
  EXPECT_TRUE(table.OnNodeDead(dead, "again").empty());
  EXPECT_TRUE(table.OnNodeDead(NodeID::Nil(), "nil").empty());
}

}  // namespace
}  // namespace rayts::gcs
