// SocketTransport: the real Transport of a CoreWorker: unix sockets on one
// asio io thread.
//
// Role: listens on this process's socket (tasks pushed here, owners' and
// borrowers' requests), holds the control connection to the node server,
// connects to other processes (leased workers, actors, owners), runs timers,
// and writes frames through the Outbox. Every handler it runs for the
// components (messages, closes, timers, posts) takes the core lock first.
// Ownership: owned by the CoreWorker; it keeps every accepted connection
// until it closes and closes every connection it made at Stop().
// Thread safety: the Transport methods are called with the core lock held,
// from any thread; Listen/ConnectControl/Run/Stop by the CoreWorker's
// lifecycle (one thread, before/after the io thread runs).
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/core_worker/outbox.h"
#include "core/core_worker/transport.h"
#include "core/core_worker/worker_context.h"
#include "core/protocol/connection.h"

namespace rayts {

// Connections accepted on this process's socket.
struct InboundHandlers {
  std::function<void(const std::shared_ptr<Link>&)> on_accept;  // core lock held
  std::function<void(const std::shared_ptr<Link>&, const proto::Envelope&)> on_message;
  std::function<void(const std::shared_ptr<Link>&)> on_closed;
};

class SocketTransport final : public Transport {
 public:
  explicit SocketTransport(WorkerContext& ctx);
  ~SocketTransport() override;

  Status Listen(const std::string& path, InboundHandlers handlers);
  // The control connection; `hello` is its first frame. A worker (not a
  // driver) exits when the node server closes it.
  Status ConnectControl(const std::string& node_socket, Frame hello, MessageHandler on_control);
  void Run();   // starts the io thread
  void Stop();  // closes every connection, joins the io thread
  Outbox& outbox() { return outbox_; }

  void SendToNode(Frame frame) override;
  std::shared_ptr<Link> Connect(const std::string& address, MessageHandler on_message, CloseHandler on_closed) override;
  std::unique_ptr<Timer> NewTimer() override;
  Clock::time_point Now() override { return Clock::now(); }
  void Post(std::function<void()> fn) override;
  void Flush() override { outbox_.Flush(); }
  [[noreturn]] void Exit(int code) override;

 private:
  class SocketLink;
  class SocketTimer;
  void Accept();

  WorkerContext& ctx_;
  asio::io_context io_;
  Outbox outbox_{io_};
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::unique_ptr<asio::local::stream_protocol::acceptor> acceptor_;
  std::unique_ptr<asio::steady_timer> accept_timer_;  // backoff after an accept error (io thread)
  int accept_backoff_ms_ = 0;
  uint64_t accept_errors_ = 0;
  std::string listen_path_;
  InboundHandlers inbound_;
  std::thread io_thread_;
  std::shared_ptr<Connection> control_;
  // io thread only: accepted links, kept until they close.
  std::unordered_set<std::shared_ptr<Link>> accepted_;
  Mutex made_mu_;
  std::vector<std::weak_ptr<Connection>> made_ GUARDED_BY(made_mu_);  // Connect()ed, closed at Stop
};

}  // namespace rayts
