// LoopTransport: setup, loop turns, reading, writing and closing. Accepting
// and connecting are in loop_transport_accept.cc. See loop_transport.h.
#include "core/core_worker/loop_transport_internal.h"

namespace rayts {

using namespace loop_transport_internal;  // NOLINT: the transport's own helpers

LoopTransport::LoopTransport(WorkerContext& ctx, EventLoop& loop) : ctx_(ctx), loop_(loop) {}

LoopTransport::~LoopTransport() { Stop(); }

// ------------------------------------------------------------- setup --

Status LoopTransport::Listen(const std::string& path, InboundHandlers handlers) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return Status::IOError("cannot listen on " + path + ": path too long");
  ::unlink(path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoStatus(("cannot listen on " + path).c_str());
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0 || ::listen(fd, SOMAXCONN) < 0) {
    Status s = ErrnoStatus(("cannot listen on " + path).c_str());
    ::close(fd);
    return s;
  }
  listen_.fd = fd;
  listen_.name = path;
  inbound_ = std::move(handlers);
  StartListener(listen_);
  return Status::OK();
}

StatusOr<int> LoopTransport::ListenTcp(const std::string& host, int port, PeerLimits limits) {
  int bound = 0;
  auto fd = ListenTcpFd(host, port, &bound);
  if (!fd.ok()) return fd.status();
  limits_ = limits;
  tcp_listen_.fd = *fd;
  tcp_listen_.tcp = true;
  tcp_listen_.name = TcpAddress(host, bound);
  StartListener(tcp_listen_);
  return bound;
}

void LoopTransport::StartListener(Listener& l) {
  auto start = [this, &l] {
    if (stopped_ || l.fd < 0) return;
    l.watch = loop_.WatchFd(l.fd, [this, &l](bool, bool) { OnAcceptReady(l); });
    l.backoff = loop_.NewTimer();
    if (l.tcp && !auth_timer_) auth_timer_ = loop_.NewTimer();
  };
  if (loop_.InLoopThread()) start(); else loop_.Soon(start);
}

Status LoopTransport::ConnectControl(const std::string& node_socket, Frame hello, MessageHandler on_control) {
  int fd = ConnectUnixFd(node_socket);
  if (fd < 0) return ErrnoStatus(("cannot connect to " + node_socket).c_str());
  CoreGuard lock(ctx_);
  auto c = std::make_shared<Conn>(*this, fd, Conn::Kind::kControl);
  c->on_message = std::move(on_control);
  WorkerContext* ctx = &ctx_;
  c->on_close = [ctx](const Status&) {
    // The node server is gone: a worker must not outlive it.
    if (!ctx->is_driver() && !ctx->shutting_down) ::_exit(0);
  };
  control_ = c;
  StartWatch(c);
  QueueLocked(c, std::move(hello));
  FlushConnLocked(c);
  return Status::OK();
}

void LoopTransport::StartWatch(const std::shared_ptr<Conn>& c) NO_THREAD_SAFETY_ANALYSIS {
  std::weak_ptr<Conn> w = c;
  auto make = [this, w](const std::shared_ptr<Conn>& conn) {
    conn->watch = loop_.WatchFd(conn->fd, [this, w](bool r, bool wr) { OnReady(w, r, wr); });
  };
  if (loop_.InLoopThread()) {
    make(c);
    return;
  }
  // Another thread (a host without Node calls from its own thread): make
  // the watch on the loop thread, unless the connection closed meanwhile.
  loop_.Soon([this, w, make] {
    CoreGuard lock(ctx_);
    auto conn = w.lock();
    if (conn && !conn->is_closed && conn->fd >= 0 && !stopped_) make(conn);
  });
}

// -------------------------------------------------------------- turns --

void LoopTransport::BeginTurnLocked() {
  turn_depth_++;
  if (loop_.InLoopThread()) loop_turn_ = true;
}

void LoopTransport::EndTurnLocked() {
  for (int pass = 0; pass < kPostPasses && !posts_.empty(); pass++) {
    std::vector<std::function<void()>> run;
    run.swap(posts_);
    for (auto& fn : run) fn();
  }
  FlushAllLocked();
  turn_depth_--;
  if (!posts_.empty() && !posted_turn_scheduled_ && !stopped_) {
    posted_turn_scheduled_ = true;
    loop_.Soon([this] { RunPostedTurn(); });
  }
}

void LoopTransport::AfterTurn() {
  if (!loop_.InLoopThread()) return;
  // Cleared first: what the hook's JS queues is not this turn's to deliver.
  loop_turn_ = false;
  if (turn_end_ && !stopped_) turn_end_();
}

void LoopTransport::RunPostedTurn() {
  {
    CoreGuard lock(ctx_);
    posted_turn_scheduled_ = false;
    if (stopped_) return;
    BeginTurnLocked();
    EndTurnLocked();
  }
  AfterTurn();
}

void LoopTransport::Post(std::function<void()> fn) {
  posts_.push_back(std::move(fn));
  if (turn_depth_ == 0 && !posted_turn_scheduled_ && !stopped_) {
    posted_turn_scheduled_ = true;
    loop_.Soon([this] { RunPostedTurn(); });
  }
}

