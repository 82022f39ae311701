// LoopTransport over real unix sockets, driven by an AsioLoop thread: frames
// in order, batches larger than a socket buffer, closes reported once,
// garbage refused, timers, posts, and the stall service (ServiceNow) reading
// while the loop thread is blocked.
#include "core/core_worker/loop_transport.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "core/core_worker/asio_loop.h"
#include "test/core/fake_transport.h"
#include "test/core/test_util.h"

namespace rayts {
namespace {

using namespace std::chrono_literals;
using test::WorkerExitingFrame;

using test::WaitFor;  // the tests' only wait

// One side: a context, an AsioLoop thread and a LoopTransport over it.
struct Side {
  explicit Side(bool driver = true) : ctx(Opts(driver)), transport(ctx, loop) {}
  ~Side() {
    loop.RunAndWait([this] { transport.Stop(); }, 5000ms);
    loop.Stop();
  }
  static CoreWorkerOptions Opts(bool driver) {
    CoreWorkerOptions o;
    o.is_driver = driver;
    return o;
  }
  WorkerContext ctx;
  AsioLoop loop;
  LoopTransport transport;
};

class LoopTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("rayts-loop-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) { return (dir_ / name).string(); }

  // The server side records the codes of the WorkerExiting frames it gets.
  void Serve(Side& server, const std::string& path) {
    InboundHandlers h;
    h.on_accept = [this](const std::shared_ptr<Link>& l) { accepted_links_.push_back(l); };
    h.on_message = [this](const std::shared_ptr<Link>&, const proto::Envelope& e) {
      if (e.body_type() == proto::Body::WorkerExiting) received_.push_back(e.body_as_WorkerExiting()->code());
      count_.fetch_add(1);
    };
    h.on_closed = [this](const std::shared_ptr<Link>&) { inbound_closed_.fetch_add(1); };
    ASSERT_TRUE(server.transport.Listen(path, std::move(h)).ok());
    server.loop.Run();
  }

  // A connection from `client` (its loop running) to `path`.
  static std::shared_ptr<Link> Dial(Side& client, const std::string& path) {
    CoreGuard lock(client.ctx);
    return client.transport.Connect(path, [](const proto::Envelope&) {}, [](const Status&) {});
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::vector<int> received_;  // server loop thread (core lock)
  std::vector<std::shared_ptr<Link>> accepted_links_;
  std::atomic<int> count_{0};
  std::atomic<int> inbound_closed_{0};
};

TEST_F(LoopTransportTest, FramesArriveInOrderAndLargeBatchesSurviveAFullSocket) {
  Side server, client;
  std::string path = Path("s.sock");
  Serve(server, path);
  client.loop.Run();
  std::shared_ptr<Link> link = Dial(client, path);
  ASSERT_NE(link, nullptr);
  {
    CoreGuard lock(client.ctx);
    // ~100k frames from a host turn: far more than a socket buffer holds, so
    // the write stops on EAGAIN and finishes on the writable event.
    for (int i = 0; i < 100000; i++) link->Send(WorkerExitingFrame(i));
  }
  EXPECT_TRUE(client.transport.TakeHostFlushRequest());
  client.transport.FlushHost();
  ASSERT_TRUE(WaitFor([&] { return count_.load() == 100000; }, 20000ms)) << count_.load();
  CoreGuard lock(server.ctx);
  for (int i = 0; i < 100000; i++) ASSERT_EQ(received_[i], i);
}

TEST_F(LoopTransportTest, PeerCloseRunsTheCloseHandlerOnceAndDroppingALinkClosesIt) {
  Side server, client;
  std::string path = Path("s.sock");
  Serve(server, path);
  client.loop.Run();
  std::atomic<int> closes{0};
  std::shared_ptr<Link> link;
  {
    CoreGuard lock(client.ctx);
    link = client.transport.Connect(path, [](const proto::Envelope&) {}, [&](const Status&) { closes.fetch_add(1); });
    ASSERT_NE(link, nullptr);
  }
  ASSERT_TRUE(WaitFor([&] { CoreGuard l(server.ctx); return accepted_links_.size() == 1; }));
  {
    CoreGuard lock(server.ctx);
    accepted_links_[0]->Close();  // the server closes its side
    accepted_links_.clear();
  }
  ASSERT_TRUE(WaitFor([&] { return closes.load() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return inbound_closed_.load() == 1; }));
  {
    CoreGuard lock(client.ctx);
    EXPECT_TRUE(link->closed());
    link->Send(WorkerExitingFrame(1));  // dropped, not an error
  }
  std::this_thread::sleep_for(20ms);  // a second close report would come in this time
  EXPECT_EQ(closes.load(), 1);

  // A second connection, dropped by its holder: the server sees it close.
  {
    CoreGuard lock(client.ctx);
    auto l2 = client.transport.Connect(path, [](const proto::Envelope&) {}, [](const Status&) {});
    ASSERT_NE(l2, nullptr);
  }
  ASSERT_TRUE(WaitFor([&] { return inbound_closed_.load() == 2; }));
}

TEST_F(LoopTransportTest, GarbageOnTheSocketClosesThatConnectionOnly) {
  Side server;
  std::string path = Path("s.sock");
  Serve(server, path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const char junk[] = "\x10\x00\x00\x00 this is not a flatbuffer";
  ASSERT_GT(::write(fd, junk, sizeof(junk)), 0);
  ASSERT_TRUE(WaitFor([&] { return inbound_closed_.load() == 1; }));
  char c;
  EXPECT_EQ(::read(fd, &c, 1), 0);  // closed by the server
  ::close(fd);
  // The listener lives on.
  Side client;
  client.loop.Run();
  {
    CoreGuard lock(client.ctx);
    auto l = client.transport.Connect(path, [](const proto::Envelope&) {}, [](const Status&) {});
    ASSERT_NE(l, nullptr);
    l->Send(WorkerExitingFrame(7));
  }
  client.transport.FlushHost();
  ASSERT_TRUE(WaitFor([&] { return count_.load() == 1; }));
}

TEST_F(LoopTransportTest, TimersFireOnceReArmReplacesAndCancelStops) {
  Side side;
  side.loop.Run();
  std::atomic<int> a{0}, b{0}, c{0};
  std::unique_ptr<Timer> t1, t2;
  {
    CoreGuard lock(side.ctx);
    t1 = side.transport.NewTimer();
    t2 = side.transport.NewTimer();
    t1->Arm(1h, [&] { a.fetch_add(1); });
    t1->Arm(5ms, [&] { b.fetch_add(1); });  // replaces the first
    t2->Arm(5ms, [&] { c.fetch_add(1); });
    t2->Cancel();
  }
  ASSERT_TRUE(WaitFor([&] { return b.load() == 1; }));
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(a.load(), 0);
  EXPECT_EQ(b.load(), 1);
  EXPECT_EQ(c.load(), 0);
  CoreGuard lock(side.ctx);
  t1.reset();
  t2.reset();
}

TEST_F(LoopTransportTest, PostRunsAfterTheCurrentHandlerAndItsFramesAreWritten) {
  Side server, client;
  std::string path = Path("s.sock");
  Serve(server, path);
  client.loop.Run();
  std::vector<std::string> order;
  std::shared_ptr<Link> link;
  {
    CoreGuard lock(client.ctx);
    link = client.transport.Connect(path, [](const proto::Envelope&) {}, [](const Status&) {});
    client.transport.Post([&] {
      order.push_back("posted");
      link->Send(WorkerExitingFrame(42));  // written at the end of the posted turn
    });
    order.push_back("caller");
  }
  ASSERT_TRUE(WaitFor([&] { return count_.load() == 1; }));
  CoreGuard lock(client.ctx);
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], "caller");
  EXPECT_EQ(order[1], "posted");
}

TEST_F(LoopTransportTest, ServiceNowReadsWhileTheLoopThreadIsBusy) {
  Side server, client;
  std::string path = Path("s.sock");
  Serve(server, path);
  client.loop.Run();
  std::shared_ptr<Link> link = Dial(client, path);
  ASSERT_NE(link, nullptr);
  ASSERT_TRUE(WaitFor([&] { CoreGuard l(server.ctx); return accepted_links_.size() == 1; }));
  // Block the server's loop thread, as a long synchronous JS task would.
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> blocked{false};
  server.loop.Soon([&, released] {
    blocked = true;
    released.wait();
  });
  ASSERT_TRUE(WaitFor([&] { return blocked.load(); }));
  {
    CoreGuard lock(client.ctx);
    link->Send(WorkerExitingFrame(5));
  }
  client.transport.FlushHost();
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(count_.load(), 0);  // the loop thread cannot read it
  server.transport.ServiceNow();  // from this thread
  EXPECT_EQ(count_.load(), 1);
  release.set_value();
}

TEST_F(LoopTransportTest, ThirtyTwoQueuedFramesGoOutWithoutWaitingForTheFlush) {
  Side server, client;
  std::string path = Path("s.sock");
  Serve(server, path);
  client.loop.Run();
  std::shared_ptr<Link> link = Dial(client, path);
  ASSERT_NE(link, nullptr);
  {
    CoreGuard lock(client.ctx);
    for (int i = 0; i < 40; i++) link->Send(WorkerExitingFrame(i));
  }
  // No FlushHost: the first 32 were written as the 32nd was queued.
  ASSERT_TRUE(WaitFor([&] { return count_.load() == 32; }));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(count_.load(), 32);
  client.transport.FlushHost();
  ASSERT_TRUE(WaitFor([&] { return count_.load() == 40; }));
}

TEST_F(LoopTransportTest, AQueueToAPeerThatDoesNotReadIsBoundedAndTheConnectionClosedAsFailed) {
  // A peer that accepts and never reads.
  std::string path = Path("mute.sock");
  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  Side client;
  client.transport.set_max_queued_bytes(1 << 20);
  client.loop.Run();
  std::promise<std::string> why;
  std::shared_ptr<Link> link;
  {
    CoreGuard lock(client.ctx);
    link = client.transport.Connect(path, [](const proto::Envelope&) {},
                                    [&](const Status& s) { why.set_value(s.message()); });
    ASSERT_NE(link, nullptr);
  }
  int afd = ::accept(lfd, nullptr, nullptr);
  ASSERT_GE(afd, 0);
  std::string big(16 * 1024, 'x');
  size_t sent = 0;
  bool closed = false;
  for (int i = 0; i < 1000 && !closed; i++) {
    CoreGuard lock(client.ctx);
    flatbuffers::FlatBufferBuilder fbb(big.size() + 64);
    auto frame = FinishFrame(fbb, proto::CreateWorkerExiting(fbb, 1, fbb.CreateString(big)));
    sent += frame.size();
    link->Send(std::move(frame));
    closed = link->closed();
  }
  EXPECT_TRUE(closed) << "still open after " << sent << " bytes";
  EXPECT_GT(sent, size_t{1} << 20) << "closed before the bound";
  EXPECT_LT(sent, size_t{3} << 20) << "the bound plus what the socket buffers";
  auto f = why.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_NE(f.get().find("the peer does not read"), std::string::npos);
  ::close(afd);
  ::close(lfd);
}

}  // namespace
}  // namespace rayts
