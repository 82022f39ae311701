// LoopTransport over TCP (cluster mode): a peer of another node is reached
// over TCP with the cluster token in the first frame, one of the same node
// over its unix socket; an accepted TCP connection with a wrong token, a
// first frame that is not AuthHello, or no frame within the handshake
// timeout is closed, and nothing it sent reaches the handlers.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "core/core_worker/asio_loop.h"
#include "core/core_worker/loop_transport.h"
#include "core/protocol/connection.h"
#include "core/protocol/peer_address.h"
#include "test/core/fake_transport.h"
#include "test/core/test_util.h"

namespace rayts {
namespace {

using namespace std::chrono_literals;
using test::WorkerExitingFrame;

using test::WaitFor;

struct Side {
  Side() : ctx(CoreWorkerOptions{}), transport(ctx, loop) {}
  ~Side() {
    loop.RunAndWait([this] { transport.Stop(); }, 5000ms);
    loop.Stop();
  }
  WorkerContext ctx;
  AsioLoop loop;
  LoopTransport transport;
};

class LoopTransportTcpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = std::filesystem::temp_directory_path() / ("rayts-tcp-" + std::to_string(::getpid()) + "-" +
                                                      std::to_string(counter_++));
    std::filesystem::create_directories(base_ / "node1");
    std::filesystem::create_directories(base_ / "node2");
  }
  void TearDown() override { std::filesystem::remove_all(base_); }

  // The server: node1's socket and TCP at 127.0.0.1; counts what it gets.
  std::string Serve(Side& s, PeerLimits limits = {}) {
    std::string path = (base_ / "node1" / "s.sock").string();
    InboundHandlers h;
    h.on_accept = [this](const std::shared_ptr<Link>& l) { accepted_remote_ = l->remote(); };
    h.on_message = [this](const std::shared_ptr<Link>&, const proto::Envelope& e) {
      if (e.body_type() == proto::Body::WorkerExiting) {
        if (e.body_as_WorkerExiting()->code() != next_.load()) in_order_ = false;
        next_.fetch_add(1);
      }
    };
    h.on_closed = [this](const std::shared_ptr<Link>&) { closed_.fetch_add(1); };
    EXPECT_TRUE(s.transport.Listen(path, std::move(h)).ok());
    auto port = s.transport.ListenTcp("127.0.0.1", 0, limits);
    EXPECT_TRUE(port.ok());
    port_ = *port;
    std::string address = JoinPeerAddress(path, "127.0.0.1", port_);
    s.transport.SetSelfAddress(address);
    s.transport.SetAuthToken("the-token");
    s.loop.Run();
    return address;
  }

  // A client of node `node` with `token`.
  std::shared_ptr<Link> Dial(Side& c, const std::string& node, const std::string& token, const std::string& to) {
    c.transport.SetSelfAddress(JoinPeerAddress((base_ / node / "c.sock").string(), "127.0.0.1", 1));
    c.transport.SetAuthToken(token);
    c.loop.Run();
    CoreGuard lock(c.ctx);
    return c.transport.Connect(to, [](const proto::Envelope&) {}, [this](const Status&) { client_closed_ = true; });
  }

  static inline int counter_ = 0;
  std::filesystem::path base_;
  int port_ = 0;
  std::atomic<int> next_{0};
  std::atomic<bool> in_order_{true};
  std::atomic<int> closed_{0};
  std::atomic<bool> accepted_remote_{false};
  std::atomic<bool> client_closed_{false};
};

TEST_F(LoopTransportTcpTest, APeerOfAnotherNodeIsReachedOverTcpWithTheToken) {
  Side server, client;
  std::string address = Serve(server);
  auto link = Dial(client, "node2", "the-token", address);
  ASSERT_NE(link, nullptr);
  EXPECT_TRUE(link->remote());
  {
    CoreGuard lock(client.ctx);
    for (int i = 0; i < 20000; i++) link->Send(WorkerExitingFrame(i));
  }
  client.transport.FlushHost();
  ASSERT_TRUE(WaitFor([&] { return next_.load() == 20000; }, 20000ms)) << next_.load();
  EXPECT_TRUE(in_order_.load());
  EXPECT_TRUE(accepted_remote_.load());
}