void LoopTransport::OnTimer(const std::shared_ptr<TimerState>& s, uint64_t gen) {
  {
    CoreGuard lock(ctx_);
    if (stopped_ || s->gen != gen || !s->fn) return;
    BeginTurnLocked();
    auto fn = s->fn;  // the handler may re-arm (replacing s->fn)
    fn();
    EndTurnLocked();
  }
  AfterTurn();
}

void LoopTransport::OnReady(const std::weak_ptr<Conn>& w, bool readable, bool writable) {
  {
    CoreGuard lock(ctx_);
    auto c = w.lock();
    if (!c || c->is_closed || stopped_) return;
    BeginTurnLocked();
    if (writable) FlushConnLocked(c);
    if (readable && !c->is_closed) ReadLocked(c);
    EndTurnLocked();
  }
  AfterTurn();
}

void LoopTransport::ServiceNow() {
  CoreGuard lock(ctx_);
  if (stopped_) return;
  BeginTurnLocked();
  // New connections too (a `rayts memory` query, a borrower): accepted here,
  // watched by the loop once it runs again.
  for (;;) {
    int fd = listen_.fd < 0 ? -1 : ::accept4(listen_.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    AcceptedLocked(fd);
  }
  std::vector<std::shared_ptr<Conn>> conns;
  if (control_) conns.push_back(control_);
  for (auto& c : accepted_) conns.push_back(c);
  for (auto& w : made_)
    if (auto c = w.lock()) conns.push_back(c);
  std::vector<pollfd> fds;
  std::vector<std::shared_ptr<Conn>> open;
  for (auto& c : conns) {
    if (c->is_closed || c->fd < 0) continue;
    fds.push_back(pollfd{c->fd, POLLIN, 0});
    open.push_back(c);
  }
  if (!fds.empty() && ::poll(fds.data(), fds.size(), 0) > 0) {
    for (size_t i = 0; i < fds.size(); i++) {
      if (fds[i].revents && !open[i]->is_closed) ReadLocked(open[i]);
    }
  }
  EndTurnLocked();
}

// ----------------------------------------------------------- reading --

void LoopTransport::ReadLocked(const std::shared_ptr<Conn>& c) {
  size_t budget = kReadBudget;
  while (!c->is_closed && budget > 0) {
    size_t avail;
    uint8_t* dst = c->decoder.PrepareWrite(kReadChunk, &avail);
    ssize_t n = ::recv(c->fd, dst, avail, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      CloseLocked(c, ErrnoStatus("read failed"));
      return;
    }
    if (n == 0) {
      CloseLocked(c, Status::Disconnected("peer closed the connection"));
      return;
    }
    c->decoder.CommitWrite(static_cast<size_t>(n));
    budget -= std::min(budget, static_cast<size_t>(n));
    while (!c->is_closed) {
      const proto::Envelope* env;
      Status s = c->decoder.Next(&env);
      if (!s.ok()) {
        CloseLocked(c, s);
        return;
      }
      if (!env) break;
      if (c->auth_pending) {
        if (!AuthenticateLocked(c, *env)) return;
        continue;
      }
      if (c->kind == Conn::Kind::kAccepted) {
        inbound_.on_message(c, *env);
      } else {
        c->on_message(*env);
      }
    }
    if (static_cast<size_t>(n) < avail) return;  // drained (the next read would say EAGAIN)
  }
  if (!c->is_closed && budget == 0) {
    // More may wait, and an edge-triggered loop would not report it again:
    // read on in a later turn, after the other connections.
    std::weak_ptr<Conn> w = c;
    loop_.Soon([this, w] { OnReady(w, true, false); });
  }
}

// ----------------------------------------------------------- writing --

void LoopTransport::QueueLocked(const std::shared_ptr<Conn>& c, Frame frame) {
  if (c->is_closed) return;
  if ((c->out_bytes += frame.size()) > max_queued_bytes_) {  // the peer does not read: it has failed
    std::fprintf(stderr, "rayts: closing a connection whose peer does not read (%zu bytes queued)\n", c->out_bytes);
    return CloseLocked(c, Status::IOError("the peer does not read: " + std::to_string(c->out_bytes) + " bytes queued"));
  }
  c->out.push_back(std::move(frame));
  if (!c->dirty) {
    c->dirty = true;
    dirty_.push_back(c);
  }
  if (c->out.size() >= kFlushEvery && !c->want_write) {
    // Enough for one write: out now, so the peer starts on it while this
    // side queues the rest (a driver's burst of submits, a worker's replies).
    FlushConnLocked(c);
  }
  if (turn_depth_ == 0) host_flush_requested_.store(true, std::memory_order_relaxed);
}

void LoopTransport::FlushConnLocked(const std::shared_ptr<Conn>& c) {
  while (!c->out.empty() && !c->is_closed) {
    iovec iov[kMaxIov];
    size_t n = std::min(c->out.size(), kMaxIov);
    for (size_t i = 0; i < n; i++) {
      size_t skip = i == 0 ? c->out_skip : 0;
      iov[i] = iovec{c->out[i].data() + skip, c->out[i].size() - skip};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    ssize_t w = ::sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // The peer reads slowly: finish when the socket drains.
        if (!c->want_write) {
          c->want_write = true;
          std::weak_ptr<Conn> wk = c;
          auto want = [wk](bool on) {
            if (auto conn = wk.lock(); conn && conn->watch) conn->watch->Want(true, on);
          };
          if (loop_.InLoopThread()) want(true); else loop_.Soon([this, want] { CoreGuard lock(ctx_); want(true); });
        }
        return;
      }
      CloseLocked(c, ErrnoStatus("write failed"));
      return;
    }
    c->out_bytes -= static_cast<size_t>(w);
    size_t written = static_cast<size_t>(w) + c->out_skip;
    c->out_skip = 0;
    while (!c->out.empty() && written >= c->out.front().size()) {
      written -= c->out.front().size();
      c->out.pop_front();
    }
    c->out_skip = written;
  }
  if (c->want_write && c->out.empty() && c->watch && loop_.InLoopThread()) {
    c->want_write = false;
    c->watch->Want(true, false);
  }
}

