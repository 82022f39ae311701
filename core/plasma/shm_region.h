// ShmRegion: one shared-memory mapping (memfd, or an unlinked /dev/shm file).
//
// Role: the raylet creates the node's plasma region with Create() and passes
// fd() to local processes over the unix socket; each of them wraps the
// received fd with Map(). Pages are faulted in lazily by the kernel, and a
// first-touch write is ~25x slower than a warm one, so the creator calls
// StartPrefault() to fault the region in, lowest offsets first, on a
// background thread while the store is already serving.
// Ownership: owns the fd and the mapping; the destructor stops the prefault
// thread, then munmaps and closes.
// Thread safety: the prefault thread only faults pages in and never changes
// their content (MADV_POPULATE_WRITE, else an atomic add of 0 per page), so
// any process may read and write the region while it runs.
// prefaulted_bytes() may be read from any thread. Everything else (creation,
// StartPrefault, WaitPrefaultForTest, destruction) belongs to one owner.
// Invariants: data() is valid and size() bytes long for the object's life;
// the fd is closed exactly once.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "core/common/status.h"

namespace rayts::plasma {

class ShmRegion {
 public:
  // Prefault granularity: progress is published once per chunk.
  static constexpr uint64_t kPrefaultChunk = 64ull << 20;

  // A fresh zero-filled region of `size` bytes: memfd_create("rayts-plasma",
  // MFD_CLOEXEC), or an unlinked file under /dev/shm if memfd is unavailable.
  static StatusOr<std::unique_ptr<ShmRegion>> Create(uint64_t size);

  // Maps `size` bytes of an fd received from another process, read/write
  // shared. Takes ownership of fd (closed on failure too).
  static StatusOr<std::unique_ptr<ShmRegion>> Map(int fd, uint64_t size);

  ~ShmRegion();
  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;

  int fd() const { return fd_; }
  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

  // Starts the background prefault thread (no-op if already started).
  void StartPrefault();
  // Bytes faulted in so far, from offset 0 upward; reaches size() when done.
  uint64_t prefaulted_bytes() const {
    return prefaulted_.load(std::memory_order_acquire);
  }

  // Joins the prefault thread after it finishes the whole region.
  void WaitPrefaultForTest();
  // Create() that skips memfd_create, to exercise the /dev/shm path.
  static StatusOr<std::unique_ptr<ShmRegion>> CreateWithoutMemfdForTest(uint64_t size);
  // StartPrefault() that skips madvise, to exercise the page-touch path.
  void StartTouchPrefaultForTest();

 private:
  ShmRegion(int fd, uint8_t* data, uint64_t size) : fd_(fd), data_(data), size_(size) {}
  static StatusOr<std::unique_ptr<ShmRegion>> CreateImpl(uint64_t size, bool try_memfd);
  void StartPrefaultImpl(bool use_madvise);
  void PrefaultLoop(bool use_madvise);

  const int fd_;
  uint8_t* const data_;
  const uint64_t size_;
  std::thread prefault_thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> prefaulted_{0};
};

}  // namespace rayts::plasma
