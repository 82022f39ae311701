// Memory monitor: the pure decision logic (threshold, which worker to kill,
// /proc/meminfo parsing), the cgroup limit read from a fake /sys/fs/cgroup
// tree, and a sanity read of this machine's memory. (test/api/
// cgroup_limit.test.ts runs a driver in a real memory cgroup.)
#include "core/raylet/memory_monitor.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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

// A fake cgroup tree under a fresh temporary directory.
class FakeCgroup {
 public:
  FakeCgroup() {
    char tmpl[] = "/tmp/rayts-cgroup-gtest-XXXXXX";
    dir_ = mkdtemp(tmpl);
    files_.root = dir_ + "/cgroup";
    files_.proc_self_cgroup = dir_ + "/proc_self_cgroup";
    std::filesystem::create_directories(files_.root);
  }
  ~FakeCgroup() { std::filesystem::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) {
    std::filesystem::path p = dir_ + "/" + rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  const CgroupFiles& files() const { return files_; }

 private:
  std::string dir_;
  CgroupFiles files_;
};

constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kPhysical = 24 * kGiB;

TEST(MemoryMonitorTest, CgroupV2OwnCgroupWithoutANamespace) {
  FakeCgroup t;
  t.Write("proc_self_cgroup", "0::/svc/app\n");
  t.Write("cgroup/memory.max", "max\n");  // not read at the root of a v2 tree, but harmless
  t.Write("cgroup/svc/app/memory.max", std::to_string(2 * kGiB) + "\n");
  t.Write("cgroup/svc/app/memory.current", std::to_string(kGiB) + "\n");
  t.Write("cgroup/svc/app/memory.stat", "anon 1\ninactive_file " + std::to_string(256ull << 20) + "\n");
  auto s = ReadCgroupMemory(kPhysical, t.files());
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->total_bytes, 2 * kGiB);
  EXPECT_EQ(s->used_bytes, kGiB - (256ull << 20));
  EXPECT_EQ(s->source, "cgroup v2");
}

TEST(MemoryMonitorTest, CgroupV1OwnCgroupAndATighterAncestor) {
  FakeCgroup t;
  t.Write("proc_self_cgroup", "5:cpu,cpuacct:/x\n4:memory:/jobs/a/b\n0::/\n");
  t.Write("cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");  // the root: unlimited
  t.Write("cgroup/memory/memory.usage_in_bytes", "100\n");
  t.Write("cgroup/memory/jobs/a/b/memory.limit_in_bytes", std::to_string(4 * kGiB) + "\n");
  t.Write("cgroup/memory/jobs/a/b/memory.usage_in_bytes", "7\n");
  t.Write("cgroup/memory/jobs/memory.limit_in_bytes", std::to_string(3 * kGiB) + "\n");
  t.Write("cgroup/memory/jobs/memory.usage_in_bytes", std::to_string(kGiB) + "\n");
  t.Write("cgroup/memory/jobs/memory.stat", "total_inactive_file 1024\n");
  auto s = ReadCgroupMemory(kPhysical, t.files());
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->total_bytes, 3 * kGiB);  // the ancestor's limit binds
  EXPECT_EQ(s->used_bytes, kGiB - 1024);  // and its usage counts
  EXPECT_EQ(s->source, "cgroup v1");
}

TEST(MemoryMonitorTest, CgroupV1AtTheMountRootInAContainer) {
  FakeCgroup t;  // no cgroup namespace: the path names the host's cgroup, the mount is the container's
  t.Write("proc_self_cgroup", "4:memory:/docker/abc\n");
  t.Write("cgroup/memory/memory.limit_in_bytes", std::to_string(kGiB) + "\n");
  t.Write("cgroup/memory/memory.usage_in_bytes", "4096\n");
  auto s = ReadCgroupMemory(kPhysical, t.files());
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->total_bytes, kGiB);
}

TEST(MemoryMonitorTest, NoCgroupLimit) {
  FakeCgroup t;
  t.Write("proc_self_cgroup", "4:memory:/a\n0::/b\n");
  t.Write("cgroup/b/memory.max", "max\n");
  t.Write("cgroup/b/memory.current", "5\n");
  t.Write("cgroup/memory/a/memory.limit_in_bytes", std::to_string(kPhysical) + "\n");  // not below RAM
  t.Write("cgroup/memory/a/memory.usage_in_bytes", "5\n");
  EXPECT_FALSE(ReadCgroupMemory(kPhysical, t.files()).has_value());
  FakeCgroup empty;
  EXPECT_FALSE(ReadCgroupMemory(kPhysical, empty.files()).has_value());
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