void LoopTransport::FlushAllLocked() {
  if (dirty_.empty()) return;
  std::vector<std::shared_ptr<Conn>> dirty;
  dirty.swap(dirty_);
  for (auto& c : dirty) {
    FlushConnLocked(c);
    // Still unwritten (the socket is full): kept, so the rest goes out on
    // the writable event even if nobody else holds the connection.
    if (!c->is_closed && !c->out.empty()) {
      dirty_.push_back(c);
    } else {
      c->dirty = false;
    }
  }
}

void LoopTransport::Flush() {
  FlushAllLocked();
  // The process is about to exit: give a full socket a bounded moment.
  for (int round = 0; round < 20 && !dirty_.empty(); round++) {
    std::vector<pollfd> fds;
    for (auto& c : dirty_)
      if (c->fd >= 0) fds.push_back(pollfd{c->fd, POLLOUT, 0});
    if (fds.empty()) break;
    ::poll(fds.data(), fds.size(), 25);
    FlushAllLocked();
  }
}

void LoopTransport::FlushHost() {
  CoreGuard lock(ctx_);
  FlushAllLocked();
}

void LoopTransport::SendToNode(Frame frame) {
  if (control_) QueueLocked(control_, std::move(frame));
}

// ----------------------------------------------------------- closing --

void LoopTransport::ReleaseFd(Conn& c) {
  if (c.fd < 0) return;
  int fd = c.fd;
  c.fd = -1;
  if (stopped_ || loop_.InLoopThread()) {
    c.watch.reset();
    ::close(fd);
    return;
  }
  // The watch goes on the loop thread, and the fd after it (so the number
  // is not reused while the loop still watches it).
  loop_.Soon([w = std::move(c.watch), fd]() mutable {
    w.reset();
    ::close(fd);
  });
}

void LoopTransport::CloseLocked(const std::shared_ptr<Conn>& c, const Status& why) {
  if (c->is_closed) return;
  c->is_closed = true;
  c->out.clear();
  c->out_bytes = 0;
  ReleaseFd(*c);
  if (!c->peer_ip.empty()) {
    auto it = tcp_per_ip_.find(c->peer_ip);
    if (it != tcp_per_ip_.end() && --it->second <= 0) tcp_per_ip_.erase(it);
  }
  // The close handler runs after the current handler, like the others.
  switch (c->kind) {
    case Conn::Kind::kAccepted:
      Post([this, c] {
        ctx_.AssertHeld();  // posts run inside a turn
        inbound_.on_closed(c);
        accepted_.erase(c);
      });
      break;
    case Conn::Kind::kMade:
    case Conn::Kind::kControl:
      if (c->on_close) {
        Post([c, why] {
          auto cb = std::move(c->on_close);
          c->on_close = nullptr;
          if (cb) cb(why);
        });
      }
      break;
  }
}

void LoopTransport::Stop() NO_THREAD_SAFETY_ANALYSIS {
  if (stopped_.exchange(true)) return;
  for (Listener* l : {&listen_, &tcp_listen_}) {
    l->watch.reset();
    l->backoff.reset();
    if (l->fd >= 0) {
      ::close(l->fd);
      l->fd = -1;
      if (!l->tcp) ::unlink(l->name.c_str());
    }
  }
  auth_timer_.reset();
  CoreGuard lock(ctx_);
  std::vector<std::shared_ptr<Conn>> conns;
  if (control_) conns.push_back(control_);
  for (auto& c : accepted_) conns.push_back(c);
  for (auto& w : made_)
    if (auto c = w.lock()) conns.push_back(c);
  for (auto& c : conns) {
    c->is_closed = true;
    c->out.clear();
    ReleaseFd(*c);
  }
  control_.reset();
  accepted_.clear();
  made_.clear();
  dirty_.clear();
  posts_.clear();
}

[[noreturn]] void LoopTransport::Exit(int code) { ::_exit(code); }

}  // namespace rayts
