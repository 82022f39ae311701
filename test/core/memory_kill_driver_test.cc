// MemoryKillDriver with fake hooks: which worker it ends, when it waits, and
// that a worker still there after the grace is SIGKILLed. No processes; the
// grace timer runs on a local io_context (0 ms, run to completion).
#include "core/raylet/memory_kill_driver.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace rayts::raylet {
namespace {

struct FakeNode {
  MemorySnapshot memory{90, 100, "test"};
  std::vector<KillCandidate> leased;
  std::map<int, WorkerID> alive;  // pid -> worker
  bool has_control = true;
  std::vector<std::pair<WorkerID, std::string>> asked;
  std::vector<int> killed;

  MemoryKillDriver::Hooks Hooks() {
    MemoryKillDriver::Hooks h;
    h.read_memory = [this]() -> StatusOr<MemorySnapshot> { return memory; };
    h.candidates = [this] { return leased; };
    h.rss = [](int pid) { return static_cast<uint64_t>(pid) * 1000; };
    h.alive = [this](const WorkerID& w, int pid) { return alive.count(pid) && alive[pid] == w; };
    h.ask_to_exit = [this](const WorkerID& w, const std::string& reason) {
      if (!has_control) return false;
      asked.emplace_back(w, reason);
      return true;
    };
    h.kill = [this](int pid) { killed.push_back(pid); };
    return h;
  }
  KillCandidate Lease(int pid, uint64_t lease, bool retriable) {
    KillCandidate c{WorkerID::FromRandom(), pid, lease, retriable, 0};
    leased.push_back(c);
    alive[pid] = c.worker;
    return c;
  }
};

MemoryKillDriver::Options Opts(double threshold = 0.8) {
  return MemoryKillDriver::Options{threshold, /*period_ms=*/0, std::chrono::milliseconds(0)};
}

TEST(MemoryKillDriverTest, BelowTheThresholdNothingHappens) {
  asio::io_context io;
  FakeNode node;
  node.memory.used_bytes = 50;
  node.Lease(11, 1, true);
  MemoryKillDriver d(io, Opts(), node.Hooks());
  EXPECT_FALSE(d.CheckOnce().has_value());
  EXPECT_TRUE(node.asked.empty());
  EXPECT_EQ(d.kills(), 0u);
}

TEST(MemoryKillDriverTest, AsksTheNewestRetriableWorkerToExitWithTheReason) {
  asio::io_context io;
  FakeNode node;
  node.Lease(11, 1, true);
  KillCandidate newest = node.Lease(12, 2, true);
  node.Lease(13, 3, false);  // newer, but its owner would not retry
  MemoryKillDriver d(io, Opts(), node.Hooks());
  auto victim = d.CheckOnce();
  ASSERT_TRUE(victim.has_value());
  EXPECT_EQ(victim->pid, 12);
  EXPECT_EQ(victim->rss_bytes, 12000u);
  ASSERT_EQ(node.asked.size(), 1u);
  EXPECT_EQ(node.asked[0].first, newest.worker);
  EXPECT_NE(node.asked[0].second.find("memory"), std::string::npos) << node.asked[0].second;
  EXPECT_EQ(d.kills(), 1u);
  EXPECT_TRUE(node.killed.empty());  // not before the grace
}

TEST(MemoryKillDriverTest, OneKillAtATimeUntilTheVictimIsGone) {
  asio::io_context io;
  FakeNode node;
  node.Lease(11, 1, true);
  node.Lease(12, 2, true);
  MemoryKillDriver d(io, Opts(), node.Hooks());
  ASSERT_EQ(d.CheckOnce()->pid, 12);
  EXPECT_FALSE(d.CheckOnce().has_value());  // 12 still registered
  node.alive.erase(12);
  node.leased.pop_back();
  auto next = d.CheckOnce();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->pid, 11);
  EXPECT_EQ(d.kills(), 2u);
}

TEST(MemoryKillDriverTest, AWorkerStillThereAfterTheGraceIsKilled) {
  asio::io_context io;
  FakeNode node;
  node.Lease(21, 1, true);
  node.Lease(22, 2, true);
  MemoryKillDriver d(io, Opts(), node.Hooks());
  ASSERT_EQ(d.CheckOnce()->pid, 22);
  io.run();  // the grace expires: 22 has not exited
  EXPECT_EQ(node.killed, (std::vector<int>{22}));
  // A victim that exits in time is not killed.
  node.alive.erase(22);
  node.leased.pop_back();
  ASSERT_EQ(d.CheckOnce()->pid, 21);
  node.alive.erase(21);
  io.restart();
  io.run();
  EXPECT_EQ(node.killed, (std::vector<int>{22}));
}

TEST(MemoryKillDriverTest, NoControlConnectionMeansSigkillAtOnce) {
  asio::io_context io;
  FakeNode node;
  node.has_control = false;
  node.Lease(31, 1, false);
  MemoryKillDriver d(io, Opts(), node.Hooks());
  ASSERT_TRUE(d.CheckOnce().has_value());
  EXPECT_EQ(node.killed, (std::vector<int>{31}));
  EXPECT_TRUE(node.asked.empty());
}

TEST(MemoryKillDriverTest, StopCancelsAPendingKill) {
  asio::io_context io;
  FakeNode node;
  node.Lease(41, 1, true);
  MemoryKillDriver d(io, Opts(), node.Hooks());
  ASSERT_TRUE(d.CheckOnce().has_value());
  d.Stop();
  io.run();
  EXPECT_TRUE(node.killed.empty());
}

TEST(MemoryKillDriverTest, AnUnreadableNodeKillsNothing) {
  asio::io_context io;
  FakeNode node;
  node.Lease(51, 1, true);
  auto hooks = node.Hooks();
  hooks.read_memory = []() -> StatusOr<MemorySnapshot> { return Status::IOError("no /proc"); };
  MemoryKillDriver d(io, Opts(), hooks);
  EXPECT_FALSE(d.CheckOnce().has_value());
  EXPECT_EQ(d.kills(), 0u);
}

}  // namespace
}  // namespace rayts::raylet
