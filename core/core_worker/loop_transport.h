// LoopTransport: the real Transport of a CoreWorker: unix sockets as plain
// non-blocking fds, driven by an EventLoop (event_loop.h).
//
// Role: listens on this process's socket (tasks pushed here, owners' and
// borrowers' requests) and, in cluster mode, on TCP at the node's IP too,
// holds the control connection to the node server,
// connects to other processes (leased workers, actors, owners), runs timers,
// and writes frames in batches (the frames queued to one connection go out
// in one sendmsg). Under Node the loop is the JS thread's own libuv loop: a
// frame is read, handled and its events handed to JS on one thread, with no
// wake-up of another thread in between.
// Turns: every loop callback (a readable fd, a timer, posted work) is one
// turn: it takes the core lock, runs the handlers, then the work Post()ed
// during them, then writes every frame they queued; then, with the lock
// released, the turn-end hook runs (the bindings deliver events to JS).
// Frames queued outside a turn (host calls) wait for FlushHost(), which the
// host owes once TakeHostFlushRequest() says so.
// Stalls: a host that keeps the loop thread busy (a long synchronous JS
// task) would leave its sockets unread. ServiceNow(), called from another
// thread when the host sees the loop stalled, reads and handles what is
// readable then (owners keep answering borrowers; a force-cancel or a kill
// still ends the process).
// TCP (cluster mode, ListenTcp): processes of other nodes reach this one
// over TCP and this one reaches them (Connect picks TCP for an address of
// another node, see peer_address.h); the same frames and write path as on
// unix sockets, with TCP_NODELAY. Every TCP connection opens with AuthHello
// and the cluster token (peer_auth.h): a made connection queues it first,
// an accepted one is held to a small first frame until it arrives, is
// closed (the reason logged) for a wrong token or another first frame, or
// after the handshake timeout, and is refused past
// max_connections_per_peer from one IP. TCP connections are accepted by
// the loop only (ServiceNow accepts on the unix socket).
// Bounded queues: a connection whose unwritten frames pass
// max_queued_bytes (its peer does not read) is closed as failed, with the
// reason logged and given to its close handler.
// Ownership: owned by its host (the CoreWorker or the bindings); it keeps
// every accepted connection until it closes and closes every connection at
// Stop(). A Link nobody holds any more is closed.
// Thread safety: the Transport methods and the Link methods are called with
// the core lock held, from any thread; every fd watch and loop timer is
// touched on the loop thread only (work from other threads goes through
// EventLoop::Soon). Listen/ConnectControl before the loop runs; Stop on the
// loop thread or once it no longer runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/core_worker/event_loop.h"
#include "core/core_worker/transport.h"
#include "core/core_worker/worker_context.h"
#include "core/protocol/peer_auth.h"

namespace rayts {

// Connections accepted on this process's socket.
struct InboundHandlers {
  std::function<void(const std::shared_ptr<Link>&)> on_accept;  // core lock held
  std::function<void(const std::shared_ptr<Link>&, const proto::Envelope&)> on_message;
  std::function<void(const std::shared_ptr<Link>&)> on_closed;
};

class LoopTransport final : public Transport {
 public:
  LoopTransport(WorkerContext& ctx, EventLoop& loop);
  ~LoopTransport() override;
  static constexpr size_t kMaxQueuedBytes = size_t{256} << 20;  // per connection
  void set_max_queued_bytes(size_t n) { max_queued_bytes_ = n; }  // before the loop runs (tests)

  Status Listen(const std::string& path, InboundHandlers handlers);
  // The control connection; `hello` is its first frame. A worker (not a
  // driver) exits when the node server closes it.
  Status ConnectControl(const std::string& node_socket, Frame hello, MessageHandler on_control);
  // Cluster mode: listens on TCP at host:port (0: any free port) too;
  // returns the port. Before the loop runs.
  StatusOr<int> ListenTcp(const std::string& host, int port, PeerLimits limits = {});
  // This process's address (peer_address.h): peers of its node are reached
  // over unix sockets, the others over TCP. Before the loop runs.
  void SetSelfAddress(std::string address) { self_address_ = std::move(address); }
  // The cluster token presented on made TCP connections and required of
  // accepted ones (none accepted while it is empty). Before the loop runs.
  void SetAuthToken(std::string token) { token_ = std::move(token); }
  void Stop();

  // Writes the frames host calls queued (takes the core lock).
  void FlushHost();
  bool TakeHostFlushRequest() { return host_flush_requested_.exchange(false, std::memory_order_relaxed); }
  // Runs after every turn on the loop thread, with the core lock released.
  void SetTurnEndHook(std::function<void()> fn) { turn_end_ = std::move(fn); }
  // True from the start of a loop-thread turn until its turn-end hook runs.
  bool in_loop_turn() const { return loop_turn_; }
  // From a thread other than the loop's: reads and handles what is readable
  // now on every connection (see "Stalls").
  void ServiceNow();

