#include "core/plasma/shm_region.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
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

TEST(ShmRegionTest, PrefaultReachesSizeAndKeepsContent) {
  auto r = ShmRegion::Create(kPrefaultSize);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ShmRegion& region = **r;
  // Objects written before (or while) prefaulting must survive it.
  WritePattern(region.data(), 8 << 20);
  EXPECT_EQ(region.prefaulted_bytes(), 0u);
  region.StartPrefault();
  region.StartPrefault();  // idempotent
  region.WaitPrefaultForTest();
  EXPECT_EQ(region.prefaulted_bytes(), kPrefaultSize);
  EXPECT_TRUE(PatternIntact(region.data(), 8 << 20));
  EXPECT_TRUE(AllResident(region.data(), kPrefaultSize));
  region.StartPrefault();  // already done: no new thread
  region.WaitPrefaultForTest();
  EXPECT_EQ(region.prefaulted_bytes(), kPrefaultSize);
}

TEST(ShmRegionTest, TouchPrefaultKeepsContent) {
  auto r = ShmRegion::Create(kPrefaultSize);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ShmRegion& region = **r;
  WritePattern(region.data(), kPrefaultSize);
  region.StartTouchPrefaultForTest();
  region.WaitPrefaultForTest();
  EXPECT_EQ(region.prefaulted_bytes(), kPrefaultSize);
  EXPECT_TRUE(PatternIntact(region.data(), kPrefaultSize));
  EXPECT_TRUE(AllResident(region.data(), kPrefaultSize));
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
