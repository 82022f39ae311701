// LoopTransport: accepting (unix and TCP, with the auth handshake of TCP
// peers) and connecting. See loop_transport.h.
#include "core/core_worker/loop_transport_internal.h"

namespace rayts {

using namespace loop_transport_internal;  // NOLINT: the transport's own helpers

// --------------------------------------------------- accept and connect --

void LoopTransport::OnAcceptReady(Listener& l) {
  for (;;) {
    if (stopped_ || l.fd < 0) return;
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int fd = ::accept4(l.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // Out of fds (EMFILE, ENFILE) and the like: the listener must live on.
      // Back off (10 ms doubling to 1 s) so a full fd table does not spin.
      l.backoff_ms = std::min(1000, std::max(10, l.backoff_ms * 2));
      if (l.errors++ % 100 == 0) {
        std::fprintf(stderr, "rayts: accept on %s failed: %s (retrying in %d ms; %llu errors so far)\n",
                     l.name.c_str(), std::strerror(errno), l.backoff_ms, static_cast<unsigned long long>(l.errors));
      }
      l.watch->Want(false, false);
      l.backoff->Start(std::chrono::milliseconds(l.backoff_ms), [this, &l] {
        if (stopped_ || !l.watch) return;
        l.watch->Want(true, false);
        OnAcceptReady(l);
      });
      return;
    }
    l.backoff_ms = 0;
    {
      CoreGuard lock(ctx_);
      BeginTurnLocked();
      if (l.tcp) AcceptedTcpLocked(fd, PeerIpOf(ss));
      else AcceptedLocked(fd);
      EndTurnLocked();
    }
    if (l.tcp) ArmAuthSweep();
    AfterTurn();
  }
}

std::shared_ptr<LoopTransport::Conn> LoopTransport::AcceptedLocked(int fd, bool tcp) {
  auto c = std::make_shared<Conn>(*this, fd, Conn::Kind::kAccepted);
  c->tcp = tcp;
  accepted_.insert(c);
  StartWatch(c);
  if (inbound_.on_accept) inbound_.on_accept(c);
  return c;
}

void LoopTransport::AcceptedTcpLocked(int fd, const std::string& ip) {
  int& open = tcp_per_ip_[ip];
  if (open >= limits_.max_connections_per_peer || token_.empty()) {
    std::fprintf(stderr, "rayts: refused a TCP connection from %s on %s: %s\n", ip.c_str(), tcp_listen_.name.c_str(),
                 token_.empty() ? "no auth token is set here yet"
                                : ("it has " + std::to_string(open) + " open already (the limit per peer)").c_str());
    if (open == 0) tcp_per_ip_.erase(ip);
    ::close(fd);
    return;
  }
  open++;
  TuneTcp(fd);
  auto c = AcceptedLocked(fd, /*tcp=*/true);
  c->auth_pending = true;
  c->peer_ip = ip;
  c->decoder.set_max_frame_bytes(limits_.max_handshake_frame_bytes);
  awaiting_auth_.emplace_back(c, Clock::now() + std::chrono::milliseconds(limits_.handshake_timeout_ms));
}

bool LoopTransport::AuthenticateLocked(const std::shared_ptr<Conn>& c, const proto::Envelope& env) {
  Status s = CheckAuthHello(env, token_);
  if (!s.ok()) {
    std::fprintf(stderr, "rayts: closed the TCP connection from %s on %s: %s\n", c->peer_ip.c_str(),
                 tcp_listen_.name.c_str(), s.message().c_str());
    CloseLocked(c, s);
    return false;
  }
  c->auth_pending = false;
  c->decoder.set_max_frame_bytes(limits_.max_frame_bytes);
  return true;
}

void LoopTransport::ArmAuthSweep() NO_THREAD_SAFETY_ANALYSIS {
  if (auth_timer_armed_ || !auth_timer_ || stopped_) return;
  auth_timer_armed_ = true;
  auth_timer_->Start(std::chrono::milliseconds(std::max(10, limits_.handshake_timeout_ms / 4)), [this] {
    auth_timer_armed_ = false;
    bool more;
    {
      CoreGuard lock(ctx_);
      if (stopped_) return;
      BeginTurnLocked();
      SweepAuthLocked();
      more = !awaiting_auth_.empty();
      EndTurnLocked();
    }
    AfterTurn();
    if (more) ArmAuthSweep();
  });
}

void LoopTransport::SweepAuthLocked() {
  Clock::time_point now = Clock::now();
  std::vector<std::shared_ptr<Conn>> late;
  std::erase_if(awaiting_auth_, [&](const std::pair<std::weak_ptr<Conn>, Clock::time_point>& e) {
    auto c = e.first.lock();
    if (!c || c->is_closed || !c->auth_pending) return true;
    if (now < e.second) return false;
    late.push_back(c);
    return true;
  });
  for (auto& c : late) {
    std::fprintf(stderr, "rayts: closed the TCP connection from %s on %s: no auth frame within %d ms\n",
                 c->peer_ip.c_str(), tcp_listen_.name.c_str(), limits_.handshake_timeout_ms);
    CloseLocked(c, Status::Unauthenticated("no auth frame within the handshake timeout"));
  }
}

std::shared_ptr<Link> LoopTransport::Connect(const std::string& address, MessageHandler on_message,
                                             CloseHandler on_closed) {
  if (stopped_) return nullptr;
  PeerAddress to = ParsePeerAddress(address);
  bool tcp = to.has_tcp() && !SameNode(address, self_address_);
  if (tcp && token_.empty()) return nullptr;  // no cluster token: cannot authenticate
  int fd = tcp ? StartTcpConnect(to.host, to.port) : ConnectUnixFd(to.path);
  if (fd < 0) return nullptr;
  auto c = std::make_shared<Conn>(*this, fd, Conn::Kind::kMade);
  c->tcp = tcp;
  if (tcp) c->decoder.set_max_frame_bytes(limits_.max_frame_bytes);
  c->on_message = std::move(on_message);
  c->on_close = std::move(on_closed);
  // Forget closed ones now and then, so the list stays as long as the
  // connections that are open.
  if (made_.size() >= 64 && (made_.size() & (made_.size() - 1)) == 0) {
    std::erase_if(made_, [](const std::weak_ptr<Conn>& w) { return w.expired(); });
  }
  made_.push_back(c);
  StartWatch(c);
  // The token first; frames the caller sends queue behind it.
  if (tcp) QueueLocked(c, AuthHelloFrame(token_, proto::PeerRole::Worker));
  return c;
}

std::unique_ptr<Timer> LoopTransport::NewTimer() { return std::make_unique<LoopTimerImpl>(*this); }

}  // namespace rayts
