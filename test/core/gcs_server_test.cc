// GcsServer on loopback TCP: the first frame must be AuthHello with the
// token (compared in constant time), anything else closes the connection;
// bounds (handshake timeout, frame size before auth, connections per peer);
// an authenticated tool's queries are answered; a node registers, reports
// and is marked dead when it unregisters, which every other node hears at
// once (NodeDied), and a node that was away hears when it registers again.
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

// A node connected, authenticated and registered over `ch`, its node
// server at `manager` (the address other nodes' owners lease at).
void RegisterNode(BlockingChannel& ch, int port, const NodeID& id, const std::string& manager) {
  ASSERT_TRUE(ch.ConnectTcp("127.0.0.1", port, 5000).ok());
  std::vector<uint64_t> storage;
  const proto::Envelope* env = nullptr;
  ASSERT_TRUE(ch.Call(Hello("secret-token"), proto::Body::AuthReply, &storage, &env).ok());
  Fbb fbb(512);
  auto nid = fbb.CreateVector(id.data(), NodeID::kSize);
  std::vector<flatbuffers::Offset<proto::ResourceEntry>> res{proto::CreateResourceEntry(fbb, fbb.CreateString("CPU"), 2)};
  auto body = proto::CreateRegisterNodeRequest(fbb, nid, fbb.CreateString("/tmp/n.sock"), fbb.CreateString("10.0.0.9"),
                                               fbb.CreateString("h"), false, 42, fbb.CreateString("/tmp/s"),
                                               fbb.CreateVector(res), fbb.CreateString(manager));
  auto frame = FinishFrame(fbb, proto::CreateGcsRequest(fbb, 5, proto::GcsRequestBody::RegisterNodeRequest, body.Union()));
  ASSERT_TRUE(ch.Call(frame, proto::Body::GcsReply, &storage, &env).ok());
  ASSERT_EQ(env->body_as_GcsReply()->code(), 0);
}

TEST(GcsServerTest, EveryNodeGetsTheViewsThatChangedBatchedAndANewcomerGetsThemAll) {
  auto server = StartServer();
  NodeID a_id = NodeID::FromRandom(), b_id = NodeID::FromRandom();
  BlockingChannel a, b;
  RegisterNode(a, server->port(), a_id, "10.0.0.1:7001");
  RegisterNode(b, server->port(), b_id, "10.0.0.2:7002");
  std::vector<uint64_t> storage;
  const proto::Envelope* env = nullptr;
  // The newcomer's first view holds every alive node, a included.
  Fbb ping(64);
  auto pong = FinishFrame(ping, proto::CreateHealthCheckReply(ping, 0));
  ASSERT_TRUE(b.Call(pong, proto::Body::ResourceViewUpdate, &storage, &env).ok());
  auto* full = env->body_as_ResourceViewUpdate();
  EXPECT_TRUE(full->full());
  bool saw_a = false;
  for (auto* v : *full->views()) saw_a = saw_a || NodeID::FromBytes(v->node_id()->data()) == a_id;
  EXPECT_TRUE(saw_a);
  // b's new free resources (version 3) reach a in a broadcast, with b's node server address.
  Fbb fbb(256);
  auto nid = fbb.CreateVector(b_id.data(), NodeID::kSize);
  std::vector<flatbuffers::Offset<proto::ResourceEntry>> avail{proto::CreateResourceEntry(fbb, fbb.CreateString("CPU"), 1)};
  ASSERT_TRUE(b.Send(FinishFrame(fbb, proto::CreateNodeResourceReport(fbb, nid, 3, fbb.CreateVector(avail)))).ok());
  bool got = false;
  for (int i = 0; i < 50 && !got; i++) {
    Fbb p(64);
    ASSERT_TRUE(a.Call(FinishFrame(p, proto::CreateHealthCheckReply(p, 0)), proto::Body::ResourceViewUpdate, &storage,
                       &env).ok());
    for (auto* v : *env->body_as_ResourceViewUpdate()->views()) {
      if (NodeID::FromBytes(v->node_id()->data()) != b_id || v->version() != 3) continue;
      got = true;
      EXPECT_TRUE(v->alive());
      EXPECT_EQ(v->address()->str(), "10.0.0.2:7002");
      ASSERT_EQ(v->available()->size(), 1u);
      EXPECT_EQ(v->available()->Get(0)->amount(), 1);
      EXPECT_EQ(v->total()->Get(0)->amount(), 2);
    }
  }
  EXPECT_TRUE(got);
}

