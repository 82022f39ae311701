// Internal to LoopTransport (loop_transport*.cc only): its connection and
// timer classes and the constants of its reads and writes, shared by the
// files the transport is split into.
// Thread safety: as loop_transport.h (Conn state under the core lock; a
// Conn's watch made and destroyed on the loop thread).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>

#include "core/core_worker/loop_transport.h"
#include "core/protocol/connection.h"
#include "core/protocol/peer_address.h"

namespace rayts {

namespace loop_transport_internal {
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kReadBudget = 1 << 20;  // bytes read from one connection per turn
constexpr size_t kMaxIov = 64;
constexpr size_t kFlushEvery = 32;  // frames queued to one connection before they are written
constexpr int kPostPasses = 16;  // work posted by posted work: this many rounds per turn

inline Status ErrnoStatus(const char* what) { return Status::IOError(std::string(what) + ": " + std::strerror(errno)); }

// A connected unix-socket fd (blocking connect: local sockets connect at
// once, or fail), then made non-blocking; -1 with errno set on failure.
inline int ConnectUnixFd(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  int r;
  do {
    r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (r < 0 && errno == EINTR);
  if (r < 0 || ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}
}  // namespace loop_transport_internal

// One connection. Its state is guarded by the core lock; `watch` is made
// and destroyed on the loop thread.
class LoopTransport::Conn final : public Link, public std::enable_shared_from_this<Conn> {
 public:
  enum class Kind { kMade, kAccepted, kControl };
  Conn(LoopTransport& t, int fd, Kind kind) : t(t), fd(fd), kind(kind) {}
  ~Conn() override {
    // Nobody holds it any more: close it (its close handler does not run).
    // After Stop every fd is closed already (and the transport may be gone).
    is_closed = true;
    if (fd >= 0) t.ReleaseFd(*this);
  }
  void Send(Frame frame) override NO_THREAD_SAFETY_ANALYSIS { t.QueueLocked(shared_from_this(), std::move(frame)); }
  // Written now, behind what is queued on this link (the process may exit
  // before the next flush).
  void SendNow(Frame frame) override NO_THREAD_SAFETY_ANALYSIS {
    auto self = shared_from_this();
    t.QueueLocked(self, std::move(frame));
    t.FlushConnLocked(self);
  }
  void Close() override NO_THREAD_SAFETY_ANALYSIS {
    t.CloseLocked(shared_from_this(), Status::Disconnected("closed locally"));
  }
  bool closed() const override { return is_closed; }
  bool remote() const override { return tcp; }

  LoopTransport& t;
  int fd;
  const Kind kind;
  bool tcp = false;           // a TCP connection (a process of another node)
  bool auth_pending = false;  // accepted TCP: its AuthHello has not come yet
  std::string peer_ip;        // accepted TCP: counted in tcp_per_ip_
  bool is_closed = false;
  bool dirty = false;
  bool want_write = false;
  FrameDecoder decoder;
  std::deque<Frame> out;
  size_t out_skip = 0;   // bytes of out[0] already written
  size_t out_bytes = 0;  // bytes in `out`, out_skip included
  MessageHandler on_message;
  CloseHandler on_close;
  std::shared_ptr<EventLoop::Watch> watch;
};

struct LoopTransport::TimerState {
  LoopTransport* t;
  uint64_t gen = 0;  // core lock: a fire of an older generation is stale
  std::function<void()> fn;
  std::unique_ptr<EventLoop::LoopTimer> timer;  // loop thread
};

class LoopTransport::LoopTimerImpl final : public Timer {
 public:
  explicit LoopTimerImpl(LoopTransport& t) : s_(std::make_shared<TimerState>()) { s_->t = &t; }
  ~LoopTimerImpl() override NO_THREAD_SAFETY_ANALYSIS {
    s_->gen++;
    s_->fn = nullptr;
    LoopTransport* t = s_->t;
    if (t->stopped_ || t->loop_.InLoopThread()) {
      s_->timer.reset();
    } else {
      t->loop_.Soon([s = s_] { s->timer.reset(); });
    }
  }
  void Arm(Clock::duration delay, std::function<void()> fn) override NO_THREAD_SAFETY_ANALYSIS {
    uint64_t gen = ++s_->gen;
    s_->fn = std::move(fn);
    LoopTransport* t = s_->t;
    if (t->stopped_) return;
    auto start = [s = s_, delay, gen] {
      if (!s->timer) s->timer = s->t->loop_.NewTimer();
      std::weak_ptr<TimerState> w = s;
      s->timer->Start(delay, [w, gen] {
        if (auto st = w.lock()) st->t->OnTimer(st, gen);
      });
    };
    if (t->loop_.InLoopThread()) start(); else t->loop_.Soon(start);
  }
  void Cancel() override NO_THREAD_SAFETY_ANALYSIS {
    s_->gen++;
    s_->fn = nullptr;
  }

 private:
  std::shared_ptr<TimerState> s_;
};

}  // namespace rayts
