#include "core/protocol/connection.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "core/protocol/blocking_channel.h"

namespace rayts {
namespace {

// Test frames: a GcsRequest carrying a KvPutRequest (method as the key, body
// as the value) and a GcsReply carrying a KvGetReply (body as the value).
flatbuffers::DetachedBuffer GcsRequestFrame(uint64_t id, const std::string& method, const std::string& body) {
  flatbuffers::FlatBufferBuilder fbb;
  auto m = fbb.CreateString(method);
  auto b = fbb.CreateVector(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  auto kv = proto::CreateKvPutRequest(fbb, m, b);
  return FinishFrame(fbb, proto::CreateGcsRequest(fbb, id, proto::GcsRequestBody::KvPutRequest, kv.Union()));
}

flatbuffers::DetachedBuffer GcsReplyFrame(uint64_t id, int code, const std::string& body) {
  flatbuffers::FlatBufferBuilder fbb;
  auto msg = fbb.CreateString("");
  auto b = fbb.CreateVector(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  auto kv = proto::CreateKvGetReply(fbb, b);
  return FinishFrame(fbb, proto::CreateGcsReply(fbb, id, code, msg, proto::GcsReplyBody::KvGetReply, kv.Union()));
}

std::string Bytes(const flatbuffers::Vector<uint8_t>* v) {
  return v ? std::string(reinterpret_cast<const char*>(v->data()), v->size()) : std::string();
}
std::string MethodOf(const proto::GcsRequest* r) {
  auto* kv = r->body_as_KvPutRequest();
  return kv && kv->key() ? kv->key()->str() : std::string();
}
std::string BodyOf(const proto::GcsRequest* r) {
  auto* kv = r->body_as_KvPutRequest();
  return kv ? Bytes(kv->value()) : std::string();
}
std::string BodyOf(const proto::GcsReply* r) {
  auto* kv = r->body_as_KvGetReply();
  return kv ? Bytes(kv->value()) : std::string();
}

flatbuffers::DetachedBuffer AckFrame(uint64_t id) {
  flatbuffers::FlatBufferBuilder fbb;
  auto msg = fbb.CreateString("unrelated");
  return FinishFrame(fbb, proto::CreateAck(fbb, id, 0, msg));
}

// Runs handlers until `done()` holds; bounded by an iteration count, each
// iteration returning as soon as one handler ran.
template <typename Pred>
bool RunUntil(asio::io_context& io, Pred done, int max_iterations = 200000) {
  for (int i = 0; i < max_iterations && !done(); i++) {
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(100));
  }
  return done();
}

// Runs whatever is ready right now, a bounded number of rounds.
void Drain(asio::io_context& io, int rounds = 50) {
  for (int i = 0; i < rounds; i++) {
    if (io.stopped()) io.restart();
    io.poll();
  }
}

class ConnectionPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    UnixSocket a(io_), b(io_);
    asio::local::connect_pair(a, b);
    a_ = std::make_shared<Connection>(std::move(a));
    b_ = std::make_shared<Connection>(std::move(b));
  }
  void TearDown() override {
    if (a_) a_->Close();
    if (b_) b_->Close();
    a_.reset();
    b_.reset();
    // Let the cancelled reads/writes finish so the connections are freed
    // before the io_context goes away.
    io_.restart();
    io_.run_for(std::chrono::seconds(5));
    EXPECT_TRUE(io_.stopped()) << "handlers still pending after both sides closed";
  }

