// Memory monitor: the pure decision logic (threshold, which worker to kill,
// /proc/meminfo parsing) and a sanity read of this machine's memory.
#include "core/raylet/memory_monitor.h"

#include <unistd.h>

#include <gtest/gtest.h>

namespace rayts::raylet {
namespace {

KillCandidate Cand(uint64_t lease, bool retriable) {
  KillCandidate c;
  c.worker = WorkerID::FromRandom();
  c.pid = 1000 + static_cast<int>(lease);
  c.lease_id = lease;
  c.retriable = retriable;
  return c;
}

TEST(MemoryMonitorTest, AboveThresholdComparesTheUsedFraction) {
  MemorySnapshot s{900, 1000, "test"};
  EXPECT_TRUE(AboveThreshold(s, 0.85));
  EXPECT_FALSE(AboveThreshold(s, 0.9));  // strictly above
  EXPECT_FALSE(AboveThreshold(s, 0.95));
  EXPECT_FALSE(AboveThreshold(MemorySnapshot{5, 0, "test"}, 0.5));  // unknown total: never
}

TEST(MemoryMonitorTest, NoCandidatesNoVictim) {
  EXPECT_FALSE(SelectWorkerToKill({}).has_value());
}

TEST(MemoryMonitorTest, RetriableWorkerIsKilledBeforeANewerNonRetriableOne) {
  std::vector<KillCandidate> c = {Cand(1, true), Cand(5, false), Cand(3, true)};
  auto pick = SelectWorkerToKill(c);
  ASSERT_TRUE(pick.has_value());
  EXPECT_EQ(*pick, 2u);  // lease 3: the newest of the retriable ones
}

TEST(MemoryMonitorTest, AmongEqualsTheNewestLeaseLoses) {
  std::vector<KillCandidate> c = {Cand(7, false), Cand(9, false), Cand(2, false)};
  auto pick = SelectWorkerToKill(c);
  ASSERT_TRUE(pick.has_value());
  EXPECT_EQ(c[*pick].lease_id, 9u);
}

TEST(MemoryMonitorTest, NonRetriableIsKilledWhenNothingElseIsLeft) {
  std::vector<KillCandidate> c = {Cand(4, false)};
  auto pick = SelectWorkerToKill(c);
  ASSERT_TRUE(pick.has_value());
  EXPECT_EQ(*pick, 0u);
}

TEST(MemoryMonitorTest, ParsesMeminfo) {
  auto s = ParseMeminfo("MemTotal:       24684092 kB\nMemFree:        22776924 kB\nMemAvailable:   23637160 kB\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->total_bytes, 24684092ull * 1024);
  EXPECT_EQ(s->used_bytes, (24684092ull - 23637160ull) * 1024);
  EXPECT_FALSE(ParseMeminfo("MemTotal: 100 kB\n").ok());  // no MemAvailable
  EXPECT_FALSE(ParseMeminfo("").ok());
}

TEST(MemoryMonitorTest, ReadsThisNodeAndThisProcess) {
  auto s = ReadNodeMemory();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_GT(s->total_bytes, 0u);
  EXPECT_LE(s->used_bytes, s->total_bytes);
  EXPECT_GT(ReadProcessRss(getpid()), 0u);
  EXPECT_EQ(ReadProcessRss(-1), 0u);
}

TEST(MemoryMonitorTest, KillMessageNamesRssUsageAndThreshold) {
  KillCandidate v = Cand(1, true);
  v.rss_bytes = 512ull << 20;
  std::string m = OomKillMessage(MemorySnapshot{900ull << 20, 1000ull << 20, "/proc/meminfo"}, 0.85, v);
  EXPECT_NE(m.find("RSS 512 MiB"), std::string::npos) << m;
  EXPECT_NE(m.find("900 MiB / 1000 MiB"), std::string::npos) << m;
  EXPECT_NE(m.find("0.850"), std::string::npos) << m;
  EXPECT_NE(m.find("pid 1001"), std::string::npos) << m;
}

}  // namespace
}  // namespace rayts::raylet
