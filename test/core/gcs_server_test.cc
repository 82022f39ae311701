// GcsServer on loopback TCP: the first frame must be AuthHello with the
// token (compared in constant time), anything else closes the connection;
// bounds (handshake timeout, frame size before auth, connections per peer);
// an authenticated tool's queries are answered; a node registers, reports
// and is marked dead when it unregisters.
#include "core/gcs/gcs_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "core/common/constant_time.h"
#include "core/gcs/cluster_query.h"
#include "core/gcs/gcs_client.h"
#include "core/protocol/blocking_channel.h"

namespace rayts::gcs {
namespace {

using Fbb = flatbuffers::FlatBufferBuilder;

std::unique_ptr<GcsServer> StartServer(int handshake_ms = 5000, int per_peer = 256) {
  GcsServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.auth_token = "secret-token";
  o.handshake_timeout_ms = handshake_ms;
  o.max_connections_per_peer = per_peer;
  auto s = GcsServer::Start(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

flatbuffers::DetachedBuffer Hello(const std::string& token) {
  Fbb fbb(128);
  auto t = fbb.CreateString(token);
  return FinishFrame(fbb, proto::CreateAuthHello(fbb, t, proto::PeerRole::Tool, 1, ::getpid()));
}

// True once the server has closed the connection (read returns 0 or fails).
bool ClosedByServer(int fd) {
  char buf[256];
  for (;;) {
    ssize_t r = ::recv(fd, buf, sizeof(buf), 0);  // SO_RCVTIMEO bounds this
    if (r > 0) continue;                          // the AuthReply before the close
    return r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
}

TEST(ConstantTimeTest, Equals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

TEST(GcsServerTest, TheRightTokenIsAnsweredAWrongOneRefused) {
  auto server = StartServer();
  std::string addr = "127.0.0.1:" + std::to_string(server->port());
  auto ok = QueryClusterOverTcp(addr, "secret-token", {static_cast<int>(ClusterQuery::kNodes)}, 5000);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)[0], "[]");
  auto bad = QueryClusterOverTcp(addr, "secret-tokeX", {static_cast<int>(ClusterQuery::kNodes)}, 5000);
  EXPECT_EQ(bad.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(bad.status().message().find("refused"), std::string::npos) << bad.status().ToString();
  auto none = QueryClusterOverTcp(addr, "", {static_cast<int>(ClusterQuery::kNodes)}, 5000);
  EXPECT_EQ(none.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(server->refused(), 2u);
}

TEST(GcsServerTest, ARequestBeforeAuthClosesTheConnection) {
  auto server = StartServer();
  BlockingChannel ch;
  ASSERT_TRUE(ch.ConnectTcp("127.0.0.1", server->port(), 5000).ok());
  auto q = QueryFrame(1, static_cast<int>(ClusterQuery::kNodes));
  ASSERT_TRUE(ch.Send(*q).ok());
  EXPECT_TRUE(ClosedByServer(ch.fd()));
  EXPECT_EQ(server->refused(), 1u);
}

TEST(GcsServerTest, GarbageAndOversizedFramesAreClosed) {
  auto server = StartServer();
  for (int i = 0; i < 2; i++) {
    BlockingChannel ch;
    ASSERT_TRUE(ch.ConnectTcp("127.0.0.1", server->port(), 5000).ok());
    std::vector<uint8_t> bytes(4096, 0xab);
    if (i == 1) {
      uint32_t len = 1u << 30;  // a 1 GiB frame before authentication
      std::memcpy(bytes.data(), &len, 4);
    }
    ASSERT_EQ(::send(ch.fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
    EXPECT_TRUE(ClosedByServer(ch.fd())) << i;
  }
  // Still serving.
  std::string addr = "127.0.0.1:" + std::to_string(server->port());
  EXPECT_TRUE(QueryClusterOverTcp(addr, "secret-token", {static_cast<int>(ClusterQuery::kNodes)}, 5000).ok());
}

TEST(GcsServerTest, ASilentConnectionIsClosedAfterTheHandshakeTimeout) {
  auto server = StartServer(/*handshake_ms=*/100);
  BlockingChannel ch;
  ASSERT_TRUE(ch.ConnectTcp("127.0.0.1", server->port(), 5000).ok());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(ClosedByServer(ch.fd()));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(90));
}

TEST(GcsServerTest, ConnectionsPerPeerAreBounded) {
  auto server = StartServer(5000, /*per_peer=*/3);
  std::vector<std::unique_ptr<BlockingChannel>> open;
  for (int i = 0; i < 3; i++) {
    open.push_back(std::make_unique<BlockingChannel>());
    ASSERT_TRUE(open.back()->ConnectTcp("127.0.0.1", server->port(), 5000).ok());
    std::vector<uint64_t> storage;
    const proto::Envelope* env = nullptr;
    ASSERT_TRUE(open.back()->Call(Hello("secret-token"), proto::Body::AuthReply, &storage, &env).ok());
  }
  BlockingChannel fourth;
  ASSERT_TRUE(fourth.ConnectTcp("127.0.0.1", server->port(), 5000).ok());
  EXPECT_TRUE(ClosedByServer(fourth.fd()));
  open.pop_back();  // one closes: room again
  std::string addr = "127.0.0.1:" + std::to_string(server->port());
  bool served = false;
  for (int i = 0; i < 100 && !served; i++) {
    served = QueryClusterOverTcp(addr, "secret-token", {static_cast<int>(ClusterQuery::kNodes)}, 5000).ok();
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the close reaches the server
  }
  EXPECT_TRUE(served);
}

TEST(GcsServerTest, ANodeRegistersAndIsDeadOnceItUnregisters) {
  auto server = StartServer();
  std::string addr = "127.0.0.1:" + std::to_string(server->port());
  BlockingChannel ch;
  ASSERT_TRUE(ch.ConnectTcp("127.0.0.1", server->port(), 5000).ok());
  std::vector<uint64_t> storage;
  const proto::Envelope* env = nullptr;
  ASSERT_TRUE(ch.Call(Hello("secret-token"), proto::Body::AuthReply, &storage, &env).ok());
  ASSERT_EQ(env->body_as_AuthReply()->code(), 0);
  NodeID id = NodeID::FromRandom();
  {
    Fbb fbb(512);
    auto nid = fbb.CreateVector(id.data(), NodeID::kSize);
    std::vector<flatbuffers::Offset<proto::ResourceEntry>> res{
        proto::CreateResourceEntry(fbb, fbb.CreateString("CPU"), 3)};
    auto body = proto::CreateRegisterNodeRequest(fbb, nid, fbb.CreateString("/tmp/n.sock"), fbb.CreateString("10.0.0.9"),
                                                 fbb.CreateString("h"), false, 42, fbb.CreateString("/tmp/s"),
                                                 fbb.CreateVector(res));
    auto frame =
        FinishFrame(fbb, proto::CreateGcsRequest(fbb, 5, proto::GcsRequestBody::RegisterNodeRequest, body.Union()));
    ASSERT_TRUE(ch.Call(frame, proto::Body::GcsReply, &storage, &env).ok());
    ASSERT_EQ(env->body_as_GcsReply()->code(), 0);
  }
  auto nodes = QueryClusterOverTcp(addr, "secret-token", {static_cast<int>(ClusterQuery::kClusterResources)}, 5000);
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ((*nodes)[0], "{\"CPU\":3}");
  {
    Fbb fbb(128);
    auto nid = fbb.CreateVector(id.data(), NodeID::kSize);
    ASSERT_TRUE(ch.Send(FinishFrame(fbb, proto::CreateUnregisterNode(fbb, nid, fbb.CreateString("stopped")))).ok());
  }
  EXPECT_TRUE(ClosedByServer(ch.fd()));  // the GCS closes a dead node's connection
  auto after = QueryClusterOverTcp(addr, "secret-token", {static_cast<int>(ClusterQuery::kNodes)}, 5000);
  ASSERT_TRUE(after.ok());
  EXPECT_NE((*after)[0].find("\"alive\":false"), std::string::npos) << (*after)[0];
  EXPECT_NE((*after)[0].find("\"deathReason\":\"stopped\""), std::string::npos) << (*after)[0];
}

}  // namespace
}  // namespace rayts::gcs