  asio::io_context io_;
  std::shared_ptr<Connection> a_, b_;
};

TEST_F(ConnectionPairTest, ConnectionsHaveDistinctIds) {
  EXPECT_NE(a_->id(), b_->id());
  EXPECT_FALSE(a_->closed());
}

TEST_F(ConnectionPairTest, TenThousandFramesArriveInOrder) {
  const uint64_t kFrames = 10000;
  std::vector<uint64_t> got;
  got.reserve(kFrames);
  std::vector<std::string> bodies_bad;
  int closes_a = 0, closes_b = 0;
  a_->Start([](const proto::Envelope&) { ADD_FAILURE() << "a received a frame"; },
            [&](const Status&) { closes_a++; });
  b_->Start(
      [&](const proto::Envelope& env) {
        auto* r = env.body_as_GcsRequest();
        ASSERT_NE(r, nullptr);
        got.push_back(r->request_id());
        std::string want = "body-" + std::to_string(r->request_id());
        if (BodyOf(r) != want) bodies_bad.push_back(want);
      },
      [&](const Status&) { closes_b++; });
  // Back to back, from the io thread (the test thread), before any handler
  // runs: the first write is in flight, the rest queue and go out batched.
  for (uint64_t i = 0; i < kFrames; i++) {
    a_->Send(GcsRequestFrame(i, "m", "body-" + std::to_string(i)));
  }
  ASSERT_TRUE(RunUntil(io_, [&] { return got.size() >= kFrames; })) << "received " << got.size();
  ASSERT_EQ(got.size(), kFrames);
  for (uint64_t i = 0; i < kFrames; i++) ASSERT_EQ(got[i], i) << "out of order at " << i;
  EXPECT_TRUE(bodies_bad.empty()) << bodies_bad.size() << " bodies differ, first " << bodies_bad[0];
  EXPECT_EQ(closes_a, 0);
  EXPECT_EQ(closes_b, 0);
}

TEST_F(ConnectionPairTest, SendFromAnyThreadArrivesInOrder) {
  const uint64_t kFrames = 2000;
  std::vector<uint64_t> got;
  a_->Start([](const proto::Envelope&) {}, [](const Status&) {});
  b_->Start([&](const proto::Envelope& env) { got.push_back(env.body_as_GcsRequest()->request_id()); },
            [](const Status&) {});
  std::thread sender([&] {
    for (uint64_t i = 0; i < kFrames; i++) a_->SendFromAnyThread(GcsRequestFrame(i, "m", "b"));
  });
  sender.join();
  ASSERT_TRUE(RunUntil(io_, [&] { return got.size() >= kFrames; })) << "received " << got.size();
  for (uint64_t i = 0; i < kFrames; i++) ASSERT_EQ(got[i], i);
}

TEST_F(ConnectionPairTest, BothDirectionsAtOnce) {
  const uint64_t kFrames = 500;
  std::vector<uint64_t> at_a, at_b;
  a_->Start([&](const proto::Envelope& env) { at_a.push_back(env.body_as_GcsReply()->request_id()); },
            [](const Status&) {});
  // b answers every request.
  b_->Start(
      [&](const proto::Envelope& env) {
        uint64_t id = env.body_as_GcsRequest()->request_id();
        at_b.push_back(id);
        b_->Send(GcsReplyFrame(id, 0, "r"));
      },
      [](const Status&) {});
  for (uint64_t i = 0; i < kFrames; i++) a_->Send(GcsRequestFrame(i, "m", "b"));
  ASSERT_TRUE(RunUntil(io_, [&] { return at_a.size() >= kFrames; }));
  ASSERT_EQ(at_b.size(), kFrames);
  for (uint64_t i = 0; i < kFrames; i++) {
    ASSERT_EQ(at_a[i], i);
    ASSERT_EQ(at_b[i], i);
  }
}

TEST_F(ConnectionPairTest, CloseCallsEachCloseHandlerExactlyOnce) {
  int closes_a = 0, closes_b = 0;
  Status status_a, status_b;
  a_->Start([](const proto::Envelope&) {}, [&](const Status& s) { closes_a++; status_a = s; });
  b_->Start([](const proto::Envelope&) {}, [&](const Status& s) { closes_b++; status_b = s; });
  a_->Close();
  // Close may be called from any thread; the close itself (and the handler)
  // runs on the io thread.
  ASSERT_TRUE(RunUntil(io_, [&] { return closes_a > 0; }));
  EXPECT_EQ(closes_a, 1);
  EXPECT_TRUE(a_->closed());
  ASSERT_TRUE(RunUntil(io_, [&] { return closes_b > 0; }));
  EXPECT_EQ(status_b.code(), StatusCode::kDisconnected) << status_b.ToString();
  EXPECT_EQ(status_a.code(), StatusCode::kDisconnected);
  // Further closes and sends on either side do not call the handlers again.
  a_->Close();
  b_->Close();
  b_->Close();
  a_->Send(GcsRequestFrame(1, "m", "b"));
  b_->Send(GcsRequestFrame(1, "m", "b"));
  Drain(io_);
  EXPECT_EQ(closes_a, 1);
  EXPECT_EQ(closes_b, 1);
  EXPECT_TRUE(b_->closed());
}

TEST_F(ConnectionPairTest, CloseWithWritesInFlightCallsHandlerOnce) {
  int closes_a = 0, closes_b = 0;
  a_->Start([](const proto::Envelope&) {}, [&](const Status&) { closes_a++; });
  b_->Start([](const proto::Envelope&) {}, [&](const Status&) { closes_b++; });
  // Enough data that writes are still pending when a closes.
  std::string big(256 * 1024, 'x');
  for (int i = 0; i < 20; i++) a_->Send(GcsRequestFrame(i, "m", big));
  a_->Close();
  ASSERT_TRUE(RunUntil(io_, [&] { return closes_b > 0; }));
  Drain(io_);
  EXPECT_EQ(closes_a, 1);
  EXPECT_EQ(closes_b, 1);
}

TEST_F(ConnectionPairTest, PeerSocketDestroyedClosesReceiverOnce) {
  int closes_b = 0;
  Status status_b;
  b_->Start([](const proto::Envelope&) {}, [&](const Status& s) { closes_b++; status_b = s; });
  // a never started: dropping our reference closes its socket.
  a_.reset();
  ASSERT_TRUE(RunUntil(io_, [&] { return closes_b > 0; }));
  Drain(io_);
  EXPECT_EQ(closes_b, 1);
  EXPECT_EQ(status_b.code(), StatusCode::kDisconnected) << status_b.ToString();
}

class ConnectionRawPeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    UnixSocket b(io_);
    asio::local::connect_pair(raw_, b);
    conn_ = std::make_shared<Connection>(std::move(b));
    conn_->Start(
        [this](const proto::Envelope& env) {
          messages_++;
          if (auto* r = env.body_as_GcsRequest()) ids_.push_back(r->request_id());
        },
        [this](const Status& s) {
          closes_++;
          close_status_ = s;
        });
  }
  void TearDown() override {
    conn_->Close();
    conn_.reset();
    asio::error_code ec;
    raw_.close(ec);
    io_.restart();
    io_.run_for(std::chrono::seconds(5));
    EXPECT_TRUE(io_.stopped());
  }
  void WriteRaw(const std::vector<uint8_t>& bytes) {
    asio::error_code ec;
    asio::write(raw_, asio::buffer(bytes), ec);
    ASSERT_FALSE(ec) << ec.message();
  }
  void WriteRaw(const flatbuffers::DetachedBuffer& f) {
    WriteRaw(std::vector<uint8_t>(f.data(), f.data() + f.size()));
  }
  // After the receiver closed, the raw side reads EOF.
  void ExpectRawSeesEof() {
    uint8_t tmp[16];
    asio::error_code ec;
    raw_.read_some(asio::buffer(tmp), ec);
    EXPECT_EQ(ec, asio::error::eof) << ec.message();
  }

  asio::io_context io_;
  UnixSocket raw_{io_};
  std::shared_ptr<Connection> conn_;
  int messages_ = 0;
  int closes_ = 0;
  Status close_status_;
  std::vector<uint64_t> ids_;
};

