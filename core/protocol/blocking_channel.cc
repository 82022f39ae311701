#include "core/protocol/blocking_channel.h"

#include "core/protocol/connection.h"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

namespace rayts {

namespace {
constexpr int kReplyTimeoutSeconds = 30;
}  // namespace

BlockingChannel::~BlockingChannel() { Close(); }

void BlockingChannel::Close() {
  MutexLock lock(&mu_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status BlockingChannel::Connect(const std::string& path) {
  MutexLock lock(&mu_);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IOError(std::string("socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    ::close(fd);
    return Status::InvalidArgument("socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    ::close(fd);
    return Status::IOError("cannot connect to " + path + ": " + std::strerror(e));
  }
  // Every reply this channel waits for comes at once or within the node
  // server's own bounded wait (plasma get: 5 s): bound the wait here too, so
  // a wedged peer fails the call instead of hanging the caller.
  timeval tv{kReplyTimeoutSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  fd_ = fd;
  return Status::OK();
}

Status BlockingChannel::ConnectTcp(const std::string& host, int port, int timeout_ms) {
  auto fd = ConnectTcpFd(host, port, timeout_ms);
  if (!fd.ok()) return fd.status();
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  MutexLock lock(&mu_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = *fd;
  return Status::OK();
}

Status BlockingChannel::SendLocked(const uint8_t* p, size_t n) {
  if (fd_ < 0) return Status::Disconnected("channel is closed");
  while (n > 0) {
    ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(std::string("send: ") + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::OK();
}

Status BlockingChannel::Send(const flatbuffers::DetachedBuffer& frame) {
  MutexLock lock(&mu_);
  return SendLocked(frame.data(), frame.size());
}

Status BlockingChannel::ReadExact(uint8_t* p, size_t n, int* received_fd) {
  while (n > 0) {
    iovec iov{p, n};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (received_fd) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
    }
    ssize_t r = ::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return Status::TimedOut("no answer within the channel's reply timeout");
      }
      return Status::IOError(std::string("recv: ") + std::strerror(errno));
    }
    if (r == 0) return Status::Disconnected("the peer closed the connection");
    if (received_fd) {
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
          std::memcpy(received_fd, CMSG_DATA(c), sizeof(int));
          received_fd = nullptr;  // captured
        }
      }
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return Status::OK();
}

Status BlockingChannel::Call(const flatbuffers::DetachedBuffer& frame, proto::Body want,
                             std::vector<uint64_t>* storage, const proto::Envelope** reply,
                             int* received_fd) {
  MutexLock lock(&mu_);
  if (received_fd) *received_fd = -1;
  RAYTS_RETURN_IF_ERROR(SendLocked(frame.data(), frame.size()));
  for (;;) {
    uint32_t len;
    RAYTS_RETURN_IF_ERROR(ReadExact(reinterpret_cast<uint8_t*>(&len), 4, received_fd));
    if (len == 0 || len > kMaxFrameBytes) return Status::Invalid("reply frame length out of range");
    storage->resize((4 + len + 7) / 8);
    uint8_t* base = reinterpret_cast<uint8_t*>(storage->data());
    std::memcpy(base, &len, 4);
    RAYTS_RETURN_IF_ERROR(ReadExact(base + 4, len, received_fd));
    const proto::Envelope* env;
    RAYTS_RETURN_IF_ERROR(VerifyEnvelope(base, 4 + len, &env));
    if (env->body_type() == want) {
      *reply = env;
      return Status::OK();
    }
    // Other frames on this channel are not expected; skip them.
  }
}

Status SendFrameWithFd(int sock, const flatbuffers::DetachedBuffer& frame, int fd_to_pass) {
  iovec iov{const_cast<uint8_t*>(frame.data()), frame.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  std::memset(control, 0, sizeof(control));
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd_to_pass, sizeof(int));
  ssize_t w;
  do {
    w = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (w < 0 && errno == EINTR);
  if (w < 0) return Status::IOError(std::string("sendmsg: ") + std::strerror(errno));
  size_t sent = static_cast<size_t>(w);
  // A short write leaves the rest of the frame; finish it without the fd.
  while (sent < frame.size()) {
    ssize_t more = ::send(sock, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
    if (more < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Status::IOError(std::string("send: ") + std::strerror(errno));
    }
    sent += static_cast<size_t>(more);
  }
  return Status::OK();
}

}  // namespace rayts