  // The Transport methods: the core lock is held (see transport.h).
  void SendToNode(Frame frame) override REQUIRES(core_lock);
  std::shared_ptr<Link> Connect(const std::string& address, MessageHandler on_message, CloseHandler on_closed) override
      REQUIRES(core_lock);
  std::unique_ptr<Timer> NewTimer() override;
  Clock::time_point Now() override { return Clock::now(); }
  void Post(std::function<void()> fn) override REQUIRES(core_lock);
  void Flush() override REQUIRES(core_lock);
  [[noreturn]] void Exit(int code) override;

 private:
  class Conn;
  class LoopTimerImpl;
  struct TimerState;
  // A listening socket: the unix one, and in cluster mode the TCP one.
  struct Listener {
    int fd = -1;
    bool tcp = false;
    std::string name;  // path, or host:port
    std::unique_ptr<EventLoop::Watch> watch;        // loop thread
    std::unique_ptr<EventLoop::LoopTimer> backoff;  // loop thread
    int backoff_ms = 0;
    uint64_t errors = 0;
  };

  void StartWatch(const std::shared_ptr<Conn>& c);  // any thread: on the loop thread via Soon
  void OnReady(const std::weak_ptr<Conn>& w, bool readable, bool writable);
  void ReadLocked(const std::shared_ptr<Conn>& c) REQUIRES(core_lock);
  void QueueLocked(const std::shared_ptr<Conn>& c, Frame frame) REQUIRES(core_lock);
  void FlushConnLocked(const std::shared_ptr<Conn>& c) REQUIRES(core_lock);
  void FlushAllLocked() REQUIRES(core_lock);
  void CloseLocked(const std::shared_ptr<Conn>& c, const Status& why) REQUIRES(core_lock);
  void ReleaseFd(Conn& c);  // stops the watch and closes the fd (on the loop thread)
  void StartListener(Listener& l);
  void OnAcceptReady(Listener& l);
  std::shared_ptr<Conn> AcceptedLocked(int fd, bool tcp = false) REQUIRES(core_lock);
  // An accepted TCP connection: counted against its IP, held to AuthHello.
  void AcceptedTcpLocked(int fd, const std::string& ip) REQUIRES(core_lock);
  // The first frame of an accepted TCP connection; false when it closed it.
  bool AuthenticateLocked(const std::shared_ptr<Conn>& c, const proto::Envelope& env) REQUIRES(core_lock);
  void ArmAuthSweep();  // loop thread
  void SweepAuthLocked() REQUIRES(core_lock);
  void BeginTurnLocked() REQUIRES(core_lock);
  void EndTurnLocked() REQUIRES(core_lock);
  void AfterTurn();
  void RunPostedTurn();
  void OnTimer(const std::shared_ptr<TimerState>& s, uint64_t gen);

  WorkerContext& ctx_;
  EventLoop& loop_;
  std::function<void()> turn_end_;
  std::atomic<bool> host_flush_requested_{false};
  bool loop_turn_ = false;  // loop thread only
  size_t max_queued_bytes_ = kMaxQueuedBytes;
  std::atomic<bool> stopped_{false};

  Listener listen_;      // the unix socket
  Listener tcp_listen_;  // cluster mode
  InboundHandlers inbound_;
  std::string self_address_;
  std::string token_;
  PeerLimits limits_;
  std::unique_ptr<EventLoop::LoopTimer> auth_timer_;  // loop thread: closes connections that did not authenticate
  bool auth_timer_armed_ = false;                     // loop thread

  int turn_depth_ GUARDED_BY(core_lock) = 0;
  std::vector<std::function<void()>> posts_ GUARDED_BY(core_lock);
  bool posted_turn_scheduled_ GUARDED_BY(core_lock) = false;
  std::vector<std::shared_ptr<Conn>> dirty_ GUARDED_BY(core_lock);  // connections with frames to write
  std::shared_ptr<Conn> control_ GUARDED_BY(core_lock);
  std::unordered_set<std::shared_ptr<Conn>> accepted_ GUARDED_BY(core_lock);  // kept until they close
  std::vector<std::weak_ptr<Conn>> made_ GUARDED_BY(core_lock);              // Connect()ed, closed at Stop
  std::unordered_map<std::string, int> tcp_per_ip_ GUARDED_BY(core_lock);     // open accepted TCP connections
  std::vector<std::pair<std::weak_ptr<Conn>, Clock::time_point>> awaiting_auth_ GUARDED_BY(core_lock);
};

}  // namespace rayts
