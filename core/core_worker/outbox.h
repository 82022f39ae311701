// Outbox: frames on their way out of this process, in the order they were
// queued, written in batches (consecutive frames to one connection in one
// sendmsg).
//
// Role: frames queued by host-thread calls wait until the host flushes at
// the end of its turn (many submits, one write per connection, from the
// host thread); TakeHostFlushRequest() says whether a flush is owed. Frames
// queued on the io thread are written when the handler of the current read
// batch returns (one post, which costs no wake-up from the io thread).
// Thread safety: every method from any thread; its own lock (mu_) keeps the
// queue and the order of writes (a flush writes under it). Lock order: the
// core lock, then this one (never the other way).
#pragma once

#include <asio.hpp>
#include <atomic>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "core/common/thread_annotations.h"
#include "core/protocol/connection.h"

namespace rayts {

class Outbox {
 public:
  explicit Outbox(asio::io_context& io) : io_(io) {}
  // The thread whose frames flush after its current handler.
  void SetIoThread(std::thread::id id) { io_thread_.store(id, std::memory_order_relaxed); }
  void Queue(std::shared_ptr<Connection> c, flatbuffers::DetachedBuffer frame) EXCLUDES(mu_);
  void Flush() EXCLUDES(mu_);
  bool TakeHostFlushRequest() { return host_flush_requested_.exchange(false, std::memory_order_relaxed); }

 private:
  asio::io_context& io_;
  Mutex mu_;
  std::vector<std::pair<std::shared_ptr<Connection>, flatbuffers::DetachedBuffer>> frames_ GUARDED_BY(mu_);
  bool io_flush_scheduled_ GUARDED_BY(mu_) = false;
  std::atomic<bool> host_flush_requested_{false};
  std::atomic<std::thread::id> io_thread_{};
};

}  // namespace rayts