TEST_F(ConnectionRawPeerTest, ValidFrameThenGarbagePayloadClosesWithInvalid) {
  WriteRaw(GcsRequestFrame(77, "m", "b"));
  std::vector<uint8_t> garbage = {32, 0, 0, 0};
  for (int i = 0; i < 32; i++) garbage.push_back(static_cast<uint8_t>(0xA5 ^ (i * 37)));
  WriteRaw(garbage);
  ASSERT_TRUE(RunUntil(io_, [&] { return closes_ > 0; }));
  Drain(io_);
  EXPECT_EQ(closes_, 1);
  EXPECT_EQ(close_status_.code(), StatusCode::kInvalid) << close_status_.ToString();
  EXPECT_EQ(ids_, std::vector<uint64_t>{77});
  EXPECT_TRUE(conn_->closed());
  ExpectRawSeesEof();
}

TEST_F(ConnectionRawPeerTest, ZeroLengthClosesWithInvalid) {
  WriteRaw(std::vector<uint8_t>{0, 0, 0, 0, 1, 2, 3});
  ASSERT_TRUE(RunUntil(io_, [&] { return closes_ > 0; }));
  EXPECT_EQ(closes_, 1);
  EXPECT_EQ(close_status_.code(), StatusCode::kInvalid);
  EXPECT_EQ(messages_, 0);
  ExpectRawSeesEof();
}

