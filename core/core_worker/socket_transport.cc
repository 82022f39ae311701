#include "core/core_worker/socket_transport.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <future>

namespace rayts {

class SocketTransport::SocketLink final : public Link {
 public:
  SocketLink(std::shared_ptr<Connection> c, SocketTransport& t) : conn_(std::move(c)), t_(t) {}
  // A link nobody holds any more is closed (on the io thread).
  ~SocketLink() override { Close(); }
  void Send(Frame frame) override { t_.outbox_.Queue(conn_, std::move(frame)); }
  void SendNow(Frame frame) override { conn_->Send(std::move(frame)); }
  // Posted: the close handler takes the core lock, which the caller holds.
  void Close() override {
    if (conn_->closed()) return;
    asio::post(t_.io_, [c = conn_] { c->Close(); });
  }
  bool closed() const override { return conn_->closed(); }
  const std::shared_ptr<Connection>& conn() const { return conn_; }

 private:
  std::shared_ptr<Connection> conn_;
  SocketTransport& t_;
};

class SocketTransport::SocketTimer final : public Timer {
 public:
  explicit SocketTimer(SocketTransport& t) : t_(t), timer_(t.io_) {}
  void Arm(Clock::duration delay, std::function<void()> fn) override {
    timer_.expires_after(delay);
    WorkerContext* ctx = &t_.ctx_;
    timer_.async_wait([ctx, fn = std::move(fn)](const asio::error_code& ec) {
      if (ec) return;  // re-armed, cancelled or destroyed
      CoreGuard lock(*ctx);
      fn();
    });
  }
  void Cancel() override { timer_.cancel(); }

