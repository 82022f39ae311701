// Connection: one framed, bidirectional stream (a unix socket inside a node,
// TCP between nodes) on an asio io_context.
//
// Role: reads frames (FrameDecoder) and hands each verified Envelope to the
// message handler. Sending: Send()/SendBatch() write at once from the calling
// thread when nothing is queued (one non-blocking sendmsg for the whole
// batch, no hop to the io thread); otherwise, or for the unwritten rest, the
// frames queue and the io thread writes everything queued in one gathered
// write.
// Ownership: held by shared_ptr; the pending async operations keep it alive.
// Thread safety: Send, SendBatch, SendFromAnyThread and Close may be called
// from any thread (the write side is guarded by write_mu_); Start and the
// read side run on the io_context's thread. The close handler runs exactly
// once, on the io thread. current_frame() is valid only inside the message
// handler, for the frame being handled.
#pragma once

#include <sys/socket.h>

#include "core/common/asio.h"
#include <atomic>
#include <deque>
#include <mutex>
#include <functional>
#include <memory>
#include <vector>

#include "core/common/thread_annotations.h"
#include "core/protocol/frame_codec.h"

namespace rayts {

using UnixSocket = asio::local::stream_protocol::socket;
using TcpSocket = asio::ip::tcp::socket;
// Either of the above: a Connection takes any stream socket.
using StreamSocket = asio::generic::stream_protocol::socket;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using MessageHandler = std::function<void(const proto::Envelope&)>;
  using CloseHandler = std::function<void(const Status&)>;

  explicit Connection(StreamSocket socket);
  ~Connection();

  void Start(MessageHandler on_message, CloseHandler on_close);
  void Send(flatbuffers::DetachedBuffer frame);
  void SendBatch(std::vector<flatbuffers::DetachedBuffer>* frames) EXCLUDES(write_mu_);  // consumes *frames
  void SendFromAnyThread(flatbuffers::DetachedBuffer frame) { Send(std::move(frame)); }
  void Close();
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  StreamSocket& socket() { return socket_; }
  uint64_t id() const { return id_; }
  // Frames longer than this close the connection (default kMaxFrameBytes).
  // Io thread, or before Start.
  void SetMaxFrameBytes(uint32_t n) { decoder_.set_max_frame_bytes(n); }
  // The whole frame (length prefix included) of the envelope being handled.
  std::pair<const uint8_t*, size_t> current_frame() const { return decoder_.last_frame(); }

 private:
  void ReadMore();
  void WriteMore() EXCLUDES(write_mu_);  // io thread
  void Fail(const Status& s) EXCLUDES(write_mu_);  // io thread

  StreamSocket socket_;
  FrameDecoder decoder_;
  MessageHandler on_message_;
  CloseHandler on_close_;
  Mutex write_mu_;
  std::vector<flatbuffers::DetachedBuffer> queued_ GUARDED_BY(write_mu_);
  size_t queued_skip_ GUARDED_BY(write_mu_) = 0;  // bytes of queued_[0] already written directly
  bool write_in_flight_ GUARDED_BY(write_mu_) = false;
  std::vector<flatbuffers::DetachedBuffer> writing_;  // io thread only
  std::vector<asio::const_buffer> gather_;            // io thread only
  std::atomic<bool> closed_{false};
  uint64_t id_;
};

// Connects to a unix socket path synchronously (local sockets connect at once).
StatusOr<UnixSocket> ConnectUnix(asio::io_context& io, const std::string& path);

// "host:port" -> its parts; InvalidArgument naming what is wrong.
Status ParseHostPort(const std::string& address, std::string* host, int* port);
// Connects to host:port over TCP, waiting at most timeout_ms, with
// TCP_NODELAY and keepalive set. A blocking call (the caller's thread).
StatusOr<int> ConnectTcpFd(const std::string& host, int port, int timeout_ms);
StatusOr<TcpSocket> ConnectTcp(asio::io_context& io, const std::string& host, int port, int timeout_ms);
// TCP_NODELAY and keepalive on an accepted or connected socket.
void TuneTcp(int fd);
// Non-blocking fds for LoopTransport (cluster mode). StartTcpConnect: a
// socket whose connect to host:port has started (frames queue behind it and
// go out once connected; a failure shows in the read or write that finds
// it); -1 with errno set. A host name is resolved, blocking: node IPs are
// numeric. ListenTcpFd: a listening socket at host:port (0: any free port,
// *bound_port says which). PeerIpOf: the IP of an accepted peer.
int StartTcpConnect(const std::string& host, int port);
StatusOr<int> ListenTcpFd(const std::string& host, int port, int* bound_port);
std::string PeerIpOf(const sockaddr_storage& ss);

}  // namespace rayts
