// AsioLoop: an EventLoop (event_loop.h) on an asio io_context with a thread
// of its own, for hosts without Node (the C++ tests, a CoreWorker started by
// CoreWorker::Start). Under Node the bindings use the JS thread's libuv loop
// instead (bindings/uv_loop.h).
// Thread safety: as EventLoop says; Run/Stop/RunAndWait from the host thread
// (not the loop's).
#pragma once

#include "core/common/asio.h"
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "core/core_worker/event_loop.h"

namespace rayts {

class AsioLoop final : public EventLoop {
 public:
  AsioLoop() = default;
  ~AsioLoop() override { Stop(); }
  void Run();   // starts the loop thread
  void Stop();  // stops it and joins
  // Runs `fn` on the loop thread and waits for it (at most `limit`); runs it
  // here when the loop does not run. False when it timed out.
  bool RunAndWait(std::function<void()> fn, std::chrono::milliseconds limit);

  std::unique_ptr<Watch> WatchFd(int fd, ReadyFn fn) override;
  std::unique_ptr<LoopTimer> NewTimer() override;
  void Soon(std::function<void()> fn) override { asio::post(io_, std::move(fn)); }
  bool InLoopThread() const override { return std::this_thread::get_id() == loop_id_.load(); }

 private:
  asio::io_context io_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::atomic<std::thread::id> loop_id_{};
};

}  // namespace rayts
