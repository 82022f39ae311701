// ShmRegion: one shared-memory mapping (memfd, or an unlinked /dev/shm file).
//
// Role: the raylet creates the node's plasma region with Create() and passes
// fd() to local processes over the unix socket; each of them wraps the
// received fd with Map(). Memory is committed as the store uses it, not up
// front: a first-touch write is ~25x slower than a warm one, so pages are
// prefaulted in the background *ahead of the allocator's high-water mark*
// (AdvanceHighWater; PrefaultTarget says how far ahead), lowest offsets
// first, while the store already serves. An idle store commits
// PrefaultTarget(0) bytes.
//   * The creator's prefault thread allocates the file's pages (fallocate,
//     which maps nothing into the creator), then publishes how far it got in
//     a header page that follows the store bytes in the file.
//   * Every mapper's prefault thread follows that mark and fills its own
//     page tables up to it (an atomic add of 0 per page: a page fault takes
//     the mapping's own lock, where MADV_POPULATE_WRITE would hold the
//     process's mmap lock from a SCHED_IDLE thread and stall the host's
//     brk/mmap behind it), so a large write in any process takes no page
//     fault. It sleeps on the header word (a shared futex) while there is
//     nothing new.
// Ownership: owns the fd and the mapping (size() store bytes + the header
// page); the destructor stops the prefault thread, then munmaps and closes.
// DropShared() lets go of the shared memory early (keeping given ranges as
// private copies at the same addresses), for a client that disconnects
// while views into the region may still be read.
// Thread safety: the prefault threads only fault pages in and never change
// their content, so any process may read and write the region while they
// run. prefaulted_bytes() may be read from any thread, AdvanceHighWater
// called from one thread (the store's). Everything else (creation,
// StartPrefault, DropShared, the test waits, destruction) belongs to one
// owner.
// Invariants: data() is valid and size() bytes long for the object's life
// (after DropShared it is private memory); the fd is closed exactly once;
// the published mark only grows and never passes size().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "core/common/status.h"

namespace rayts::plasma {

class ShmRegion {
 public:
  // Prefault granularity: progress is published once per chunk.
  static constexpr uint64_t kPrefaultChunk = 16ull << 20;
  // Committed ahead of the high-water mark: at least kMinAhead (what an idle
  // store holds), at most kMaxAhead, else as much as is already used.
  static constexpr uint64_t kMinAhead = 16ull << 20;
  static constexpr uint64_t kMaxAhead = 512ull << 20;
  // The header page after the store bytes (the creator's published mark).
  static constexpr uint64_t kHeaderBytes = 4096;

  // How far to prefault a region of `size` bytes whose allocator has handed
  // out offsets below `high_water`.
  static uint64_t PrefaultTarget(uint64_t high_water, uint64_t size);

  // A fresh zero-filled region of `size` bytes: memfd_create("rayts-plasma",
  // MFD_CLOEXEC), or an unlinked file under /dev/shm if memfd is unavailable.
  static StatusOr<std::unique_ptr<ShmRegion>> Create(uint64_t size);

  // Maps `size` store bytes (and the header page) of an fd received from
  // another process, read/write shared. Takes ownership of fd (closed on
  // failure too).
  static StatusOr<std::unique_ptr<ShmRegion>> Map(int fd, uint64_t size);

  ~ShmRegion();
  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;

  int fd() const { return fd_; }
  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

  // Starts the background prefault thread (no-op if already started).
  void StartPrefault();
  // Creator only: offsets below `end` are in use; prefault up to
  // PrefaultTarget(end). Cheap when the target does not move.
  void AdvanceHighWater(uint64_t end);
  // Bytes prefaulted so far, from offset 0 upward: by the creator, the bytes
  // committed to the file; by a mapper, the bytes in its page tables.
  uint64_t prefaulted_bytes() const { return prefaulted_.load(std::memory_order_acquire); }
  // Bytes of the file committed by the creator (the header's mark).
  uint64_t committed_bytes() const;

  // Stops the prefault thread and replaces the shared mapping by private
  // anonymous memory at the same addresses, copying the bytes of `keep`
  // ((offset, size) ranges) over; closes the fd. Afterwards this process
  // holds no reference to the shared memory. Idempotent.
  void DropShared(const std::vector<std::pair<uint64_t, uint64_t>>& keep);
  bool shared() const { return fd_ >= 0; }

  // Waits (bounded) until prefaulted_bytes() >= bytes; false on timeout.
  bool WaitPrefaultedForTest(uint64_t bytes, int timeout_ms);
  // Create() that skips memfd_create, to exercise the /dev/shm path.
  static StatusOr<std::unique_ptr<ShmRegion>> CreateWithoutMemfdForTest(uint64_t size);
  // StartPrefault() that skips fallocate, to exercise the creator's
  // page-touch path.
  void StartTouchPrefaultForTest();

 private:
  struct Header;
  ShmRegion(int fd, uint8_t* data, uint64_t size, bool creator)
      : fd_(fd), data_(data), size_(size), creator_(creator) {}
  static StatusOr<std::unique_ptr<ShmRegion>> CreateImpl(uint64_t size, bool try_memfd);
  static StatusOr<std::unique_ptr<ShmRegion>> MapImpl(int fd, uint64_t size, bool creator);
  Header* header() const;
  void StartPrefaultImpl(bool use_fallocate);
  void StopPrefault();
  void CreatorLoop(bool use_fallocate);
  void MapperLoop();
  // Faults [off, off + len) of this mapping in without changing content.
  void PopulateMapping(uint64_t off, uint64_t len);

  int fd_;
  uint8_t* const data_;
  const uint64_t size_;
  const bool creator_;
  std::thread prefault_thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> prefaulted_{0};
  std::atomic<uint32_t> target_seq_{0};     // futex word: the creator's target moved
  std::atomic<uint64_t> target_{0};         // creator: bytes to commit
};

}  // namespace rayts::plasma
