// Connection: one framed, bidirectional unix-socket stream on an asio io_context.
//
// Role: reads frames (FrameDecoder) and hands each verified Envelope to the
// message handler; Send() queues frames and writes everything queued in one
// gathered write (batched writes: many small messages cost one syscall).
// Ownership: held by shared_ptr; the pending async operations keep it alive.
// Thread safety: every method runs on the io_context's thread, except
// SendFromAnyThread(), which posts. The close handler runs exactly once.
#pragma once

#include <asio.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "core/protocol/frame_codec.h"

namespace rayts {

using UnixSocket = asio::local::stream_protocol::socket;

// Wraps a finished body into a size-prefixed Envelope frame.
template <typename T>
flatbuffers::DetachedBuffer FinishFrame(flatbuffers::FlatBufferBuilder& fbb, flatbuffers::Offset<T> body) {
  auto env = proto::CreateEnvelope(fbb, proto::BodyTraits<T>::enum_value, body.Union());
  fbb.FinishSizePrefixed(env);
  return fbb.Release();
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using MessageHandler = std::function<void(const proto::Envelope&)>;
  using CloseHandler = std::function<void(const Status&)>;

  explicit Connection(UnixSocket socket);
  ~Connection();

  void Start(MessageHandler on_message, CloseHandler on_close);
  void Send(flatbuffers::DetachedBuffer frame);
  void SendFromAnyThread(flatbuffers::DetachedBuffer frame);
  void Close();
  bool closed() const { return closed_; }
  UnixSocket& socket() { return socket_; }
  uint64_t id() const { return id_; }

 private:
  void ReadMore();
  void WriteMore();
  void Fail(const Status& s);

  UnixSocket socket_;
  FrameDecoder decoder_;
  MessageHandler on_message_;
  CloseHandler on_close_;
  std::vector<flatbuffers::DetachedBuffer> queued_;
  std::vector<flatbuffers::DetachedBuffer> writing_;
  std::vector<asio::const_buffer> gather_;
  bool write_in_flight_ = false;
  bool closed_ = false;
  uint64_t id_;
};

// Connects to a unix socket path synchronously (local sockets connect at once).
StatusOr<UnixSocket> ConnectUnix(asio::io_context& io, const std::string& path);

}  // namespace rayts
