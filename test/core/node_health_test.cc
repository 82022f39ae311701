// NodeHealth on a fake clock: Ray's schedule (first check after the initial
// delay, then every period), reports passing checks, probes that time out,
// disconnected nodes failing at once, dead after the threshold.
#include "core/gcs/node_health.h"

#include <gtest/gtest.h>

namespace rayts::gcs {
namespace {

using Clock = NodeHealth::Clock;
using std::chrono::milliseconds;

HealthCheckConfig Config() { return HealthCheckConfig{5000, 3000, 10000, 5}; }

TEST(NodeHealthTest, NothingBeforeTheInitialDelay) {
  NodeHealth h(Config());
  auto t0 = Clock::now();
  NodeID id = NodeID::FromRandom();
  h.AddNode(id, t0);
  auto r = h.Tick(t0 + milliseconds(4999));
  EXPECT_TRUE(r.probe.empty());
  EXPECT_TRUE(r.dead.empty());
}

TEST(NodeHealthTest, ReportsWithinThePeriodPassTheCheckWithoutAProbe) {
  NodeHealth h(Config());
  auto t0 = Clock::now();
  NodeID id = NodeID::FromRandom();
  h.AddNode(id, t0);
  for (int ms = 100; ms <= 60000; ms += 100) {
    h.Heartbeat(id, t0 + milliseconds(ms));
    auto r = h.Tick(t0 + milliseconds(ms));
    ASSERT_TRUE(r.probe.empty()) << ms;
    ASSERT_TRUE(r.dead.empty()) << ms;
  }
}

TEST(NodeHealthTest, ASilentNodeIsProbedAndDeadAfterFiveTimeouts) {
  NodeHealth h(Config());
  auto t0 = Clock::now();
  NodeID id = NodeID::FromRandom();
  h.AddNode(id, t0);
  int probes = 0;
  int dead_at = -1;
  for (int ms = 0; ms <= 120000 && dead_at < 0; ms += 10) {
    auto r = h.Tick(t0 + milliseconds(ms));
    probes += static_cast<int>(r.probe.size());
    if (!r.dead.empty()) dead_at = ms;
  }
  EXPECT_EQ(probes, 5);
  // As Ray: probe at 5 s, fails at 15 s; the next check a period (3 s)
  // later: 5 + 5 * 10 + 4 * 3 s.
  EXPECT_EQ(dead_at, 67000);
  EXPECT_EQ(h.size(), 0u);  // reported once, then forgotten
}

TEST(NodeHealthTest, AnAnswerResetsTheFailures) {
  NodeHealth h(Config());
  auto t0 = Clock::now();
  NodeID id = NodeID::FromRandom();
  h.AddNode(id, t0);
  EXPECT_EQ(h.Tick(t0 + milliseconds(5000)).probe.size(), 1u);
  h.Tick(t0 + milliseconds(15000));  // timed out: 1 failure
  EXPECT_EQ(h.failures(id), 1);
  h.Heartbeat(id, t0 + milliseconds(15001));
  EXPECT_EQ(h.failures(id), 0);
}

TEST(NodeHealthTest, ADisconnectedNodeFailsEachPeriodAndIsDeadAfterThreshold) {
  NodeHealth h(HealthCheckConfig{200, 200, 500, 3});
  auto t0 = Clock::now();
  NodeID id = NodeID::FromRandom();
  h.AddNode(id, t0);
  h.SetConnected(id, false);
  int dead_at = -1;
  for (int ms = 0; ms <= 5000 && dead_at < 0; ms += 10) {
    auto r = h.Tick(t0 + milliseconds(ms));
    EXPECT_TRUE(r.probe.empty());
    if (!r.dead.empty()) dead_at = ms;
  }
  EXPECT_EQ(dead_at, 600);  // failures at 200, 400, 600 ms
}

TEST(NodeHealthTest, AReconnectedNodeStartsOver) {
  NodeHealth h(HealthCheckConfig{200, 200, 500, 3});
  auto t0 = Clock::now();
  NodeID id = NodeID::FromRandom();
  h.AddNode(id, t0);
  h.SetConnected(id, false);
  h.Tick(t0 + milliseconds(200));
  h.Tick(t0 + milliseconds(400));
  EXPECT_EQ(h.failures(id), 2);
  h.AddNode(id, t0 + milliseconds(450));  // registered again on a new connection
  EXPECT_EQ(h.failures(id), 0);
  EXPECT_TRUE(h.Tick(t0 + milliseconds(600)).dead.empty());
}

}  // namespace
}  // namespace rayts::gcs
