// SchedulingPolicy over a ClusterView: the hybrid policy packs onto this
// node until half its CPUs are in use, then spreads; SPREAD goes round
// robin; node affinity goes to the named node, fails at once naming it when
// hard and the node is dead or unknown, and falls back when soft; a request
// no node could ever run is infeasible at once; a spilled request
// (grant_or_reject) is granted or rejected, never spilled on; a queued
// request moves to a node that can run it now.
#include "core/raylet/scheduling_policy.h"

#include <gtest/gtest.h>

#include <set>


namespace rayts::raylet {
namespace {

using Kind = SchedulingDecision::Kind;

NodeID N(uint8_t n) {
  NodeID id;
  id.bytes[0] = n;
  return id;
}

ResourceSet Res(std::vector<std::pair<std::string, double>> r) { return *ResourceSet::FromMap(r); }

class SchedulingPolicyTest : public ::testing::Test {
 protected:
  SchedulingPolicyTest() : self_(N(1)), other_(N(2)), view_(self_) {
    view_.UpdateSelf(Res({{"CPU", 4}}), Res({{"CPU", 4}}));
    view_.Apply(other_, 1, true, "127.0.0.1:7002", Res({{"CPU", 4}, {"a", 1}}), Res({{"CPU", 4}, {"a", 1}}));
  }
  SchedulingRequest Req(std::vector<std::pair<std::string, double>> shape) {
    SchedulingRequest r;
    r.shape = Res(shape);
    return r;
  }
  void UseSelfCpus(double used) { view_.UpdateSelf(Res({{"CPU", 4}}), Res({{"CPU", 4 - used}})); }

  NodeID self_, other_;
  ClusterView view_;
  SchedulingPolicy policy_{SchedulingPolicy::Options{0.5, 0.2, 1, 42}};
};

TEST_F(SchedulingPolicyTest, HybridPacksUntilHalfTheCpusAreUsedThenSpreads) {
  UseSelfCpus(1);  // 25 %: below the threshold, scores 0 like the idle other node
  EXPECT_EQ(policy_.Pick(view_, Req({{"CPU", 1}})).kind, Kind::kLocal);
  UseSelfCpus(2);  // 50 %: no longer below it
  SchedulingDecision d = policy_.Pick(view_, Req({{"CPU", 1}}));
  EXPECT_EQ(d.kind, Kind::kSpill);
  EXPECT_EQ(d.node, other_);
  EXPECT_EQ(d.address, "127.0.0.1:7002");
}

TEST_F(SchedulingPolicyTest, AResourceOnlyAnotherNodeHasSpillsThereAndNoneAnywhereIsInfeasible) {
  SchedulingDecision d = policy_.Pick(view_, Req({{"a", 1}}));
  EXPECT_EQ(d.kind, Kind::kSpill);
  EXPECT_EQ(d.node, other_);
  d = policy_.Pick(view_, Req({{"CPU", 64}}));
  EXPECT_EQ(d.kind, Kind::kInfeasible);
  EXPECT_NE(d.message.find("CPU: 64"), std::string::npos) << d.message;
}

TEST_F(SchedulingPolicyTest, WhenEveryNodeIsBusyTheRequestWaitsHere) {
  UseSelfCpus(4);
  view_.Apply(other_, 2, true, "127.0.0.1:7002", Res({{"CPU", 4}}), Res({}));
  EXPECT_EQ(policy_.Pick(view_, Req({{"CPU", 1}})).kind, Kind::kLocal);
  // Queued here: it moves once the other node frees a CPU.
  EXPECT_EQ(policy_.Requeue(view_, Req({{"CPU", 1}})).kind, Kind::kLocal);
  view_.Apply(other_, 3, true, "127.0.0.1:7002", Res({{"CPU", 4}}), Res({{"CPU", 1}}));
  EXPECT_EQ(policy_.Requeue(view_, Req({{"CPU", 1}})).kind, Kind::kSpill);
}

TEST_F(SchedulingPolicyTest, SpreadGoesRoundRobin) {
  SchedulingRequest r = Req({{"CPU", 1}});
  r.strategy = proto::SchedulingStrategy::Spread;
  std::set<NodeID> seen;
  for (int i = 0; i < 4; i++) {
    SchedulingDecision d = policy_.Pick(view_, r);
    seen.insert(d.kind == Kind::kLocal ? self_ : d.node);
  }
  EXPECT_EQ(seen.size(), 2u);
}

TEST_F(SchedulingPolicyTest, NodeAffinityHardFailsNamingTheNodeSoftFallsBack) {
  SchedulingRequest r = Req({{"CPU", 1}});
  r.strategy = proto::SchedulingStrategy::NodeAffinity;
  r.affinity = other_;
  EXPECT_EQ(policy_.Pick(view_, r).node, other_);
  view_.Apply(other_, 4, false, "", {}, {});  // dead
  SchedulingDecision d = policy_.Pick(view_, r);
  EXPECT_EQ(d.kind, Kind::kUnschedulable);
  EXPECT_NE(d.message.find(other_.Hex()), std::string::npos) << d.message;
  EXPECT_NE(d.message.find("is dead"), std::string::npos) << d.message;
  r.affinity = N(9);
  EXPECT_NE(policy_.Pick(view_, r).message.find("not a node of this cluster"), std::string::npos);
  r.soft = true;
  EXPECT_EQ(policy_.Pick(view_, r).kind, Kind::kLocal);
}

TEST_F(SchedulingPolicyTest, ASpilledRequestIsGrantedOrRejectedNeverSpilledOn) {
  SchedulingRequest r = Req({{"CPU", 1}});
  r.grant_or_reject = true;
  EXPECT_EQ(policy_.Pick(view_, r).kind, Kind::kLocal);  // free here
  UseSelfCpus(4);
  EXPECT_EQ(policy_.Pick(view_, r).kind, Kind::kReject);  // busy here, free elsewhere
  view_.Apply(other_, 5, true, "127.0.0.1:7002", Res({{"CPU", 4}}), Res({}));
  EXPECT_EQ(policy_.Pick(view_, r).kind, Kind::kLocal);  // busy everywhere: waits here
  // Spilled here with affinity to this node: always taken.
  r.strategy = proto::SchedulingStrategy::NodeAffinity;
  r.affinity = self_;
  EXPECT_EQ(policy_.Requeue(view_, r).kind, Kind::kLocal);
}

TEST(ClusterView, AnOlderViewIsIgnoredADeadNodeStaysGoneAndASpillIsDeducted) {
  ClusterView v(N(1));
  NodeID n = N(2);
  EXPECT_TRUE(v.Apply(n, 5, true, "a:1", Res({{"CPU", 2}}), Res({{"CPU", 2}})));
  EXPECT_FALSE(v.Apply(n, 4, true, "a:1", Res({{"CPU", 2}}), Res({})));
  v.AllocateRemote(n, Res({{"CPU", 1}}));
  EXPECT_EQ(v.Find(n)->available.Get("CPU"), 1);
  EXPECT_TRUE(v.Apply(n, 6, false, "", {}, {}));
  EXPECT_EQ(v.Find(n), nullptr);
  EXPECT_FALSE(v.Apply(n, 7, true, "a:1", Res({{"CPU", 2}}), Res({{"CPU", 2}})));
  EXPECT_TRUE(v.WasDead(n));
}

}  // namespace
}  // namespace rayts::raylet