// The node registered over `ch` stops on purpose.
void Unregister(BlockingChannel& ch, const NodeID& id, const std::string& reason) {
  Fbb fbb(128);
  auto nid = fbb.CreateVector(id.data(), NodeID::kSize);
  ASSERT_TRUE(ch.Send(FinishFrame(fbb, proto::CreateUnregisterNode(fbb, nid, fbb.CreateString(reason)))).ok());
}

// `env` is NodeDied for the node `id` registered by RegisterNode at `manager`.
void ExpectNodeDied(const proto::Envelope& env, const NodeID& id, const std::string& manager, const std::string& reason) {
  auto* d = env.body_as_NodeDied();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(NodeID::FromBytes(d->node_id()->data()), id);
  EXPECT_EQ(d->address()->str(), "/tmp/n.sock");
  EXPECT_EQ(d->node_manager_address()->str(), manager);
  EXPECT_EQ(d->reason()->str(), reason);
}

TEST(GcsServerTest, ANodeMarkedDeadIsAnnouncedToEveryOtherNodeAtOnce) {
  auto server = StartServer();
  NodeID a_id = NodeID::FromRandom(), b_id = NodeID::FromRandom();
  BlockingChannel a, b;
  RegisterNode(a, server->port(), a_id, "10.0.0.1:7001");
  RegisterNode(b, server->port(), b_id, "10.0.0.2:7002");
  Unregister(b, b_id, "stopped");
  std::vector<uint64_t> storage;
  const proto::Envelope* env = nullptr;
  Fbb p(64);
  Status got = a.Call(FinishFrame(p, proto::CreateHealthCheckReply(p, 0)), proto::Body::NodeDied, &storage, &env);
  ASSERT_TRUE(got.ok()) << got.ToString();
  ExpectNodeDied(*env, b_id, "10.0.0.2:7002", "stopped");
}

TEST(GcsServerTest, ANodeThatWasAwayHearsOfTheDeathsItMissedWhenItRegistersAgain) {
  auto server = StartServer();
  NodeID a_id = NodeID::FromRandom(), b_id = NodeID::FromRandom(), c_id = NodeID::FromRandom();
  BlockingChannel a, b, c;
  RegisterNode(a, server->port(), a_id, "10.0.0.1:7001");
  RegisterNode(b, server->port(), b_id, "10.0.0.2:7002");
  RegisterNode(c, server->port(), c_id, "10.0.0.3:7003");
  c.Close();  // c loses the GCS
  Unregister(b, b_id, "stopped");
  std::vector<uint64_t> storage;
  const proto::Envelope* env = nullptr;
  Fbb p(64);
  auto pong = FinishFrame(p, proto::CreateHealthCheckReply(p, 0));
  ASSERT_TRUE(a.Call(pong, proto::Body::NodeDied, &storage, &env).ok());  // b is dead now; c was away
  // c's link reconnects and registers again: b's death follows its full view.
  BlockingChannel c2;
  RegisterNode(c2, server->port(), c_id, "10.0.0.3:7003");
  ASSERT_TRUE(c2.Call(pong, proto::Body::ResourceViewUpdate, &storage, &env).ok());
  EXPECT_TRUE(env->body_as_ResourceViewUpdate()->full());
  Status got = c2.Call(pong, proto::Body::NodeDied, &storage, &env);
  ASSERT_TRUE(got.ok()) << got.ToString();
  ExpectNodeDied(*env, b_id, "10.0.0.2:7002", "stopped");
}

}  // namespace
}  // namespace rayts::gcs
