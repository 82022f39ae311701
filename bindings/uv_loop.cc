#include "bindings/uv_loop.h"

#include <chrono>

namespace rayts::bindings {

struct UvLoop::Shared {
  UvLoop* owner;
  uv_async_t async;      // Soon from other threads; also the keep-alive handle
  uv_timer_t soon;       // Soon from the loop thread (no syscall)
  uv_prepare_t prepare;  // stall detection: entering the poll phase
  uv_check_t check;      // ... and leaving it
  std::mutex mu;
  std::vector<std::function<void()>> queue;  // guarded by mu
  bool soon_armed = false;                   // loop thread
  int open_handles = 4;
};

namespace {

template <typename H>
UvLoop* OwnerOf(H* h) {
  return static_cast<UvLoop*>(h->data);
}

struct PollHandle {
  uv_poll_t h;
  EventLoop::ReadyFn fn;
  UvLoop* loop;
};

class UvWatch final : public EventLoop::Watch {
 public:
  UvWatch(uv_loop_t* loop, UvLoop* owner, int fd, EventLoop::ReadyFn fn) : p_(new PollHandle) {
    p_->fn = std::move(fn);
    p_->loop = owner;
    uv_poll_init(loop, &p_->h, fd);
    p_->h.data = p_;
    uv_unref(reinterpret_cast<uv_handle_t*>(&p_->h));
    Want(true, false);
  }
  ~UvWatch() override {
    uv_poll_stop(&p_->h);
    p_->fn = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&p_->h), [](uv_handle_t* h) { delete static_cast<PollHandle*>(h->data); });
  }
  void Want(bool readable, bool writable) override {
    int ev = (readable ? UV_READABLE | UV_DISCONNECT : 0) | (writable ? UV_WRITABLE : 0);
    if (ev == 0) {
      uv_poll_stop(&p_->h);
      return;
    }
    uv_poll_start(&p_->h, ev, [](uv_poll_t* h, int status, int events) {
      auto* p = static_cast<PollHandle*>(h->data);
      if (!p->fn) return;
      p->loop->MarkBusy();
      // An error on the fd: the read finds it.
      bool r = status < 0 || (events & (UV_READABLE | UV_DISCONNECT)) != 0;
      bool w = status >= 0 && (events & UV_WRITABLE) != 0;
      auto fn = p->fn;  // the callback may destroy the watch
      fn(r, w);
    });
  }

 private:
  PollHandle* p_;
};

struct TimerHandle {
  uv_timer_t h;
  std::function<void()> fn;
  UvLoop* loop;
};

class UvTimer final : public EventLoop::LoopTimer {
 public:
  UvTimer(uv_loop_t* loop, UvLoop* owner) : t_(new TimerHandle) {
    t_->loop = owner;
    uv_timer_init(loop, &t_->h);
    t_->h.data = t_;
    uv_unref(reinterpret_cast<uv_handle_t*>(&t_->h));
  }
  ~UvTimer() override {
    uv_timer_stop(&t_->h);
    t_->fn = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&t_->h), [](uv_handle_t* h) { delete static_cast<TimerHandle*>(h->data); });
  }
  void Start(EventLoop::Clock::duration delay, std::function<void()> fn) override {
    t_->fn = std::move(fn);
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(delay).count();
    uv_timer_start(&t_->h, [](uv_timer_t* h) {
      auto* t = static_cast<TimerHandle*>(h->data);
      if (!t->fn) return;
      t->loop->MarkBusy();
      auto fn = std::move(t->fn);  // one shot; the callback may destroy the timer or start it again
      t->fn = nullptr;
      fn();
    }, ms < 0 ? 0 : static_cast<uint64_t>(ms), 0);
  }
  void Stop() override {
    uv_timer_stop(&t_->h);
    t_->fn = nullptr;
  }

 private:
  TimerHandle* t_;
};

}  // namespace

UvLoop::UvLoop(uv_loop_t* loop) : loop_(loop), thread_(std::this_thread::get_id()), shared_(new Shared) {
  shared_->owner = this;
  uv_async_init(loop, &shared_->async, [](uv_async_t* a) {
    auto* s = static_cast<Shared*>(a->data);
    if (s->owner) s->owner->RunSoon();
  });
  uv_timer_init(loop, &shared_->soon);
  uv_prepare_init(loop, &shared_->prepare);
  uv_check_init(loop, &shared_->check);
  for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&shared_->async), reinterpret_cast<uv_handle_t*>(&shared_->soon),
                         reinterpret_cast<uv_handle_t*>(&shared_->prepare), reinterpret_cast<uv_handle_t*>(&shared_->check)}) {
    h->data = shared_;
    uv_unref(h);
  }
  uv_prepare_start(&shared_->prepare, [](uv_prepare_t* p) {
    auto* s = static_cast<Shared*>(p->data);
    if (!s->owner) return;
    s->owner->epoch_.fetch_add(1, std::memory_order_relaxed);
    s->owner->in_poll_.store(true, std::memory_order_relaxed);
  });
  uv_check_start(&shared_->check, [](uv_check_t* c) {
    auto* s = static_cast<Shared*>(c->data);
    if (!s->owner) return;
    s->owner->epoch_.fetch_add(1, std::memory_order_relaxed);
    s->owner->in_poll_.store(false, std::memory_order_relaxed);
  });
}

UvLoop::~UvLoop() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->owner = nullptr;
    shared_->queue.clear();
  }
  uv_timer_stop(&shared_->soon);
  uv_prepare_stop(&shared_->prepare);
  uv_check_stop(&shared_->check);
  auto closed = [](uv_handle_t* h) {
    auto* s = static_cast<Shared*>(h->data);
    if (--s->open_handles == 0) delete s;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&shared_->async), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&shared_->soon), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&shared_->prepare), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&shared_->check), closed);
}

void UvLoop::SetRef(bool ref) {
  auto* h = reinterpret_cast<uv_handle_t*>(&shared_->async);
  if (ref) uv_ref(h); else uv_unref(h);
}

std::unique_ptr<EventLoop::Watch> UvLoop::WatchFd(int fd, ReadyFn fn) {
  return std::make_unique<UvWatch>(loop_, this, fd, std::move(fn));
}

std::unique_ptr<EventLoop::LoopTimer> UvLoop::NewTimer() { return std::make_unique<UvTimer>(loop_, this); }

void UvLoop::Soon(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (!shared_->owner) return;
    shared_->queue.push_back(std::move(fn));
  }
  if (!InLoopThread()) {
    uv_async_send(&shared_->async);
    return;
  }
  if (shared_->soon_armed) return;
  shared_->soon_armed = true;
  uv_timer_start(&shared_->soon, [](uv_timer_t* t) {
    auto* s = static_cast<Shared*>(t->data);
    s->soon_armed = false;
    if (s->owner) s->owner->RunSoon();
  }, 0, 0);
}

void UvLoop::RunSoon() {
  MarkBusy();
  std::vector<std::function<void()>> run;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    run.swap(shared_->queue);
  }
  // A callback may shut the runtime down (and destroy this loop object):
  // the rest of the batch is dropped then. `s` lives until the handles'
  // close callbacks, which run later.
  Shared* s = shared_;
  for (auto& fn : run) {
    if (!s->owner) break;
    fn();
  }
}

}  // namespace rayts::bindings
