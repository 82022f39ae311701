#include "core/protocol/connection.h"

#include <sys/socket.h>

#include <atomic>
#include <cerrno>

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
    if (closed()) return;
    if (ec) {
      Fail(ec == asio::error::eof ? Status::Disconnected("peer closed the connection")
                                  : Status::IOError("read failed: " + ec.message()));
      return;
    }
    decoder_.CommitWrite(n);
    while (!closed()) {
      const proto::Envelope* env;
      Status s = decoder_.Next(&env);
      if (!s.ok()) {
        Fail(s);
        return;
      }
      if (!env) break;
      on_message_(*env);
    }
    if (!closed()) ReadMore();
  });
}

void Connection::Send(flatbuffers::DetachedBuffer frame) {
  std::vector<flatbuffers::DetachedBuffer> one;
  one.push_back(std::move(frame));
  SendBatch(&one);
}

void Connection::SendBatch(std::vector<flatbuffers::DetachedBuffer>* frames) {
  if (frames->empty()) return;
  {
    MutexLock lock(&write_mu_);
    if (closed()) {
      frames->clear();
      return;
    }
    size_t skip = 0;
    size_t first = 0;
    if (!write_in_flight_ && queued_.empty()) {
      // Nothing ahead of us: write now, from this thread.
      iovec iov[64];
      size_t n = std::min<size_t>(frames->size(), 64);
      for (size_t i = 0; i < n; i++) iov[i] = iovec{(*frames)[i].data(), (*frames)[i].size()};
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = n;
      ssize_t w;
      do {
        w = ::sendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      } while (w < 0 && errno == EINTR);
      size_t written = w > 0 ? static_cast<size_t>(w) : 0;
      // Skip whole frames written; remember how much of the next one went out.
      while (first < frames->size() && written >= (*frames)[first].size()) {
        written -= (*frames)[first].size();
        first++;
      }
      skip = written;
      if (first == frames->size()) {
        frames->clear();
        return;
      }
      // EAGAIN or an error: the io thread takes the rest (and reports errors).
    }
    if (queued_.empty()) queued_skip_ = skip;
    for (size_t i = first; i < frames->size(); i++) queued_.push_back(std::move((*frames)[i]));
    frames->clear();
    if (write_in_flight_) return;
    write_in_flight_ = true;
  }
  // First to queue: the io thread writes what is queued (outside the lock).
  auto self = shared_from_this();
  asio::post(socket_.get_executor(), [self] { self->WriteMore(); });
}

void Connection::WriteMore() {
  {
    MutexLock lock(&write_mu_);
    if (queued_.empty() || closed()) {
      write_in_flight_ = false;
      return;
    }
    writing_.swap(queued_);
    queued_.clear();
    gather_.clear();
    for (size_t i = 0; i < writing_.size(); i++) {
      size_t skip = i == 0 ? queued_skip_ : 0;
      gather_.emplace_back(writing_[i].data() + skip, writing_[i].size() - skip);
    }
    queued_skip_ = 0;
  }
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
  {
    MutexLock lock(&write_mu_);
    if (closed()) return;
    closed_.store(true, std::memory_order_release);
    queued_.clear();
    write_in_flight_ = false;
  }
  asio::error_code ec;
  socket_.close(ec);
  if (on_close_) {
    auto cb = std::move(on_close_);
    on_close_ = nullptr;
    cb(s);
  }

}

void Connection::Close() {
  // Close may come from any thread; the socket is closed on the io thread.
  auto self = shared_from_this();
  asio::dispatch(socket_.get_executor(), [self] { self->Fail(Status::Disconnected("closed locally")); });
}

StatusOr<UnixSocket> ConnectUnix(asio::io_context& io, const std::string& path) {
  UnixSocket s(io);
  asio::error_code ec;
  s.connect(asio::local::stream_protocol::endpoint(path), ec);
  if (ec) return Status::IOError("cannot connect to " + path + ": " + ec.message());
  return s;
}

}  // namespace rayts
