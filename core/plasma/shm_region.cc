#include "core/plasma/shm_region.h"

#include <pthread.h>
#include <sched.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

namespace rayts::plasma {
namespace {

#ifdef MADV_POPULATE_WRITE
constexpr int kMadvPopulateWrite = MADV_POPULATE_WRITE;
#else
constexpr int kMadvPopulateWrite = 23;  // Linux 5.14+
#endif

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

StatusOr<uint8_t*> MapShared(int fd, uint64_t size) {
  void* p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Status::IOError(ErrnoText("mmap plasma region"));
  return static_cast<uint8_t*>(p);
}

Status CheckSize(uint64_t size) {
  if (size == 0) return Status::InvalidArgument("plasma region size must be > 0");
  if (size > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) {
    return Status::InvalidArgument("plasma region size too large: " + std::to_string(size));
  }
  return Status::OK();
}

}  // namespace

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
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    Status s = Status::IOError(ErrnoText("ftruncate plasma region"));
    CloseFd(fd);
    return s;
  }
  return Map(fd, size);
}

StatusOr<std::unique_ptr<ShmRegion>> ShmRegion::Map(int fd, uint64_t size) {
  if (fd < 0) return Status::InvalidArgument("invalid plasma region fd");
  Status s = CheckSize(size);
  struct stat st;
  if (s.ok() && ::fstat(fd, &st) != 0) s = Status::IOError(ErrnoText("fstat plasma region"));
  if (s.ok() && static_cast<uint64_t>(st.st_size) < size) {
    s = Status::InvalidArgument("plasma region fd has " + std::to_string(st.st_size) +
                                " bytes, " + std::to_string(size) + " requested");
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
  return std::unique_ptr<ShmRegion>(new ShmRegion(fd, *data, size));
}

ShmRegion::~ShmRegion() {
  stop_.store(true, std::memory_order_relaxed);
  if (prefault_thread_.joinable()) prefault_thread_.join();
  ::munmap(data_, static_cast<size_t>(size_));
  CloseFd(fd_);
}

void ShmRegion::StartPrefault() { StartPrefaultImpl(/*use_madvise=*/true); }
void ShmRegion::StartTouchPrefaultForTest() { StartPrefaultImpl(/*use_madvise=*/false); }

void ShmRegion::StartPrefaultImpl(bool use_madvise) {
  if (prefault_thread_.joinable() || prefaulted_bytes() == size_) return;
  prefault_thread_ = std::thread([this, use_madvise] { PrefaultLoop(use_madvise); });
}

void ShmRegion::WaitPrefaultForTest() {
  if (prefault_thread_.joinable()) prefault_thread_.join();
}

void ShmRegion::PrefaultLoop(bool use_madvise) {
  // Background work: only use CPU nobody else wants (the owner's first task
  // should not wait behind it).
  sched_param idle{};
  ::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &idle);
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  for (uint64_t off = prefaulted_bytes(); off < size_;) {
    if (stop_.load(std::memory_order_relaxed)) return;
    const uint64_t len = std::min(kPrefaultChunk, size_ - off);
    uint8_t* chunk = data_ + off;
    // MADV_POPULATE_WRITE faults pages in writable without changing them.
    bool done = use_madvise && ::madvise(chunk, len, kMadvPopulateWrite) == 0;
    if (!done) {
      if (use_madvise && errno == EINVAL) use_madvise = false;  // kernel < 5.14
      // Other processes may already be writing objects here, so the touch
      // must preserve content: an atomic add of 0 is a write fault that
      // stores back exactly the byte it read.
      for (uint64_t p = 0; p < len; p += page) {
        __atomic_fetch_add(chunk + p, static_cast<uint8_t>(0), __ATOMIC_RELAXED);
      }
    }
    off += len;
    prefaulted_.store(off, std::memory_order_release);
  }
}

}  // namespace rayts::plasma