TEST_F(ConnectionRawPeerTest, OversizedLengthClosesWithInvalid) {
  WriteRaw(std::vector<uint8_t>{0xFF, 0xFF, 0xFF, 0x7F});
  ASSERT_TRUE(RunUntil(io_, [&] { return closes_ > 0; }));
  EXPECT_EQ(closes_, 1);
  EXPECT_EQ(close_status_.code(), StatusCode::kInvalid);
  EXPECT_EQ(messages_, 0);
}

TEST_F(ConnectionRawPeerTest, GarbageAfterFramesInSameWriteStopsDelivery) {
  // Two good frames and garbage arrive in one read: the good ones are
  // delivered, then the connection closes and nothing after is handed out.
  auto f1 = GcsRequestFrame(1, "m", "b");
  auto f2 = GcsRequestFrame(2, "m", "b");
  auto f3 = GcsRequestFrame(3, "m", "b");
  std::vector<uint8_t> bytes(f1.data(), f1.data() + f1.size());
  bytes.insert(bytes.end(), f2.data(), f2.data() + f2.size());
  for (uint8_t b : {0u, 0u, 0u, 0u}) bytes.push_back(b);
  bytes.insert(bytes.end(), f3.data(), f3.data() + f3.size());
  WriteRaw(bytes);
  ASSERT_TRUE(RunUntil(io_, [&] { return closes_ > 0; }));
  Drain(io_);
  EXPECT_EQ(ids_, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(closes_, 1);
  EXPECT_EQ(close_status_.code(), StatusCode::kInvalid);
}

TEST_F(ConnectionRawPeerTest, FrameSplitAcrossWritesIsReassembled) {
  auto f = GcsRequestFrame(9, "method", std::string(1000, 'k'));
  std::vector<uint8_t> all(f.data(), f.data() + f.size());
  for (size_t off = 0; off < all.size(); off += 333) {
    WriteRaw(std::vector<uint8_t>(all.begin() + off, all.begin() + std::min(all.size(), off + 333)));
    Drain(io_, 5);
  }
  ASSERT_TRUE(RunUntil(io_, [&] { return !ids_.empty(); }));
  EXPECT_EQ(ids_, std::vector<uint64_t>{9});
  EXPECT_EQ(closes_, 0);
}

// ---- BlockingChannel against a server Connection on an io thread --------

class ConnectionBlockingChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rayts_conn_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/node.sock";
    acceptor_.open(asio::local::stream_protocol());
    acceptor_.bind(asio::local::stream_protocol::endpoint(path_));
    acceptor_.listen();
    Accept();
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    channel_.Close();
    asio::post(io_, [this] {
      asio::error_code ec;
      acceptor_.close(ec);
      for (auto& c : conns_) c->Close();
      conns_.clear();
    });
    io_thread_.join();  // returns once no work is left
    std::filesystem::remove_all(dir_);
  }

  void Accept() {
    acceptor_.async_accept([this](const asio::error_code& ec, UnixSocket s) {
      if (ec) return;
      auto c = std::make_shared<Connection>(std::move(s));
      Connection* raw = c.get();
      conns_.push_back(c);
      c->Start([this, raw](const proto::Envelope& env) { Serve(raw, env); },
               [this](const Status&) { server_closes_++; });
      Accept();
    });
  }

  // The test server: answers GcsRequests by method.
  void Serve(Connection* c, const proto::Envelope& env) {
    auto* r = env.body_as_GcsRequest();
    if (!r) {
      server_other_++;
      return;
    }
    std::string method = MethodOf(r);
    std::string body = BodyOf(r);
    if (method == "echo") {
      c->Send(GcsReplyFrame(r->request_id(), 0, body));
    } else if (method == "noise_then_echo") {
      // A frame of another type first: Call must skip it.
      c->Send(AckFrame(r->request_id()));
      c->Send(AckFrame(r->request_id() + 1));
      c->Send(GcsReplyFrame(r->request_id(), 0, body));
    } else if (method == "fd") {
      Status s = SendFrameWithFd(c->socket().native_handle(), GcsReplyFrame(r->request_id(), 0, body), pass_fd_);
      if (!s.ok()) ADD_FAILURE() << s.ToString();
    } else if (method == "close") {
      c->Close();
    } else if (method == "notify") {
      notifications_++;
    }
  }

  asio::io_context io_;
  asio::local::stream_protocol::acceptor acceptor_{io_};
  std::vector<std::shared_ptr<Connection>> conns_;
  std::thread io_thread_;
  std::string dir_, path_;
  BlockingChannel channel_;
  int pass_fd_ = -1;
  std::atomic<int> server_closes_{0};
  std::atomic<int> server_other_{0};
  std::atomic<int> notifications_{0};
};

