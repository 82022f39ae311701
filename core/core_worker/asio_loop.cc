#include "core/core_worker/asio_loop.h"

#include <future>

namespace rayts {

namespace {

// One fd's readiness: one async_wait per wanted direction, re-armed after
// each report while still wanted. The state outlives the Watch until the
// waits it started have completed (cancelled ones report aborted).
struct WatchState {
  explicit WatchState(asio::io_context& io, int fd) : sd(io, fd) {}
  asio::posix::stream_descriptor sd;
  EventLoop::ReadyFn fn;
  bool want_read = true, want_write = false;
  bool read_pending = false, write_pending = false;
  bool dead = false;
};

void Arm(const std::shared_ptr<WatchState>& s) {
  if (s->dead) return;
  if (s->want_read && !s->read_pending) {
    s->read_pending = true;
    s->sd.async_wait(asio::posix::descriptor_base::wait_read, [s](const asio::error_code& ec) {
      s->read_pending = false;
      if (s->dead || ec == asio::error::operation_aborted) return;
      if (s->want_read) {
        auto fn = s->fn;  // the callback may destroy the watch
        fn(true, false);
      }
      Arm(s);
    });
  }
  if (s->want_write && !s->write_pending) {
    s->write_pending = true;
    s->sd.async_wait(asio::posix::descriptor_base::wait_write, [s](const asio::error_code& ec) {
      s->write_pending = false;
      if (s->dead || ec == asio::error::operation_aborted) return;
      if (s->want_write) {
        auto fn = s->fn;
        fn(false, true);
      }
      Arm(s);
    });
  }
}

class AsioWatch final : public EventLoop::Watch {
 public:
  AsioWatch(asio::io_context& io, int fd, EventLoop::ReadyFn fn) : s_(std::make_shared<WatchState>(io, fd)) {
    s_->fn = std::move(fn);
    Arm(s_);
  }
  ~AsioWatch() override {
    s_->dead = true;
    asio::error_code ec;
    s_->sd.cancel(ec);
    s_->sd.release();  // the fd is not ours to close
  }
  void Want(bool readable, bool writable) override {
    s_->want_read = readable;
    s_->want_write = writable;
    Arm(s_);
  }

 private:
  std::shared_ptr<WatchState> s_;
};

class AsioTimer final : public EventLoop::LoopTimer {
 public:
  explicit AsioTimer(asio::io_context& io) : timer_(io) {}
  void Start(EventLoop::Clock::duration delay, std::function<void()> fn) override {
    timer_.expires_after(delay);
    timer_.async_wait([fn = std::move(fn)](const asio::error_code& ec) {
      if (!ec) fn();
    });
  }
  void Stop() override { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

}  // namespace

void AsioLoop::Run() {
  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(io_.get_executor());
  thread_ = std::thread([this] {
    loop_id_.store(std::this_thread::get_id());
    io_.run();
  });
}

void AsioLoop::Stop() {
  if (!thread_.joinable()) return;
  work_.reset();
  io_.stop();
  thread_.join();
  loop_id_.store(std::thread::id());
}

bool AsioLoop::RunAndWait(std::function<void()> fn, std::chrono::milliseconds limit) {
  if (!thread_.joinable() || InLoopThread()) {
    fn();
    return true;
  }
  auto done = std::make_shared<std::promise<void>>();
  auto f = done->get_future();
  asio::post(io_, [fn = std::move(fn), done] {
    fn();
    done->set_value();
  });
  return f.wait_for(limit) == std::future_status::ready;
}

std::unique_ptr<EventLoop::Watch> AsioLoop::WatchFd(int fd, ReadyFn fn) {
  return std::make_unique<AsioWatch>(io_, fd, std::move(fn));
}

std::unique_ptr<EventLoop::LoopTimer> AsioLoop::NewTimer() { return std::make_unique<AsioTimer>(io_); }

}  // namespace rayts
