// EventLoop: the thread that runs a LoopTransport's sockets and timers.
//
// Role: LoopTransport (loop_transport.h) does the protocol work (accept,
// framing, batched writes, closes) on plain non-blocking fds; an EventLoop
// only says when an fd is ready and when a timer is due. Two exist:
//   - UvLoop (bindings/uv_loop.h): the Node process's own libuv loop, so the
//     JS thread reads its sockets itself and no thread hop sits between a
//     frame's arrival and the JS code that waits for it;
//   - AsioLoop (asio_loop.h): an asio io_context on a thread of its own, for
//     hosts without Node (the C++ tests).
// Thread safety: WatchFd, Watch::Want, NewTimer and the LoopTimer methods
// are called on the loop thread only (InLoopThread()); Soon from any thread.
// Callbacks run on the loop thread, without the core lock.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

namespace rayts {

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~EventLoop() = default;

  // Readiness of one fd. Destroying the Watch stops it: no callback runs
  // after the destructor returns, and the fd is not closed by it.
  class Watch {
   public:
    virtual ~Watch() = default;
    virtual void Want(bool readable, bool writable) = 0;
  };
  // `fn(readable, writable)`; an error or hang-up reports readable (the read
  // then finds it). Starts with read interest only.
  using ReadyFn = std::function<void(bool readable, bool writable)>;
  virtual std::unique_ptr<Watch> WatchFd(int fd, ReadyFn fn) = 0;

  class LoopTimer {
   public:
    virtual ~LoopTimer() = default;
    // Replaces any pending start. Destroying the timer stops it.
    virtual void Start(Clock::duration delay, std::function<void()> fn) = 0;
    virtual void Stop() = 0;
  };
  virtual std::unique_ptr<LoopTimer> NewTimer() = 0;

  // Runs `fn` on the loop thread at its next turn (never inside this call).
  virtual void Soon(std::function<void()> fn) = 0;
  virtual bool InLoopThread() const = 0;
};

}  // namespace rayts
