#include "core/plasma/shm_region.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

namespace rayts::plasma {

// Lives in the file after the store bytes; written by the creator only.
struct ShmRegion::Header {
  std::atomic<uint32_t> seq;        // futex word: bumped after every publish
  uint32_t pad;
  std::atomic<uint64_t> committed;  // bytes [0, committed) are allocated in the file
};
static_assert(std::atomic<uint32_t>::is_always_lock_free && std::atomic<uint64_t>::is_always_lock_free,
              "the header is shared between processes");

namespace {

std::string ErrnoText(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

void CloseFd(int fd) {
  // Retrying close on EINTR is wrong on Linux: the fd is already gone.
  if (fd >= 0) ::close(fd);
}

int OpenUnlinkedDevShm() {
  char path[] = "/dev/shm/rayts-plasma-XXXXXX";
  int fd = ::mkostemp(path, O_CLOEXEC);
  if (fd < 0) return -1;
  ::unlink(path);
  return fd;
}

// The header page starts at the first page boundary at or after the store bytes.
uint64_t HeaderOffset(uint64_t size) { return (size + ShmRegion::kHeaderBytes - 1) / ShmRegion::kHeaderBytes * ShmRegion::kHeaderBytes; }
uint64_t MapLength(uint64_t size) { return HeaderOffset(size) + ShmRegion::kHeaderBytes; }

StatusOr<uint8_t*> MapShared(int fd, uint64_t size) {
  void* p = ::mmap(nullptr, static_cast<size_t>(MapLength(size)), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Status::IOError(ErrnoText("mmap plasma region"));
  return static_cast<uint8_t*>(p);
}

Status CheckSize(uint64_t size) {
  if (size == 0) return Status::InvalidArgument("plasma region size must be > 0");
  if (size > static_cast<uint64_t>(std::numeric_limits<off_t>::max()) - 2 * ShmRegion::kHeaderBytes) {
    return Status::InvalidArgument("plasma region size too large: " + std::to_string(size));
  }
  return Status::OK();
}

uint32_t* Word(std::atomic<uint32_t>* a) { return reinterpret_cast<uint32_t*>(a); }

// Sleeps while *word == expected, at most timeout_ms. Shared (not
// FUTEX_PRIVATE): the header word is waited on by other processes.
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, int timeout_ms) {
  timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
  ::syscall(SYS_futex, Word(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}
void FutexWakeAll(std::atomic<uint32_t>* word) {
  ::syscall(SYS_futex, Word(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void BackgroundPriority() {
  // Background work: only use CPU nobody else wants (the owner's first task
  // should not wait behind it).
  sched_param idle{};
  ::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &idle);
}

constexpr int kWaitSliceMs = 1000;  // a stop is also signalled by a wake; this only bounds each sleep

}  // namespace

uint64_t ShmRegion::PrefaultTarget(uint64_t high_water, uint64_t size) {
  high_water = std::min(high_water, size);
  const uint64_t ahead = std::clamp(high_water, kMinAhead, kMaxAhead);
  return std::min(size, high_water + ahead);
}

StatusOr<std::unique_ptr<ShmRegion>> ShmRegion::Create(uint64_t size) {
  return CreateImpl(size, /*try_memfd=*/true);
}

StatusOr<std::unique_ptr<ShmRegion>> ShmRegion::CreateWithoutMemfdForTest(uint64_t size) {
  return CreateImpl(size, /*try_memfd=*/false);
}

StatusOr<std::unique_ptr<ShmRegion>> ShmRegion::CreateImpl(uint64_t size, bool try_memfd) {
  RAYTS_RETURN_IF_ERROR(CheckSize(size));
  int fd = try_memfd ? ::memfd_create("rayts-plasma", MFD_CLOEXEC) : -1;
  if (fd < 0) fd = OpenUnlinkedDevShm();
  if (fd < 0) return Status::IOError(ErrnoText("create plasma region (memfd and /dev/shm)"));
  if (::ftruncate(fd, static_cast<off_t>(MapLength(size))) != 0) {
    Status s = Status::IOError(ErrnoText("ftruncate plasma region"));
    CloseFd(fd);
    return s;
  }
  auto r = MapImpl(fd, size, /*creator=*/true);
  if (r.ok()) (*r)->target_.store(PrefaultTarget(0, size), std::memory_order_relaxed);
  return r;
}

StatusOr<std::unique_ptr<ShmRegion>> ShmRegion::Map(int fd, uint64_t size) { return MapImpl(fd, size, false); }

StatusOr<std::unique_ptr<ShmRegion>> ShmRegion::MapImpl(int fd, uint64_t size, bool creator) {
  if (fd < 0) return Status::InvalidArgument("invalid plasma region fd");
  Status s = CheckSize(size);
  struct stat st;
  if (s.ok() && ::fstat(fd, &st) != 0) s = Status::IOError(ErrnoText("fstat plasma region"));
  if (s.ok() && static_cast<uint64_t>(st.st_size) < MapLength(size)) {
    s = Status::InvalidArgument("plasma region fd has " + std::to_string(st.st_size) + " bytes, " +
                                std::to_string(size) + " requested (plus a " + std::to_string(kHeaderBytes) +
                                "-byte header)");
  }
  if (!s.ok()) {
    CloseFd(fd);
    return s;
  }
  StatusOr<uint8_t*> data = MapShared(fd, size);
  if (!data.ok()) {
    CloseFd(fd);
    return data.status();
  }
  return std::unique_ptr<ShmRegion>(new ShmRegion(fd, *data, size, creator));
}

ShmRegion::~ShmRegion() {
  StopPrefault();
  ::munmap(data_, static_cast<size_t>(MapLength(size_)));
  CloseFd(fd_);
}

ShmRegion::Header* ShmRegion::header() const { return reinterpret_cast<Header*>(data_ + HeaderOffset(size_)); }

uint64_t ShmRegion::committed_bytes() const {
  return std::min(size_, header()->committed.load(std::memory_order_acquire));
}

void ShmRegion::StartPrefault() { StartPrefaultImpl(/*use_fallocate=*/true); }
void ShmRegion::StartTouchPrefaultForTest() { StartPrefaultImpl(/*use_fallocate=*/false); }

void ShmRegion::StartPrefaultImpl(bool use_fallocate) {
  if (prefault_thread_.joinable() || prefaulted_bytes() == size_ || fd_ < 0) return;
  stop_.store(false, std::memory_order_relaxed);
  if (creator_) {
    prefault_thread_ = std::thread([this, use_fallocate] { CreatorLoop(use_fallocate); });
  } else {
    prefault_thread_ = std::thread([this] { MapperLoop(); });
  }
}

void ShmRegion::StopPrefault() {
  if (!prefault_thread_.joinable()) return;
  stop_.store(true, std::memory_order_relaxed);
  target_seq_.fetch_add(1, std::memory_order_release);
  FutexWakeAll(&target_seq_);
  // Wakes the other mappers' threads too; they find nothing new and sleep again.
  FutexWakeAll(&header()->seq);
  prefault_thread_.join();
}

void ShmRegion::AdvanceHighWater(uint64_t end) {
  const uint64_t t = PrefaultTarget(end, size_);
  if (t <= target_.load(std::memory_order_relaxed)) return;
  target_.store(t, std::memory_order_release);
  target_seq_.fetch_add(1, std::memory_order_release);
  FutexWakeAll(&target_seq_);
}

bool ShmRegion::WaitPrefaultedForTest(uint64_t bytes, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (prefaulted_bytes() < bytes) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

void ShmRegion::PopulateMapping(uint64_t off, uint64_t len) {
  // One write fault per page, never MADV_POPULATE_WRITE: that madvise holds
  // the process's mmap lock for the whole range, and this thread runs at
  // SCHED_IDLE, so on a busy machine it is preempted holding it for up to
  // seconds while every mmap, munmap, mprotect and brk of the process (the
  // JS thread's malloc and V8's heap) waits behind it (measured here: the
  // driver's JS thread asleep in brk for 0.3-1.7 s during its first burst;
  // a standalone test, 19.6 s worst mmap against 0.4 ms with page faults).
  // A page fault takes only the per-VMA lock of the store's mapping (Linux
  // 6.4+; older kernels hold the mmap lock for one fault at a time).
  // Other processes may already be writing objects here, so the touch must
  // preserve content: an atomic add of 0 is a write fault that stores back
  // exactly the byte it read.
  uint8_t* chunk = data_ + off;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  for (uint64_t p = 0; p < len; p += page) {
    __atomic_fetch_add(chunk + p, static_cast<uint8_t>(0), __ATOMIC_RELAXED);
  }
}

void ShmRegion::CreatorLoop(bool use_fallocate) {
  BackgroundPriority();
  Header* h = header();
  uint64_t done = h->committed.load(std::memory_order_relaxed);
  while (!stop_.load(std::memory_order_relaxed) && done < size_) {
    const uint32_t seq = target_seq_.load(std::memory_order_acquire);
    const uint64_t target = target_.load(std::memory_order_acquire);
    if (done >= target) {
      FutexWait(&target_seq_, seq, kWaitSliceMs);
      continue;
    }
    const uint64_t len = std::min(kPrefaultChunk, target - done);
    // fallocate allocates (and zeroes) the pages in the file without mapping
    // them here: the creator's own page tables stay small. Mappers fill
    // theirs from the published mark.
    bool ok = use_fallocate && ::fallocate(fd_, 0, static_cast<off_t>(done), static_cast<off_t>(len)) == 0;
    if (!ok && use_fallocate) {
      if (errno == ENOSPC) return;  // the filesystem is full: pages come on first touch, as before
      use_fallocate = false;        // EOPNOTSUPP and the like: fault through the mapping
    }
    if (!ok) PopulateMapping(done, len);
    done += len;
    h->committed.store(done, std::memory_order_release);
    prefaulted_.store(done, std::memory_order_release);
    h->seq.fetch_add(1, std::memory_order_release);
    FutexWakeAll(&h->seq);
  }
}

void ShmRegion::MapperLoop() {
  BackgroundPriority();
  Header* h = header();
  uint64_t mine = prefaulted_bytes();
  while (!stop_.load(std::memory_order_relaxed) && mine < size_) {
    const uint32_t seq = h->seq.load(std::memory_order_acquire);
    const uint64_t committed = committed_bytes();
    if (mine >= committed) {
      FutexWait(&h->seq, seq, kWaitSliceMs);
      continue;
    }
    const uint64_t len = std::min(kPrefaultChunk, committed - mine);
    PopulateMapping(mine, len);
    mine += len;
    prefaulted_.store(mine, std::memory_order_release);
  }
}

void ShmRegion::DropShared(const std::vector<std::pair<uint64_t, uint64_t>>& keep) {
  if (fd_ < 0) return;
  StopPrefault();
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> copies;
  for (auto [off, len] : keep) {
    if (off >= size_) continue;
    len = std::min(len, size_ - off);
    copies.emplace_back(off, std::vector<uint8_t>(data_ + off, data_ + off + len));
  }
  void* p = ::mmap(data_, static_cast<size_t>(MapLength(size_)), PROT_READ | PROT_WRITE,
                   MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return;  // keeps the shared mapping: still valid, released at destruction
  for (auto& [off, bytes] : copies) std::memcpy(data_ + off, bytes.data(), bytes.size());
  CloseFd(fd_);
  fd_ = -1;
}

}  // namespace rayts::plasma