TEST_F(ConnectionBlockingChannelTest, CallReturnsMatchingReply) {
  ASSERT_TRUE(channel_.Connect(path_).ok());
  EXPECT_GE(channel_.fd(), 0);
  for (uint64_t i = 1; i <= 100; i++) {
    std::vector<uint64_t> storage;
    const proto::Envelope* reply = nullptr;
    std::string body = "payload " + std::to_string(i) + std::string(i * 37, 'p');
    Status s = channel_.Call(GcsRequestFrame(i, "echo", body), proto::Body::GcsReply, &storage, &reply);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_NE(reply, nullptr);
    auto* r = reply->body_as_GcsReply();
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->request_id(), i);
    ASSERT_NE(r->body(), nullptr);
    EXPECT_EQ(BodyOf(r), body);
    // The reply lives in the caller's storage.
    auto* base = reinterpret_cast<const uint8_t*>(storage.data());
    EXPECT_GE(reinterpret_cast<const uint8_t*>(reply), base);
    EXPECT_LT(reinterpret_cast<const uint8_t*>(reply), base + storage.size() * 8);
  }
}

TEST_F(ConnectionBlockingChannelTest, CallSkipsFramesOfOtherTypes) {
  ASSERT_TRUE(channel_.Connect(path_).ok());
  std::vector<uint64_t> storage;
  const proto::Envelope* reply = nullptr;
  Status s = channel_.Call(GcsRequestFrame(50, "noise_then_echo", "after-noise"), proto::Body::GcsReply,
                           &storage, &reply);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(reply->body_type(), proto::Body::GcsReply);
  EXPECT_EQ(reply->body_as_GcsReply()->request_id(), 50u);
  EXPECT_EQ(BodyOf(reply->body_as_GcsReply()), "after-noise");
  // The channel is still in sync for the next call.
  s = channel_.Call(GcsRequestFrame(51, "echo", "next"), proto::Body::GcsReply, &storage, &reply);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(reply->body_as_GcsReply()->request_id(), 51u);
}

