// GcsLink against a GcsServer on loopback TCP: the node registers, its
// reports reach the node table, a local client's forwarded request is
// answered through the link, and when the GCS goes away the link answers
// Unavailable and, past its reconnect timeout, reports itself fatal.
#include "core/raylet/gcs_link.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/gcs/cluster_query.h"
#include "core/gcs/gcs_client.h"
#include "core/gcs/gcs_server.h"

namespace rayts::raylet {
namespace {

struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> delivered;
  Status fatal;
  bool fatal_set = false;
  template <typename Pred>
  bool WaitFor(Pred p, int ms = 10000) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::milliseconds(ms), p);
  }
};

TEST(GcsLinkTest, RegistersReportsForwardsAndGivesUpWhenTheGcsIsGone) {
  gcs::GcsServerOptions so;
  so.host = "127.0.0.1";
  so.port = 0;
  so.auth_token = "t0ken";
  auto server = gcs::GcsServer::Start(so);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  std::string addr = "127.0.0.1:" + std::to_string((*server)->port());

  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  Recorder rec;
  GcsLink::Options lo;
  lo.address = addr;
  lo.token = "t0ken";
  lo.report_period_ms = 20;
  lo.reconnect_timeout_ms = 300;
  lo.self.node_id = NodeID::FromRandom();
  lo.self.address = "/tmp/n.sock";
  lo.self.resources = {{"CPU", 2}};
  GcsLink::Hooks hooks;
  hooks.deliver = [&](uint64_t client, flatbuffers::DetachedBuffer f) {
    std::lock_guard<std::mutex> lock(rec.mu);
    rec.delivered.emplace_back(client, std::vector<uint8_t>(f.data(), f.data() + f.size()));
    rec.cv.notify_all();
  };
  hooks.available = [] { return GcsLink::Resources{{"CPU", 1.5}}; };
  hooks.fatal = [&](const Status& s) {
    std::lock_guard<std::mutex> lock(rec.mu);
    rec.fatal = s;
    rec.fatal_set = true;
    rec.cv.notify_all();
  };
  GcsLink link(io, lo, hooks);
  ASSERT_TRUE(link.Connect().ok());
  std::thread t([&] { io.run(); });

  // The report reaches the GCS: 1.5 of 2 CPUs free.
  bool reported = false;
  for (int i = 0; i < 200 && !reported; i++) {
    auto r = gcs::QueryClusterOverTcp(addr, "t0ken", {static_cast<int>(gcs::ClusterQuery::kAvailableResources)}, 2000);
    reported = r.ok() && (*r)[0] == "{\"CPU\":1.5}";
    if (!reported) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the next report period
  }
  EXPECT_TRUE(reported);

  // A local client's request, forwarded; the answer comes back for it.
  auto q = gcs::QueryFrame(9, static_cast<int>(gcs::ClusterQuery::kNodes));
  ASSERT_TRUE(q.ok());
  asio::post(io, [&] { link.Forward(5, WorkerID::FromRandom(), 1, q->data(), q->size(), 9); });
  ASSERT_TRUE(rec.WaitFor([&] { return !rec.delivered.empty(); }));
  {
    std::lock_guard<std::mutex> lock(rec.mu);
    EXPECT_EQ(rec.delivered[0].first, 5u);
    const proto::Envelope* env = nullptr;
    auto& bytes = rec.delivered[0].second;
    std::vector<uint64_t> aligned((bytes.size() + 7) / 8);
    std::memcpy(aligned.data(), bytes.data(), bytes.size());
    ASSERT_TRUE(VerifyEnvelope(reinterpret_cast<uint8_t*>(aligned.data()), bytes.size(), &env).ok());
    EXPECT_EQ(env->body_as_GcsReply()->request_id(), 9u);
    auto json = gcs::QueryReplyJson(*env);
    ASSERT_TRUE(json.ok());
    EXPECT_NE(json->find(lo.self.node_id.Hex()), std::string::npos);
  }

  // The GCS goes away: past the reconnect timeout the link gives up.
  (*server)->Stop();
  ASSERT_TRUE(rec.WaitFor([&] { return rec.fatal_set; }));
  EXPECT_EQ(rec.fatal.code(), StatusCode::kUnavailable);
  EXPECT_NE(rec.fatal.message().find("unreachable"), std::string::npos) << rec.fatal.ToString();
  // Meanwhile a request is answered Unavailable at once.
  asio::post(io, [&] { link.Forward(6, WorkerID::FromRandom(), 1, q->data(), q->size(), 10); });
  ASSERT_TRUE(rec.WaitFor([&] { return rec.delivered.size() >= 2; }));
  {
    std::lock_guard<std::mutex> lock(rec.mu);
    EXPECT_EQ(rec.delivered.back().first, 6u);
  }
  asio::post(io, [&] { link.Stop(); guard.reset(); });
  t.join();
}

TEST(GcsLinkTest, AWrongTokenFailsTheFirstConnect) {
  gcs::GcsServerOptions so;
  so.host = "127.0.0.1";
  so.port = 0;
  so.auth_token = "right";
  auto server = gcs::GcsServer::Start(so);
  ASSERT_TRUE(server.ok());
  asio::io_context io;
  GcsLink::Options lo;
  lo.address = "127.0.0.1:" + std::to_string((*server)->port());
  lo.token = "wrong";
  lo.self.node_id = NodeID::FromRandom();
  GcsLink link(io, lo, GcsLink::Hooks{});
  Status s = link.Connect();
  EXPECT_EQ(s.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("refused this node's auth token"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace rayts::raylet
