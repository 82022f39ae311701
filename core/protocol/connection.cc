#include "core/protocol/connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace rayts {

namespace {
std::atomic<uint64_t> next_connection_id{1};
constexpr size_t kReadChunk = 64 * 1024;
}  // namespace

Connection::Connection(StreamSocket socket) : socket_(std::move(socket)), id_(next_connection_id++) {}

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

namespace rayts {

Status ParseHostPort(const std::string& address, std::string* host, int* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return Status::InvalidArgument("address '" + address + "' is not HOST:PORT");
  }
  std::string h = address.substr(0, colon);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);  // [::1]:6379
  std::string p = address.substr(colon + 1);
  int n = 0;
  for (char c : p) {
    if (c < '0' || c > '9' || n > 65535) return Status::InvalidArgument("address '" + address + "': bad port '" + p + "'");
    n = n * 10 + (c - '0');
  }
  if (n < 1 || n > 65535) return Status::InvalidArgument("address '" + address + "': port must be in [1, 65535]");
  *host = h;
  *port = n;
  return Status::OK();
}

void TuneTcp(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

StatusOr<int> ConnectTcpFd(const std::string& host, int port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string ps = std::to_string(port);
  int gai = ::getaddrinfo(host.c_str(), ps.c_str(), &hints, &res);
  if (gai != 0) return Status::IOError("cannot resolve " + host + ": " + ::gai_strerror(gai));
  std::string last = "no address";
  for (addrinfo* a = res; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) { last = std::strerror(errno); continue; }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int pr;
      do { pr = ::poll(&p, 1, timeout_ms); } while (pr < 0 && errno == EINTR);
      if (pr == 0) { ::close(fd); last = "timed out after " + std::to_string(timeout_ms) + " ms"; continue; }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc != 0) { last = std::strerror(errno); ::close(fd); continue; }
    // Blocking from here on (BlockingChannel); asio sets its own mode.
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    TuneTcp(fd);
    ::freeaddrinfo(res);
    return fd;
  }
  ::freeaddrinfo(res);
  return Status::IOError("cannot connect to " + host + ":" + ps + ": " + last);
}

StatusOr<TcpSocket> ConnectTcp(asio::io_context& io, const std::string& host, int port, int timeout_ms) {
  auto fd = ConnectTcpFd(host, port, timeout_ms);
  if (!fd.ok()) return fd.status();
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(*fd, reinterpret_cast<sockaddr*>(&ss), &len);
  TcpSocket s(io);
  asio::error_code ec;
  s.assign(ss.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), *fd, ec);
  if (ec) {
    ::close(*fd);
    return Status::IOError("cannot use the socket to " + host + ": " + ec.message());
  }
  return s;
}

int StartTcpConnect(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &res) != 0) {
    hints.ai_flags = AI_NUMERICSERV;  // a host name: resolved (blocking), node IPs are numeric
    if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &res) != 0 || !res) {
      errno = EHOSTUNREACH;
      return -1;
    }
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    return -1;
  }
  TuneTcp(fd);
  int r;
  do {
    r = ::connect(fd, res->ai_addr, res->ai_addrlen);
  } while (r < 0 && errno == EINTR);
  ::freeaddrinfo(res);
  if (r < 0 && errno != EINPROGRESS) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

std::string PeerIpOf(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof(buf));
  } else if (ss.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof(buf));
  }
  return buf[0] ? buf : "?";
}

StatusOr<int> ListenTcpFd(const std::string& host, int port, int* bound_port) {
  std::string where = host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &res) != 0 || !res) {
    return Status::InvalidArgument("cannot listen on " + where + ": '" + host + "' is not an IP address");
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) < 0 || ::listen(fd, SOMAXCONN) < 0) {
    Status s = Status::IOError("cannot listen on " + where + ": " + std::strerror(errno));
    if (fd >= 0) ::close(fd);
    ::freeaddrinfo(res);
    return s;
  }
  ::freeaddrinfo(res);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  *bound_port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return fd;
}

}  // namespace rayts