TEST_F(LoopTransportTcpTest, APeerOfTheSameNodeIsReachedOverItsUnixSocket) {
  Side server, client;
  std::string address = Serve(server);
  auto link = Dial(client, "node1", "the-token", address);
  ASSERT_NE(link, nullptr);
  EXPECT_FALSE(link->remote());
  {
    CoreGuard lock(client.ctx);
    link->Send(WorkerExitingFrame(0));
  }
  client.transport.FlushHost();
  ASSERT_TRUE(WaitFor([&] { return next_.load() == 1; }));
  EXPECT_FALSE(accepted_remote_.load());
}

TEST_F(LoopTransportTcpTest, AWrongTokenIsClosedAndNothingItSentIsHandled) {
  Side server, client;
  std::string address = Serve(server);
  auto link = Dial(client, "node2", "not-the-token", address);
  ASSERT_NE(link, nullptr);
  {
    CoreGuard lock(client.ctx);
    for (int i = 0; i < 10; i++) link->Send(WorkerExitingFrame(i));
  }
  client.transport.FlushHost();
  ASSERT_TRUE(WaitFor([&] { return closed_.load() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return client_closed_.load(); }));
  EXPECT_EQ(next_.load(), 0);
}

TEST_F(LoopTransportTcpTest, AnotherFirstFrameOrSilenceIsClosed) {
  Side server;
  PeerLimits limits;
  limits.handshake_timeout_ms = 200;
  Serve(server, limits);
  // A frame that is not AuthHello first.
  auto garbage = ConnectTcpFd("127.0.0.1", port_, 2000);
  ASSERT_TRUE(garbage.ok());
  auto frame = WorkerExitingFrame(7);
  ASSERT_EQ(::send(*garbage, frame.data(), frame.size(), MSG_NOSIGNAL), static_cast<ssize_t>(frame.size()));
  char buf[16];
  EXPECT_EQ(::recv(*garbage, buf, sizeof(buf), 0), 0);  // closed by the server
  ::close(*garbage);
  // Nothing at all: closed after the handshake timeout.
  auto silent = ConnectTcpFd("127.0.0.1", port_, 2000);
  ASSERT_TRUE(silent.ok());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(::recv(*silent, buf, sizeof(buf), 0), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3000ms);
  ::close(*silent);
  EXPECT_TRUE(WaitFor([&] { return closed_.load() == 2; }));
  EXPECT_EQ(next_.load(), 0);
}

TEST(PeerAddress, ParsesTheThreeFormsAndTellsNodesApart) {
  PeerAddress a = ParsePeerAddress("/tmp/s1/sockets/w.sock@10.0.0.5:4242");
  EXPECT_EQ(a.path, "/tmp/s1/sockets/w.sock");
  EXPECT_EQ(a.host, "10.0.0.5");
  EXPECT_EQ(a.port, 4242);
  PeerAddress t = ParsePeerAddress("10.0.0.6:7000");
  EXPECT_TRUE(t.path.empty());
  EXPECT_EQ(t.port, 7000);
  PeerAddress u = ParsePeerAddress("/tmp/s1/sockets/driver.sock");
  EXPECT_FALSE(u.has_tcp());
  EXPECT_EQ(ParsePeerAddress("[::1]:80").host, "::1");
  EXPECT_TRUE(SameNode("/tmp/s1/sockets/a.sock@127.0.0.1:1", "/tmp/s1/sockets/b.sock@127.0.0.1:2"));
  EXPECT_FALSE(SameNode("/tmp/s1/sockets/a.sock@127.0.0.1:1", "/tmp/s2/sockets/b.sock@127.0.0.1:2"));
  EXPECT_TRUE(SameNode("/tmp/s1/sockets/a.sock", "/tmp/s2/sockets/b.sock"));  // embedded: one node
  EXPECT_FALSE(SameNode("127.0.0.1:7000", "/tmp/s1/sockets/b.sock@127.0.0.1:2"));
}

}  // namespace
}  // namespace rayts
