#include "core/protocol/connection.h"

#include <atomic>

namespace rayts {

namespace {
std::atomic<uint64_t> next_connection_id{1};
constexpr size_t kReadChunk = 64 * 1024;
}  // namespace

Connection::Connection(UnixSocket socket) : socket_(std::move(socket)), id_(next_connection_id++) {}

Connection::~Connection() {
  asio::error_code ec;
  socket_.close(ec);
}

void Connection::Start(MessageHandler on_message, CloseHandler on_close) {
  on_message_ = std::move(on_message);
  on_close_ = std::move(on_close);
  ReadMore();
}

void Connection::ReadMore() {
  size_t avail;
  uint8_t* dst = decoder_.PrepareWrite(kReadChunk, &avail);
  auto self = shared_from_this();
  socket_.async_read_some(asio::buffer(dst, avail), [this, self](const asio::error_code& ec, size_t n) {
    if (closed_) return;
    if (ec) {
      Fail(ec == asio::error::eof ? Status::Disconnected("peer closed the connection")
                                  : Status::IOError("read failed: " + ec.message()));
      return;
    }
    decoder_.CommitWrite(n);
    while (!closed_) {
      const proto::Envelope* env;
      Status s = decoder_.Next(&env);
      if (!s.ok()) {
        Fail(s);
        return;
      }
      if (!env) break;
      on_message_(*env);
    }
    if (!closed_) ReadMore();
  });
}

void Connection::Send(flatbuffers::DetachedBuffer frame) {
  if (closed_) return;
  queued_.push_back(std::move(frame));
  if (!write_in_flight_) WriteMore();
}

void Connection::SendFromAnyThread(flatbuffers::DetachedBuffer frame) {
  auto self = shared_from_this();
  auto holder = std::make_shared<flatbuffers::DetachedBuffer>(std::move(frame));
  asio::post(socket_.get_executor(), [self, holder] { self->Send(std::move(*holder)); });
}

void Connection::WriteMore() {
  if (queued_.empty() || closed_) {
    write_in_flight_ = false;
    return;
  }
  write_in_flight_ = true;
  writing_.swap(queued_);
  queued_.clear();
  gather_.clear();
  for (auto& b : writing_) gather_.emplace_back(b.data(), b.size());
  auto self = shared_from_this();
  asio::async_write(socket_, gather_, [this, self](const asio::error_code& ec, size_t) {
    writing_.clear();
    if (ec) {
      Fail(Status::IOError("write failed: " + ec.message()));
      return;
    }
    WriteMore();
  });
}

void Connection::Fail(const Status& s) {
  if (closed_) return;
  closed_ = true;
  asio::error_code ec;
  socket_.close(ec);
  queued_.clear();
  if (on_close_) {
    auto cb = std::move(on_close_);
    on_close_ = nullptr;
    cb(s);
  }

}

void Connection::Close() { Fail(Status::Disconnected("closed locally")); }

StatusOr<UnixSocket> ConnectUnix(asio::io_context& io, const std::string& path) {
  UnixSocket s(io);
  asio::error_code ec;
  s.connect(asio::local::stream_protocol::endpoint(path), ec);
  if (ec) return Status::IOError("cannot connect to " + path + ": " + ec.message());
  return s;
}

}  // namespace rayts
