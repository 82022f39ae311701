// UvLoop: the EventLoop (core/core_worker/event_loop.h) of a Node process:
// its own libuv loop, on the JS thread. The CoreWorker's sockets are read
// and its timers fire on the thread that runs JS, so a frame's handler and
// the JS code waiting for it run in one thread, with no wake-up in between.
// Every handle it makes is unreferenced (the sockets alone do not keep Node
// running); SetRef(true) keeps the loop alive while JS waits on the core.
// It also tells whether the JS thread is stalled (busy outside the loop for
// a while), for the bindings' stall service (see LoopTransport "Stalls").
// Thread safety: Soon, stalled-state reads from any thread; the rest on the
// loop (JS) thread. Handles are freed in their close callbacks, so a Watch
// or a timer may be destroyed from inside its own callback.
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/core_worker/event_loop.h"

namespace rayts::bindings {

class UvLoop final : public EventLoop {
 public:
  explicit UvLoop(uv_loop_t* loop);  // on the loop thread
  ~UvLoop() override;                // on the loop thread; pending Soon work is dropped

  void SetRef(bool ref);
  // Bumped each time the loop goes into and out of its poll phase.
  uint64_t epoch() const { return epoch_.load(std::memory_order_relaxed); }
  // True while the loop waits in its poll phase (idle, not stalled).
  bool idle() const { return in_poll_.load(std::memory_order_relaxed); }
  void MarkBusy() { in_poll_.store(false, std::memory_order_relaxed); }

  std::unique_ptr<Watch> WatchFd(int fd, ReadyFn fn) override;
  std::unique_ptr<LoopTimer> NewTimer() override;
  void Soon(std::function<void()> fn) override;
  bool InLoopThread() const override { return std::this_thread::get_id() == thread_; }

 private:
  struct Shared;  // what the handles' callbacks reach (freed after the last close)
  void RunSoon();

  uv_loop_t* loop_;
  const std::thread::id thread_;
  Shared* shared_;
  std::atomic<uint64_t> epoch_{0};
  std::atomic<bool> in_poll_{false};
};

}  // namespace rayts::bindings
