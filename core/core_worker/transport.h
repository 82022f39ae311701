// Transport: what the CoreWorker's components need from the outside world:
// the node's control connection, connections to other processes (Link),
// timers and a clock, a way to run something after the current handler, and
// process exit.
//
// Role: the seam between the components (submitters, receiver, ownership)
// and sockets. SocketTransport (socket_transport.h) is the real one: unix
// sockets on an asio io thread, frames queued in the Outbox. Tests use a
// fake (test/core/fake_transport.h) that records frames, fires timers when
// its clock is advanced and delivers replies when the test says so.
// Thread safety: every method is called with the core lock held (see
// worker_context.h), from the host thread or the io thread. Handlers given to
// Connect, Timer::Arm and Post run later with the core lock held, never
// inside the call that registered them.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/common/status.h"
#include "core/protocol/frame_codec.h"

namespace rayts {

using Frame = flatbuffers::DetachedBuffer;
using Clock = std::chrono::steady_clock;

// One open connection to another process, as the components see it.
class Link {
 public:
  virtual ~Link() = default;
  // Queued behind earlier frames to any peer; written at the next flush.
  virtual void Send(Frame frame) = 0;
  // Written at once when nothing is queued on this link (notices sent just
  // before the process exits).
  virtual void SendNow(Frame frame) = 0;
  // Closes it; its close handler runs later (once).
  virtual void Close() = 0;
  virtual bool closed() const = 0;
  // A TCP connection: the peer is a process of another node.
  virtual bool remote() const { return false; }
};

using MessageHandler = std::function<void(const proto::Envelope&)>;
using CloseHandler = std::function<void(const Status&)>;

class Timer {
 public:
  virtual ~Timer() = default;
  // Runs `fn` after `delay` unless the timer is re-armed, cancelled or
  // destroyed first.
  virtual void Arm(Clock::duration delay, std::function<void()> fn) = 0;
  virtual void Cancel() = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // To the node server, on the control connection, in order.
  virtual void SendToNode(Frame frame) = 0;
  // A connection to the process listening at `address` (peer_address.h:
  // over TCP when it is on another node); nullptr when it cannot be reached
  // (it has exited). A TCP connect completes later: its failure closes the link.
  virtual std::shared_ptr<Link> Connect(const std::string& address, MessageHandler on_message,
                                        CloseHandler on_closed) = 0;
  virtual std::unique_ptr<Timer> NewTimer() = 0;
  virtual Clock::time_point Now() = 0;
  // Runs `fn` after the current handler returns.
  virtual void Post(std::function<void()> fn) = 0;
  // Writes every queued frame now (the process is about to exit).
  virtual void Flush() = 0;
  // Ends the process with `code` (the real one never returns).
  virtual void Exit(int code) = 0;
};

}  // namespace rayts
