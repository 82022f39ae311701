// NodeServer over its real socket: a registration that is refused changes
// nothing (no store fd, no record, no worker killed or copies dropped when
// the refused connection closes), and a client's get timeout cannot
// overflow the store's timer (2^62 ms waits like any long timeout).
#include "core/raylet/node_server.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "core/core_worker/core_worker.h"
#include "core/protocol/blocking_channel.h"

namespace rayts {
namespace {

namespace fs = std::filesystem;
using Fbb = flatbuffers::FlatBufferBuilder;

// A RegisterClient frame as any process could write it (the claimed pid included).
Frame Register(const WorkerID& wid, bool driver, bool control, int claimed_pid) {
  Fbb fbb(256);
  auto w = fbb.CreateVector(wid.data(), WorkerID::kSize);
  auto path = fbb.CreateString("/nowhere.sock");
  return FinishFrame(fbb, proto::CreateRegisterClient(fbb, w, driver, claimed_pid, path, 0, control));
}

WorkerID FromHex(const std::string& hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size() && bytes.size() < WorkerID::kSize; i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes.size() == WorkerID::kSize ? WorkerID::FromBinary(bytes) : WorkerID::Nil();
}

// The worker id a child of this process was launched with (RAYTS_WORKER_ID in its environment).
std::optional<std::pair<int, WorkerID>> LaunchedChild() {
  for (auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(line.c_str() + close + 2, "%c %d", &state, &ppid) != 2 || ppid != ::getpid()) continue;
    std::ifstream env(e.path() / "environ");
    std::string var;
    while (std::getline(env, var, '\0')) {
      if (var.rfind("RAYTS_WORKER_ID=", 0) == 0) return std::make_pair(std::stoi(name), FromHex(var.substr(16)));
    }
  }
  return std::nullopt;
}

class NodeServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rayts_ns_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(dir_ / "sockets");
    raylet::NodeServerOptions o;
    o.socket_path = Socket();
    o.session_dir = dir_.string();
    o.store_bytes = 8 << 20;
    o.resources = {{"CPU", 1}};
    // A "worker" that never registers: the pool launches it and waits.
    o.worker_argv = {"/bin/sleep", "30"};
    o.prestart_workers = 1;
    o.max_workers = 1;
    o.memory_monitor_period_ms = 0;
    auto ns = raylet::NodeServer::Start(o);
    ASSERT_TRUE(ns.ok()) << ns.status().ToString();
    node_ = std::move(ns).value();
    CoreWorkerOptions w;
    w.node_socket = Socket();
    w.listen_path = (dir_ / "sockets" / "driver.sock").string();
    w.is_driver = true;
    auto cw = CoreWorker::Start(w);  // registers: the node prestarts its worker
    ASSERT_TRUE(cw.ok()) << cw.status().ToString();
    driver_ = std::move(cw).value();
  }
  void TearDown() override {
    if (driver_) driver_->Shutdown();
    driver_.reset();
    if (node_) node_->Stop();
    node_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Socket() const { return (dir_ / "sockets" / "node.sock").string(); }
  // Registers on a fresh connection; the reply's code, and whether a store fd came with it.
  std::pair<int, bool> TryRegister(BlockingChannel& ch, const Frame& frame, std::string* message = nullptr) {
    EXPECT_TRUE(ch.Connect(Socket()).ok());
    std::vector<uint64_t> storage;
    const proto::Envelope* env = nullptr;
    int fd = -1;
    Status s = ch.Call(frame, proto::Body::RegisterReply, &storage, &env, &fd);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return {-1, false};
    if (fd >= 0) ::close(fd);
    if (message && env->body_as_RegisterReply()->message()) *message = env->body_as_RegisterReply()->message()->str();
    return {env->body_as_RegisterReply()->code(), fd >= 0};
  }
  // The io thread has handled everything before this call (a round trip to it).
  void Sync() { (void)node_->StatsJson(); }
  template <typename F>
  static bool Eventually(F f) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!f()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  static inline int counter_ = 0;
  fs::path dir_;
  std::unique_ptr<raylet::NodeServer> node_;
  std::unique_ptr<CoreWorker> driver_;
};