 private:
  SocketTransport& t_;
  asio::steady_timer timer_;
};

SocketTransport::SocketTransport(WorkerContext& ctx) : ctx_(ctx) {}

SocketTransport::~SocketTransport() { Stop(); }

Status SocketTransport::Listen(const std::string& path, InboundHandlers handlers) {
  ::unlink(path.c_str());
  listen_path_ = path;
  inbound_ = std::move(handlers);
  acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(io_);
  asio::error_code ec;
  acceptor_->open(asio::local::stream_protocol(), ec);
  if (!ec) acceptor_->bind(asio::local::stream_protocol::endpoint(path), ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("cannot listen on " + path + ": " + ec.message());
  accept_timer_ = std::make_unique<asio::steady_timer>(io_);
  return Status::OK();
}

Status SocketTransport::ConnectControl(const std::string& node_socket, Frame hello, MessageHandler on_control) {
  auto sock = ConnectUnix(io_, node_socket);
  if (!sock.ok()) return sock.status();
  control_ = std::make_shared<Connection>(std::move(sock).value());
  WorkerContext* ctx = &ctx_;
  control_->Start(
      [ctx, on_control = std::move(on_control)](const proto::Envelope& e) {
        CoreGuard lock(*ctx);
        on_control(e);
      },
      [ctx](const Status&) {
        // The node server is gone: a worker must not outlive it.
        if (!ctx->is_driver() && !ctx->shutting_down) ::_exit(0);
      });
  control_->Send(std::move(hello));
  return Status::OK();
}

void SocketTransport::Run() {
  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(io_.get_executor());
  if (acceptor_) Accept();
  io_thread_ = std::thread([this] {
    outbox_.SetIoThread(std::this_thread::get_id());
    io_.run();
  });
}

void SocketTransport::Stop() {
  if (!io_thread_.joinable()) return;
  // Close every connection on the io thread, and wait for that (bounded)
  // before stopping it: stopping at once could drop the posted closes.
  auto closed = std::make_shared<std::promise<void>>();
  auto done = closed->get_future();
  asio::post(io_, [this, closed] {
    if (accept_timer_) accept_timer_->cancel();
    asio::error_code ec;
    if (acceptor_) acceptor_->close(ec);
    if (control_) control_->Close();
    std::vector<std::shared_ptr<Connection>> conns;
    {
      MutexLock lock(&made_mu_);
      for (auto& w : made_)
        if (auto c = w.lock()) conns.push_back(c);
    }
    for (auto& l : accepted_) conns.push_back(static_cast<SocketLink&>(*l).conn());
    for (auto& c : conns) c->Close();
    closed->set_value();
  });
  if (std::this_thread::get_id() != io_thread_.get_id() &&
      done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    std::fprintf(stderr, "rayts: the io thread did not close its connections within 5 s; stopping it anyway\n");
  }
  work_.reset();
  io_.stop();
  io_thread_.join();
  accepted_.clear();
  if (!listen_path_.empty()) ::unlink(listen_path_.c_str());
}

void SocketTransport::Accept() {
  acceptor_->async_accept([this](const asio::error_code& ec, UnixSocket sock) {
    if (ctx_.shutting_down || ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
    if (ec) {
      // Out of fds (EMFILE, ENFILE), a connection reset before it was
      // accepted (ECONNABORTED) and the like: the listener must live on.
      // Back off (10 ms doubling to 1 s) so a full fd table does not spin.
      accept_backoff_ms_ = std::min(1000, std::max(10, accept_backoff_ms_ * 2));
      if (accept_errors_++ % 100 == 0) {
        std::fprintf(stderr, "rayts: accept on %s failed: %s (retrying in %d ms; %llu errors so far)\n",
                     listen_path_.c_str(), ec.message().c_str(), accept_backoff_ms_,
                     static_cast<unsigned long long>(accept_errors_));
      }
      accept_timer_->expires_after(std::chrono::milliseconds(accept_backoff_ms_));
      accept_timer_->async_wait([this](const asio::error_code& tec) {
        if (!tec && !ctx_.shutting_down) Accept();
      });
      return;
    }
    accept_backoff_ms_ = 0;
    auto c = std::make_shared<Connection>(std::move(sock));
    auto link = std::make_shared<SocketLink>(c, *this);
    accepted_.insert(link);
    std::weak_ptr<SocketLink> weak = link;
    {
      CoreGuard lock(ctx_);
      if (inbound_.on_accept) inbound_.on_accept(link);
    }
    c->Start(
        [this, weak](const proto::Envelope& e) {
          auto l = weak.lock();
          if (!l) return;
          CoreGuard lock(ctx_);
          inbound_.on_message(l, e);
        },
        [this, weak](const Status&) {
          auto l = weak.lock();
          if (!l) return;
          {
            CoreGuard lock(ctx_);
            inbound_.on_closed(l);
          }
          accepted_.erase(l);
        });
    Accept();
  });
}

void SocketTransport::SendToNode(Frame frame) { outbox_.Queue(control_, std::move(frame)); }

std::shared_ptr<Link> SocketTransport::Connect(const std::string& address, MessageHandler on_message,
                                               CloseHandler on_closed) {
  auto sock = ConnectUnix(io_, address);
  if (!sock.ok()) return nullptr;
  auto c = std::make_shared<Connection>(std::move(sock).value());
  {
    MutexLock lock(&made_mu_);
    // Forget closed ones now and then, so the list stays as long as the
    // connections that are open.
    if (made_.size() >= 64 && (made_.size() & (made_.size() - 1)) == 0) {
      std::erase_if(made_, [](const std::weak_ptr<Connection>& w) { return w.expired(); });
    }
    made_.push_back(c);
  }
  WorkerContext* ctx = &ctx_;
  c->Start(
      [ctx, on_message = std::move(on_message)](const proto::Envelope& e) {
        CoreGuard lock(*ctx);
        on_message(e);
      },
      [ctx, on_closed = std::move(on_closed)](const Status& s) {
        CoreGuard lock(*ctx);
        on_closed(s);
      });
  return std::make_shared<SocketLink>(std::move(c), *this);
}

std::unique_ptr<Timer> SocketTransport::NewTimer() { return std::make_unique<SocketTimer>(*this); }

void SocketTransport::Post(std::function<void()> fn) {
  WorkerContext* ctx = &ctx_;
  asio::post(io_, [ctx, fn = std::move(fn)] {
    CoreGuard lock(*ctx);
    fn();
  });
}

void SocketTransport::Exit(int code) { ::_exit(code); }

}  // namespace rayts
