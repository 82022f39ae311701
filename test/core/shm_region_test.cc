#include "core/plasma/shm_region.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace rayts::plasma {
namespace {

std::string FdTarget(int fd) {
  char buf[256] = {0};
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, n) : std::string();
}

// Writes a recognisable byte at the start and in the middle of every page.
void WritePattern(uint8_t* p, uint64_t size) {
  for (uint64_t off = 0; off < size; off += 4096) {
    p[off] = static_cast<uint8_t>(off / 4096 * 7 + 1);
    p[off + 100] = 0x5A;
  }
}
bool PatternIntact(const uint8_t* p, uint64_t size) {
  for (uint64_t off = 0; off < size; off += 4096) {
    if (p[off] != static_cast<uint8_t>(off / 4096 * 7 + 1) || p[off + 100] != 0x5A) return false;
  }
  return true;
}
// Threads of this process right now (entries of /proc/self/task).
int ThreadCount() {
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') n++;
  }
  ::closedir(d);
  return n;
}
// True if every page of the mapping is in memory.
bool AllResident(uint8_t* p, uint64_t size) {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((size + page - 1) / page);
  if (::mincore(p, size, vec.data()) != 0) return false;
  for (unsigned char v : vec) if (!(v & 1)) return false;
  return true;
}

TEST(ShmRegionTest, CreateGivesZeroedWritableMemfd) {
  auto r = ShmRegion::Create(1 << 20);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ShmRegion& region = **r;
  EXPECT_GE(region.fd(), 0);
  EXPECT_EQ(region.size(), 1u << 20);
  ASSERT_NE(region.data(), nullptr);
  EXPECT_NE(FdTarget(region.fd()).find("memfd:rayts-plasma"), std::string::npos)
      << FdTarget(region.fd());
  EXPECT_EQ(::fcntl(region.fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(region.data()[0], 0);
  EXPECT_EQ(region.data()[(1 << 20) - 1], 0);
  std::memset(region.data(), 0xEE, 1 << 20);
  EXPECT_EQ(region.data()[12345], 0xEE);
}

TEST(ShmRegionTest, MapOfTheSameFdSharesTheBytes) {
  const uint64_t size = 3 << 20;
  auto r = ShmRegion::Create(size);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const char msg[] = "hello from the creator";
  std::memcpy((*r)->data() + 4096 + 7, msg, sizeof(msg));

  auto m = ShmRegion::Map(::dup((*r)->fd()), size);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_NE((*m)->data(), (*r)->data());
  EXPECT_NE((*m)->fd(), (*r)->fd());
  EXPECT_EQ(std::memcmp((*m)->data() + 4096 + 7, msg, sizeof(msg)), 0);
  (*m)->data()[size - 1] = 0x42;
  EXPECT_EQ((*r)->data()[size - 1], 0x42);

  // The second mapping outlives the first.
  r = Status::Cancelled("drop");
  EXPECT_EQ((*m)->data()[size - 1], 0x42);
}

TEST(ShmRegionTest, InvalidArguments) {
  EXPECT_EQ(ShmRegion::Create(0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ShmRegion::Map(-1, 4096).status().code(), StatusCode::kInvalidArgument);
  auto r = ShmRegion::Create(4096);
  ASSERT_TRUE(r.ok());
  // Asking for more than the file holds is refused (and the fd is consumed).
  auto m = ShmRegion::Map(::dup((*r)->fd()), 8192);
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("4096"), std::string::npos);
}

TEST(ShmRegionTest, DevShmFallbackLeavesNoName) {
  auto r = ShmRegion::CreateWithoutMemfdForTest(1 << 20);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::string target = FdTarget((*r)->fd());
  EXPECT_EQ(target.rfind("/dev/shm/rayts-plasma-", 0), 0u) << target;
  EXPECT_NE(target.find("(deleted)"), std::string::npos) << target;
  (*r)->data()[100] = 9;
  auto m = ShmRegion::Map(::dup((*r)->fd()), 1 << 20);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->data()[100], 9);
}

// Larger than two prefault chunks and not a multiple of one.
constexpr uint64_t kPrefaultSize = 2 * ShmRegion::kPrefaultChunk + 5 * 4096;

// Bytes the file has allocated (its share of the machine's Shmem).
uint64_t FileBytes(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

TEST(ShmRegionTest, PrefaultTargetStaysAheadOfTheHighWaterMark) {
  const uint64_t gib = 1ull << 30;
  EXPECT_EQ(ShmRegion::PrefaultTarget(0, gib), ShmRegion::kMinAhead);  // idle: a small window
  EXPECT_EQ(ShmRegion::PrefaultTarget(1 << 20, gib), (1 << 20) + ShmRegion::kMinAhead);
  EXPECT_EQ(ShmRegion::PrefaultTarget(100 << 20, gib), 200ull << 20);  // as much again as is used
  EXPECT_EQ(ShmRegion::PrefaultTarget(gib / 2 + (1 << 20), 4 * gib), gib + (1 << 20) + ShmRegion::kMaxAhead - gib / 2);
  EXPECT_EQ(ShmRegion::PrefaultTarget(900 << 20, gib), gib);  // never past the region
  EXPECT_EQ(ShmRegion::PrefaultTarget(2 * gib, gib), gib);
  EXPECT_EQ(ShmRegion::PrefaultTarget(0, 4096), 4096u);
}

TEST(ShmRegionTest, IdleRegionCommitsOnlyTheWindow) {
  auto r = ShmRegion::Create(kPrefaultSize);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ShmRegion& region = **r;
  region.StartPrefault();
  ASSERT_TRUE(region.WaitPrefaultedForTest(ShmRegion::kMinAhead, 10000));
  EXPECT_EQ(region.committed_bytes(), ShmRegion::kMinAhead);
  // The window and the header page, nothing more.
  EXPECT_GE(FileBytes(region.fd()), ShmRegion::kMinAhead);
  EXPECT_LE(FileBytes(region.fd()), ShmRegion::kMinAhead + ShmRegion::kHeaderBytes);
}

TEST(ShmRegionTest, PrefaultFollowsTheHighWaterMarkAndKeepsContent) {
  auto r = ShmRegion::Create(kPrefaultSize);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ShmRegion& region = **r;
  // Objects written before (or while) prefaulting must survive it.
  WritePattern(region.data(), kPrefaultSize);
  EXPECT_EQ(region.prefaulted_bytes(), 0u);
  region.StartPrefault();
  region.StartPrefault();  // idempotent
  region.AdvanceHighWater(kPrefaultSize / 2);
  ASSERT_TRUE(region.WaitPrefaultedForTest(kPrefaultSize, 10000)) << region.prefaulted_bytes();
  EXPECT_EQ(region.committed_bytes(), kPrefaultSize);
  EXPECT_TRUE(PatternIntact(region.data(), kPrefaultSize));
  EXPECT_TRUE(AllResident(region.data(), kPrefaultSize));
}

TEST(ShmRegionTest, MapperFollowsTheCreatorsMark) {
  auto r = ShmRegion::Create(kPrefaultSize);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto m = ShmRegion::Map(::dup((*r)->fd()), kPrefaultSize);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  (*m)->StartPrefault();  // before the creator commits anything: it waits for the mark
  (*r)->StartPrefault();
  ASSERT_TRUE((*m)->WaitPrefaultedForTest(ShmRegion::kMinAhead, 10000));
  (*r)->AdvanceHighWater(ShmRegion::kPrefaultChunk);
  const uint64_t target = ShmRegion::PrefaultTarget(ShmRegion::kPrefaultChunk, kPrefaultSize);
  ASSERT_TRUE((*m)->WaitPrefaultedForTest(target, 10000)) << (*m)->prefaulted_bytes();
  // A mapper never faults in what the creator has not committed.
  EXPECT_EQ((*r)->committed_bytes(), target);
  EXPECT_EQ((*m)->committed_bytes(), target);
  EXPECT_EQ((*m)->prefaulted_bytes(), target);
}

TEST(ShmRegionTest, TouchPrefaultKeepsContent) {
  auto r = ShmRegion::Create(kPrefaultSize);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ShmRegion& region = **r;
  WritePattern(region.data(), kPrefaultSize);
  region.AdvanceHighWater(kPrefaultSize);
  region.StartTouchPrefaultForTest();
  ASSERT_TRUE(region.WaitPrefaultedForTest(kPrefaultSize, 10000));
  EXPECT_TRUE(PatternIntact(region.data(), kPrefaultSize));
  EXPECT_TRUE(AllResident(region.data(), kPrefaultSize));
}

// This thread's time waiting for a CPU so far, in ns (schedstat's second field).
uint64_t RunQueueWaitNs() {
  std::ifstream f("/proc/thread-self/schedstat");
  uint64_t run = 0, wait = 0;
  f >> run >> wait;
  return wait;
}

// Regression: the mapper filled its page tables with MADV_POPULATE_WRITE,
// which holds the process's mmap lock for the whole chunk; at SCHED_IDLE on
// a busy machine it was preempted holding it, and every mmap, munmap and
// brk of the host (a Node driver's JS thread) waited for seconds. While the
// mapper prefaults with every CPU kept busy, this thread's mmap/munmap calls
// must not sleep (their time minus this thread's own run-queue wait).
TEST(ShmRegionTest, PrefaultAtIdlePriorityNeverHoldsUpTheProcesssMmap) {
  const uint64_t size = 8 * ShmRegion::kPrefaultChunk;
  auto r = ShmRegion::Create(size);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  (*r)->AdvanceHighWater(size);
  (*r)->StartPrefault();
  ASSERT_TRUE((*r)->WaitPrefaultedForTest(size, 60000)) << (*r)->prefaulted_bytes();
  auto m = ShmRegion::Map(::dup((*r)->fd()), size);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (unsigned i = 0; i < std::thread::hardware_concurrency() + 1; i++) {
    spinners.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  }
  (*m)->StartPrefault();
  double worst_ms = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000);
  while (std::chrono::steady_clock::now() < end && (*m)->prefaulted_bytes() < size) {
    const uint64_t w0 = RunQueueWaitNs();
    const auto t0 = std::chrono::steady_clock::now();
    void* p = ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    static_cast<volatile char*>(p)[0] = 1;
    ::munmap(p, 1 << 20);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() -
                      static_cast<double>(RunQueueWaitNs() - w0) / 1e6;
    worst_ms = std::max(worst_ms, ms);
  }
  stop.store(true);
  for (auto& t : spinners) t.join();
  EXPECT_LT(worst_ms, 50.0) << "an mmap/munmap slept " << worst_ms << " ms behind the prefault thread";
  ASSERT_TRUE((*m)->WaitPrefaultedForTest(size, 60000)) << (*m)->prefaulted_bytes();
  EXPECT_TRUE(AllResident((*m)->data(), size));
}

TEST(ShmRegionTest, DropSharedKeepsPinnedBytesAndLetsGoOfTheFile) {
  const uint64_t size = 4 << 20;
  auto r = ShmRegion::Create(size);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto m = ShmRegion::Map(::dup((*r)->fd()), size);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ShmRegion& client = **m;
  (*m)->StartPrefault();
  std::memset(client.data() + 8192, 0x11, 4096);   // a pinned object
  std::memset(client.data() + 65536, 0x22, 4096);  // not pinned
  uint8_t* const data = client.data();
  client.DropShared({{8192, 4096}});
  client.DropShared({});  // idempotent
  EXPECT_FALSE(client.shared());
  EXPECT_EQ(client.fd(), -1);
  EXPECT_EQ(client.data(), data);  // same addresses, still readable
  EXPECT_EQ(data[8192], 0x11);
  EXPECT_EQ(data[8192 + 4095], 0x11);
  EXPECT_EQ(data[65536], 0);
  // Private now: the creator's bytes no longer change with the client's.
  data[8192] = 0x33;
  EXPECT_EQ((*r)->data()[8192], 0x11);
  // No mapping of the file is left in this process but the creator's.
  std::string maps;
  {
    FILE* f = std::fopen("/proc/self/maps", "r");
    ASSERT_NE(f, nullptr);
    char line[512];
    while (std::fgets(line, sizeof line, f)) maps += line;
    std::fclose(f);
  }
  size_t n = 0;
  for (size_t at = maps.find("rayts-plasma"); at != std::string::npos; at = maps.find("rayts-plasma", at + 1)) n++;
  EXPECT_EQ(n, 1u) << maps;
}

TEST(ShmRegionTest, DestroyWhilePrefaultingStopsTheThread) {
  const int threads_before = ThreadCount();
  ASSERT_GT(threads_before, 0);
  auto r = ShmRegion::Create(4 * ShmRegion::kPrefaultChunk);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const int fd = (*r)->fd();
  uint8_t* const data = (*r)->data();
  const uint64_t size = (*r)->size();
  std::vector<unsigned char> vec(size / static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)));
  (*r)->StartPrefault();
  r = Status::Cancelled("drop");  // destructor stops and joins
  // The mapping is gone (mincore fails with ENOMEM on an unmapped range)...
  EXPECT_EQ(::mincore(data, size, vec.data()), -1);
  EXPECT_EQ(errno, ENOMEM);
  // ...the fd is closed...
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
  // ...and the prefault thread has exited: the destructor returned only
  // after joining it, so no thread of this process is left over.
  EXPECT_EQ(ThreadCount(), threads_before);
}

}  // namespace
}  // namespace rayts::plasma