TEST_F(NodeServerTest, AWorkerIdClaimedByAnotherProcessIsRefusedWithoutTheStoreAndTheWorkerLivesOn) {
  std::optional<std::pair<int, WorkerID>> child;
  ASSERT_TRUE(Eventually([&] { return (child = LaunchedChild()).has_value(); })) << "the prestarted worker";
  auto [pid, wid] = *child;
  {
    // This process claims the worker's id and even its pid: the kernel says who it is.
    BlockingChannel spoof;
    std::string why;
    auto [code, got_fd] = TryRegister(spoof, Register(wid, /*driver=*/false, /*control=*/false, pid), &why);
    EXPECT_NE(code, 0);
    EXPECT_FALSE(got_fd) << "a refused registration must not get the store";
    EXPECT_NE(why.find("started as pid " + std::to_string(pid)), std::string::npos) << why;
    // A control connection under that id is refused too (no plasma channel of this process).
    BlockingChannel spoof_control;
    auto [code2, fd2] = TryRegister(spoof_control, Register(wid, false, /*control=*/true, pid));
    EXPECT_NE(code2, 0);
  }  // both close
  Sync();
  EXPECT_EQ(::kill(pid, 0), 0) << "the refused connections' close killed the real worker";
  std::string stats = node_->StatsJson();
  EXPECT_NE(stats.find("\"workers\":1"), std::string::npos) << "the pool still has its worker: " << stats;
  EXPECT_NE(stats.find("\"idleWorkers\":0"), std::string::npos) << "and it is still starting: " << stats;
}

TEST_F(NodeServerTest, ASecondControlConnectionUnderADriversIdIsRefusedAndItsCloseDropsNoCopies) {
  ObjectID id = ObjectID::FromRandom();
  ASSERT_TRUE(driver_->plasma().Create(id, 64, false).ok());
  ASSERT_TRUE(driver_->plasma().Seal(id).ok());
  {
    BlockingChannel spoof;  // same process, same id as the driver's control connection
    auto [code, got_fd] = TryRegister(spoof, Register(driver_->context().worker_id(), true, true, ::getpid()));
    EXPECT_NE(code, 0);
    EXPECT_FALSE(got_fd);
  }
  Sync();
  EXPECT_TRUE(driver_->plasma().Contains(id)) << "the refused connection's close freed the driver's copies";
  // A registration without a worker id is refused as well.
  BlockingChannel nil;
  EXPECT_NE(TryRegister(nil, Register(WorkerID::Nil(), true, false, ::getpid())).first, 0);
}

TEST_F(NodeServerTest, AGetWithAHugeTimeoutWaitsForTheObjectInsteadOfOverflowing) {
  BlockingChannel reader;
  ASSERT_EQ(TryRegister(reader, Register(WorkerID::FromRandom(), true, false, ::getpid())).first, 0);
  ObjectID id = ObjectID::FromRandom();
  Fbb fbb(128);
  auto ids = fbb.CreateVector(id.data(), ObjectID::kSize);
  ASSERT_TRUE(reader.Send(FinishFrame(fbb, proto::CreatePlasmaGet(fbb, 7, ids, int64_t{1} << 62))).ok());
  Sync();  // the get is waiting in the store now
  ASSERT_TRUE(driver_->plasma().Create(id, 64, false).ok());
  ASSERT_TRUE(driver_->plasma().Seal(id).ok());
  // The first reply on the channel is the long get's: found, not timed out at once.
  Fbb probe(128);
  auto pid = probe.CreateVector(id.data(), ObjectID::kSize);
  std::vector<uint64_t> storage;
  const proto::Envelope* env = nullptr;
  ASSERT_TRUE(reader.Call(FinishFrame(probe, proto::CreatePlasmaGet(probe, 8, pid, 0)), proto::Body::PlasmaGetReply,
                          &storage, &env).ok());
  auto* r = env->body_as_PlasmaGetReply();
  EXPECT_EQ(r->request_id(), 7u);
  ASSERT_EQ(r->objects()->size(), 1u);
  EXPECT_TRUE(r->objects()->Get(0)->found());
  EXPECT_EQ(raylet::PlasmaService::GetTimeout(int64_t{1} << 62).count(), raylet::PlasmaService::kMaxGetTimeoutMs);
  EXPECT_EQ(raylet::PlasmaService::GetTimeout(-5).count(), 0);
}

}  // namespace
}  // namespace rayts