TEST_F(ConnectionBlockingChannelTest, CallsFromSeveralThreadsAreSerialized) {
  ASSERT_TRUE(channel_.Connect(path_).ok());
  const int kThreads = 4, kCalls = 200;
  std::atomic<int> mismatches{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; i++) {
        uint64_t id = static_cast<uint64_t>(t) * 100000 + i;
        std::vector<uint64_t> storage;
        const proto::Envelope* reply = nullptr;
        Status s = channel_.Call(GcsRequestFrame(id, "echo", std::to_string(id)), proto::Body::GcsReply,
                                 &storage, &reply);
        if (!s.ok()) {
          failures++;
          continue;
        }
        auto* r = reply->body_as_GcsReply();
        if (r->request_id() != id || BodyOf(r) != std::to_string(id)) mismatches++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(ConnectionBlockingChannelTest, ReceivesPassedMemfdUsable) {
  int memfd = ::memfd_create("rayts_test", MFD_CLOEXEC);
  ASSERT_GE(memfd, 0) << std::strerror(errno);
  const std::string content = "shared store contents";
  ASSERT_EQ(::ftruncate(memfd, 4096), 0);
  ASSERT_EQ(::pwrite(memfd, content.data(), content.size(), 0), static_cast<ssize_t>(content.size()));
  pass_fd_ = memfd;

  ASSERT_TRUE(channel_.Connect(path_).ok());
  std::vector<uint64_t> storage;
  const proto::Envelope* reply = nullptr;
  int received = -2;
  Status s = channel_.Call(GcsRequestFrame(3, "fd", "with-fd"), proto::Body::GcsReply, &storage, &reply,
                           &received);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(BodyOf(reply->body_as_GcsReply()), "with-fd");
  ASSERT_GE(received, 0);
  EXPECT_NE(received, memfd);
  // The same file: same inode, same contents, and writes are shared.
  struct stat st_a {}, st_b {};
  ASSERT_EQ(::fstat(memfd, &st_a), 0);
  ASSERT_EQ(::fstat(received, &st_b), 0);
  EXPECT_EQ(st_a.st_ino, st_b.st_ino);
  EXPECT_EQ(st_b.st_size, 4096);
  std::string buf(content.size(), '\0');
  ASSERT_EQ(::pread(received, buf.data(), buf.size(), 0), static_cast<ssize_t>(buf.size()));
  EXPECT_EQ(buf, content);
  void* map = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, received, 0);
  ASSERT_NE(map, MAP_FAILED);
  std::memcpy(map, "MAPPED", 6);
  ::munmap(map, 4096);
  char back[7] = {};
  ASSERT_EQ(::pread(memfd, back, 6, 0), 6);
  EXPECT_STREQ(back, "MAPPED");
  // Received with MSG_CMSG_CLOEXEC.
  EXPECT_TRUE(::fcntl(received, F_GETFD) & FD_CLOEXEC);
  ::close(received);

  // A call without a passed fd reports -1.
  int none = -2;
  s = channel_.Call(GcsRequestFrame(4, "echo", "plain"), proto::Body::GcsReply, &storage, &reply, &none);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(none, -1);
  ::close(memfd);
}

TEST_F(ConnectionBlockingChannelTest, SendFrameWithFdOverPipeFd) {
  // Directly over a socketpair: the received pipe end is usable.
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  auto frame = GcsReplyFrame(8, 0, "pipe");
  ASSERT_TRUE(SendFrameWithFd(sv[0], frame, pipefd[1]).ok());
  ::close(pipefd[1]);  // the receiver's copy keeps the write end open

  std::vector<uint8_t> data(frame.size());
  iovec iov{data.data(), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t r = ::recvmsg(sv[1], &msg, MSG_WAITALL);
  ASSERT_EQ(r, static_cast<ssize_t>(frame.size()));
  EXPECT_EQ(std::memcmp(data.data(), frame.data(), frame.size()), 0);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->cmsg_type, SCM_RIGHTS);
  int got;
  std::memcpy(&got, CMSG_DATA(c), sizeof(int));
  ASSERT_EQ(::write(got, "ok", 2), 2);
  ::close(got);
  char buf[4] = {};
  ASSERT_EQ(::read(pipefd[0], buf, sizeof(buf)), 2);  // then EOF: all write ends closed
  EXPECT_STREQ(buf, "ok");
  EXPECT_EQ(::read(pipefd[0], buf, sizeof(buf)), 0);
  ::close(pipefd[0]);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_F(ConnectionBlockingChannelTest, FireAndForgetSendReachesServer) {
  ASSERT_TRUE(channel_.Connect(path_).ok());
  for (int i = 0; i < 10; i++) ASSERT_TRUE(channel_.Send(GcsRequestFrame(i, "notify", "")).ok());
  // A round trip after them: the server handled the earlier frames first.
  std::vector<uint64_t> storage;
  const proto::Envelope* reply;
  ASSERT_TRUE(channel_.Call(GcsRequestFrame(99, "echo", ""), proto::Body::GcsReply, &storage, &reply).ok());
  EXPECT_EQ(notifications_.load(), 10);
}

TEST_F(ConnectionBlockingChannelTest, ServerCloseMidCallIsDisconnected) {
  ASSERT_TRUE(channel_.Connect(path_).ok());
  std::vector<uint64_t> storage;
  const proto::Envelope* reply = nullptr;
  Status s = channel_.Call(GcsRequestFrame(1, "close", ""), proto::Body::GcsReply, &storage, &reply);
  EXPECT_EQ(s.code(), StatusCode::kDisconnected) << s.ToString();
}

TEST_F(ConnectionBlockingChannelTest, ClosedOrUnconnectedChannelFails) {
  BlockingChannel ch;
  std::vector<uint64_t> storage;
  const proto::Envelope* reply = nullptr;
  EXPECT_EQ(ch.Send(GcsRequestFrame(1, "echo", "")).code(), StatusCode::kDisconnected);
  EXPECT_EQ(ch.Call(GcsRequestFrame(1, "echo", ""), proto::Body::GcsReply, &storage, &reply).code(),
            StatusCode::kDisconnected);
  EXPECT_EQ(ch.Connect(dir_ + "/no-such.sock").code(), StatusCode::kIOError);
  EXPECT_EQ(ch.Connect(std::string(200, 'p')).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(ch.Connect(path_).ok());
  ch.Close();
  EXPECT_EQ(ch.fd(), -1);
  EXPECT_EQ(ch.Send(GcsRequestFrame(1, "echo", "")).code(), StatusCode::kDisconnected);
}

}  // namespace
}  // namespace rayts
