// BlockingChannel: a framed unix-socket client with blocking request/reply.
//
// Role: the plasma data path of a CoreWorker. Object create/get need an
// answer before a JS `put`/`get` can continue, and they never wait on other
// work (objects a CoreWorker asks for are already sealed), so they run as a
// short blocking round trip on the calling thread instead of a hop through
// the io thread. Also receives the store's memfd (SCM_RIGHTS) at Register.
// Every reply is awaited for at most 30 s (SO_RCVTIMEO): then TimedOut.
// Thread safety: every method takes an internal mutex; callers on any thread.
#pragma once

#include <string>

#include "core/common/thread_annotations.h"
#include "core/protocol/frame_codec.h"

namespace rayts {

class BlockingChannel {
 public:
  ~BlockingChannel();
  Status Connect(const std::string& path);
  // A TCP channel (the GCS of a cluster, for tools and a driver's first
  // contact): connects within timeout_ms; replies are awaited as long.
  Status ConnectTcp(const std::string& host, int port, int timeout_ms);
  // Writes one frame without waiting for an answer (release).
  Status Send(const flatbuffers::DetachedBuffer& frame);
  // Writes `frame` and reads frames until one has body type `want`; the
  // reply is copied into *reply_frame (a whole size-prefixed frame).
  // If received_fd is non-null, one SCM_RIGHTS fd is captured from the reply.
  Status Call(const flatbuffers::DetachedBuffer& frame, proto::Body want,
              std::vector<uint64_t>* reply_storage, const proto::Envelope** reply,
              int* received_fd = nullptr);
  void Close();
  // Hands the socket to the caller (who closes it); the channel is closed.
  int Release() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  int fd() const EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return fd_;
  }

 private:
  Status SendLocked(const uint8_t* p, size_t n) REQUIRES(mu_);
  Status ReadExact(uint8_t* p, size_t n, int* received_fd) REQUIRES(mu_);
  mutable Mutex mu_;
  int fd_ GUARDED_BY(mu_) = -1;
};

// Sends `frame` on a connected unix socket fd together with `fd_to_pass`.
Status SendFrameWithFd(int sock, const flatbuffers::DetachedBuffer& frame, int fd_to_pass);

}  // namespace rayts
