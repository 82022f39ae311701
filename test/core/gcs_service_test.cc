// GcsService driven alone: typed requests in, typed replies out, through a
// fake peer; JSON views (gcs_client.h) checked with the strict reader.
#include "core/gcs/gcs_service.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/gcs/gcs_client.h"
#include "core/protocol/connection.h"
#include "core/protocol/frame_codec.h"
#include "test/core/json_reader.h"
#include "test/core/test_util.h"

namespace rayts::gcs {
namespace {

using testing::Json;
using testing::ParseOrFail;
using Fbb = flatbuffers::FlatBufferBuilder;

class FakePeer : public GcsPeer {
 public:
  void SendGcsReply(flatbuffers::DetachedBuffer frame) override { frames.push_back(std::move(frame)); }
  // The i-th reply's envelope, verified as a receiver would.
  const proto::Envelope* Envelope(size_t i) const {
    const proto::Envelope* env = nullptr;
    Status s = VerifyEnvelope(frames.at(i).data(), frames.at(i).size(), &env);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return env;
  }
  const proto::GcsReply* Reply(size_t i) const { return Envelope(i)->body_as_GcsReply(); }
  const proto::GcsReply* Last() const { return Reply(frames.size() - 1); }
  std::vector<flatbuffers::DetachedBuffer> frames;
};

// Parses a frame built by a gcs_client.h builder into its GcsRequest.
struct Request {
  explicit Request(flatbuffers::DetachedBuffer f) : frame(std::move(f)) {
    const proto::Envelope* env = nullptr;
    EXPECT_TRUE(VerifyEnvelope(frame.data(), frame.size(), &env).ok());
    req = env->body_as_GcsRequest();
  }
  flatbuffers::DetachedBuffer frame;
  const proto::GcsRequest* req = nullptr;
};

Request Query(ClusterQuery q, uint64_t rid = 7) {
  auto f = QueryFrame(rid, static_cast<int>(q));
  EXPECT_TRUE(f.ok());
  return Request(std::move(f).value());
}

Request RegisterFrame(const ActorID& id, const std::string& name, bool get_if_exists = false,
                      const std::string& info = "info") {
  Fbb fbb(256);
  auto aid = fbb.CreateVector(id.data(), ActorID::kSize);
  auto frame = FinishFrame(
      fbb, proto::CreateGcsRequest(fbb, 3, proto::GcsRequestBody::RegisterActorRequest,
                                   proto::CreateRegisterActorRequest(fbb, aid, fbb.CreateString(name),
                                                                     fbb.CreateString("ns"), fbb.CreateString("C"),
                                                                     false, get_if_exists, 1, fbb.CreateString(info))
                                       .Union()));
  return Request(std::move(frame));
}

struct Fixture {
  std::vector<std::string> killed;
  GcsService gcs{GcsService::HostHooks{[this](const std::string& a) { killed.push_back(a); }}};
  std::shared_ptr<FakePeer> peer = std::make_shared<FakePeer>();
  GcsCaller caller{WorkerID::FromRandom(), 1};
  void Send(const Request& r) { gcs.HandleRequest(peer, caller, *r.req); }
  std::string Json(size_t i) {
    auto j = QueryReplyJson(*peer->Envelope(i));
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? *j : "";
  }
};

using test::MakeNode;

// ---- node table, resources, jobs -------------------------------------------

TEST(GcsServiceTest, NodesJsonIsValidAndComplete) {
  Fixture f;
  f.Send(Query(ClusterQuery::kNodes));
  EXPECT_EQ(f.Json(0), "[]");
  NodeInfo a = MakeNode("/tmp/plain.sock", {{"CPU", 4}, {"memory", 2147483648.0}});
  a.start_time_ms = 1700000000123;
  NodeInfo b = MakeNode("/tmp/we\"ird\\path\nwith\x01" "ctl", {{"CPU", 0.5}, {"custom \"r\"", 3}});
  NodeInfo c = MakeNode("", {});
  f.gcs.tables().RegisterNode(a);
  f.gcs.tables().RegisterNode(b);
  f.gcs.tables().RegisterNode(c);
  ASSERT_TRUE(f.gcs.tables().MarkNodeDead(b.node_id).ok());

  f.Send(Query(ClusterQuery::kNodes, 8));
  ASSERT_EQ(f.peer->frames.size(), 2u);
  EXPECT_EQ(f.peer->Last()->request_id(), 8u);
  EXPECT_EQ(f.peer->Last()->body_type(), proto::GcsReplyBody::GetAllNodesReply);
  Json j = ParseOrFail(f.Json(1));
  ASSERT_EQ(j.type, Json::kArray);
  ASSERT_EQ(j.arr.size(), 3u);
  const std::vector<std::string> keys = {"nodeId",   "alive",    "address",     "resources", "available",
                                         "startTimeMs", "isHead", "nodeIp",   "hostname",    "pid",
                                         "sessionDir", "deathReason", "endTimeMs", "pendingDemand", "infeasibleDemand",
                                         "nodeManagerAddress"};
  const NodeInfo* want[] = {&a, &b, &c};
  for (size_t i = 0; i < 3; i++) {
    const Json& n = j.arr[i];
    ASSERT_EQ(n.type, Json::kObject);
    EXPECT_EQ(n.Keys(), keys);
    EXPECT_EQ(n.Get("nodeId")->s, want[i]->node_id.Hex());
    EXPECT_EQ(n.Get("nodeId")->s.size(), 32u);
    EXPECT_EQ(n.Get("address")->s, want[i]->address);
    EXPECT_EQ(n.Get("alive")->type, Json::kBool);
    EXPECT_EQ(n.Get("alive")->b, i != 1);
    EXPECT_EQ(n.Get("resources")->type, Json::kObject);
    EXPECT_EQ(n.Get("resources")->obj.size(), want[i]->resources.size());
    EXPECT_EQ(n.Get("startTimeMs")->type, Json::kNumber);
  }
  EXPECT_DOUBLE_EQ(j.arr[0].Get("resources")->Get("memory")->n, 2147483648.0);
  EXPECT_DOUBLE_EQ(j.arr[0].Get("startTimeMs")->n, 1700000000123.0);
  EXPECT_DOUBLE_EQ(j.arr[1].Get("resources")->Get("custom \"r\"")->n, 3);
  EXPECT_DOUBLE_EQ(j.arr[1].Get("resources")->Get("CPU")->n, 0.5);
  // Binary ids on the wire: 16 bytes, not 32 hex characters.
  auto* nodes = f.peer->Last()->body_as_GetAllNodesReply()->nodes();
  EXPECT_EQ(nodes->Get(0)->node_id()->size(), NodeID::kSize);
}

TEST(GcsServiceTest, ResourcesJson) {
  Fixture f;
  f.Send(Query(ClusterQuery::kClusterResources));
  EXPECT_EQ(f.Json(0), "{}");
  NodeInfo a = MakeNode("/a", {{"CPU", 4}, {"memory", 1.5e9}, {"custom\"x", 0.25}});
  f.gcs.tables().RegisterNode(a);
  f.Send(Query(ClusterQuery::kClusterResources));
  Json j = ParseOrFail(f.Json(1));
  ASSERT_EQ(j.type, Json::kObject);
  EXPECT_EQ(j.Keys(), (std::vector<std::string>{"CPU", "memory", "custom\"x"}));
  EXPECT_DOUBLE_EQ(j.Get("CPU")->n, 4);
  EXPECT_DOUBLE_EQ(j.Get("memory")->n, 1.5e9);
  EXPECT_DOUBLE_EQ(j.Get("custom\"x")->n, 0.25);
  ASSERT_TRUE(f.gcs.tables().ReportResources(a.node_id, {{"CPU", 1}, {"memory", 1e9}}).ok());
  f.Send(Query(ClusterQuery::kAvailableResources));
  Json av = ParseOrFail(f.Json(2));
  EXPECT_EQ(av.Keys(), (std::vector<std::string>{"CPU", "memory", "custom\"x"}));  // zero free still listed
  EXPECT_DOUBLE_EQ(av.Get("CPU")->n, 1);
  EXPECT_DOUBLE_EQ(av.Get("memory")->n, 1e9);
  EXPECT_DOUBLE_EQ(av.Get("custom\"x")->n, 0);
}

TEST(GcsServiceTest, JobsJsonIsValid) {
  Fixture f;
  f.Send(Query(ClusterQuery::kJobs));
  EXPECT_EQ(f.Json(0), "[]");
  JobID a = f.gcs.tables().AddJob(11, "plain");
  JobID b = f.gcs.tables().AddJob(22, "quote\" back\\ nl\n tab\t ctl\x02");
  ASSERT_TRUE(f.gcs.tables().MarkJobFinished(a).ok());
  f.Send(Query(ClusterQuery::kJobs));
  Json j = ParseOrFail(f.Json(1));
  ASSERT_EQ(j.type, Json::kArray);
  ASSERT_EQ(j.arr.size(), 2u);
  for (auto& job : j.arr) {
    EXPECT_EQ(job.Keys(), (std::vector<std::string>{"jobId", "driverPid", "alive", "namespace"}));
  }
  EXPECT_DOUBLE_EQ(j.arr[0].Get("jobId")->n, a);
  EXPECT_FALSE(j.arr[0].Get("alive")->b);
  EXPECT_DOUBLE_EQ(j.arr[1].Get("jobId")->n, b);
  EXPECT_DOUBLE_EQ(j.arr[1].Get("driverPid")->n, 22);
  EXPECT_TRUE(j.arr[1].Get("alive")->b);
  EXPECT_EQ(j.arr[1].Get("namespace")->s, "quote\" back\\ nl\n tab\t ctl\x02");
}

TEST(GcsServiceTest, UnknownQueryNumberIsRejectedByTheClient) {
  EXPECT_EQ(QueryFrame(1, kNumClusterQueries).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(QueryFrame(1, -1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_STREQ(ClusterQueryName(ClusterQuery::kAvailableResources), "AvailableResources");
}

// ---- KV ----------------------------------------------------------------------

TEST(GcsServiceTest, KvOverTheWire) {
  Fixture f;
  auto kv = [&](auto build) {
    Fbb fbb(128);
    auto [type, body] = build(fbb);
    f.Send(Request(FinishFrame(fbb, proto::CreateGcsRequest(fbb, 1, type, body))));
    return f.peer->Last();
  };
  std::string binary("a\0b\xff", 4);
  auto* put = kv([&](Fbb& fbb) {
    auto v = fbb.CreateVector(reinterpret_cast<const uint8_t*>(binary.data()), binary.size());
    return std::make_pair(proto::GcsRequestBody::KvPutRequest,
                          proto::CreateKvPutRequest(fbb, fbb.CreateString("fn:a"), v).Union());
  });
  EXPECT_EQ(put->code(), 0);
  EXPECT_EQ(put->body_type(), proto::GcsReplyBody::GcsEmptyReply);
  auto* got = kv([&](Fbb& fbb) {
    return std::make_pair(proto::GcsRequestBody::KvGetRequest,
                          proto::CreateKvGetRequest(fbb, fbb.CreateString("fn:a")).Union());
  });
  ASSERT_EQ(got->code(), 0);
  auto* value = got->body_as_KvGetReply()->value();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(value->data()), value->size()), binary);
  auto* keys = kv([&](Fbb& fbb) {
    return std::make_pair(proto::GcsRequestBody::KvKeysRequest,
                          proto::CreateKvKeysRequest(fbb, fbb.CreateString("fn")).Union());
  });
  ASSERT_EQ(keys->body_as_KvKeysReply()->keys()->size(), 1u);
  EXPECT_EQ(keys->body_as_KvKeysReply()->keys()->Get(0)->str(), "fn:a");
  auto del = [&] {
    return kv([&](Fbb& fbb) {
      return std::make_pair(proto::GcsRequestBody::KvDelRequest,
                            proto::CreateKvDelRequest(fbb, fbb.CreateString("fn:a")).Union());
    });
  };
  EXPECT_TRUE(del()->body_as_KvDelReply()->deleted());
  EXPECT_FALSE(del()->body_as_KvDelReply()->deleted());
  auto* missing = kv([&](Fbb& fbb) {
    return std::make_pair(proto::GcsRequestBody::KvGetRequest,
                          proto::CreateKvGetRequest(fbb, fbb.CreateString("fn:a")).Union());
  });
  EXPECT_EQ(missing->code(), static_cast<int>(StatusCode::kNotFound));
  EXPECT_EQ(missing->body_type(), proto::GcsReplyBody::NONE);
}

// ---- actor table -------------------------------------------------------------

TEST(GcsServiceTest, RegisterNewThenExistingThenAlreadyExists) {
  Fixture f;
  ActorID a = ActorID::FromRandom();
  f.Send(RegisterFrame(a, "c1", false, "{\"c\":\"C\"}"));
  ASSERT_EQ(f.peer->Last()->code(), 0);
  EXPECT_EQ(f.peer->Last()->request_id(), 3u);
  EXPECT_FALSE(f.peer->Last()->body_as_RegisterActorReply()->existing());
  const ActorInfo* info = f.gcs.tables().actors().Get(a);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->owner_worker, f.caller.worker_id);
  EXPECT_EQ(info->job, f.caller.job_id);
  EXPECT_EQ(info->max_restarts, 1);
  EXPECT_EQ(info->creation_spec, "{\"c\":\"C\"}");

  ActorID b = ActorID::FromRandom();
  f.Send(RegisterFrame(b, "c1", /*get_if_exists=*/true));
  auto* r = f.peer->Last()->body_as_RegisterActorReply();
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->existing());
  EXPECT_EQ(ActorID::FromBytes(r->actor_id()->data()), a);
  EXPECT_EQ(r->info()->str(), "{\"c\":\"C\"}");

  f.Send(RegisterFrame(b, "c1"));
  EXPECT_EQ(f.peer->Last()->code(), static_cast<int>(StatusCode::kAlreadyExists));
  EXPECT_NE(f.peer->Last()->message()->str().find("c1"), std::string::npos);
}

TEST(GcsServiceTest, SyncClientRoundTripsThroughTheSameMessages) {
  // The client's builders and the service agree: a named lookup.
  Fixture f;
  ActorID a = ActorID::FromRandom();
  f.Send(RegisterFrame(a, "named"));
  Fbb fbb(64);
  f.Send(Request(FinishFrame(fbb, proto::CreateGcsRequest(
                                      fbb, 9, proto::GcsRequestBody::GetNamedActorRequest,
                                      proto::CreateGetNamedActorRequest(fbb, fbb.CreateString("ns"),
                                                                        fbb.CreateString("named"))
                                          .Union()))));
  auto* r = f.peer->Last()->body_as_GetNamedActorReply();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ActorID::FromBytes(r->actor_id()->data()), a);
  EXPECT_EQ(r->info()->str(), "info");
  Fbb fbb2(64);
  f.Send(Request(FinishFrame(fbb2, proto::CreateGcsRequest(
                                       fbb2, 10, proto::GcsRequestBody::GetNamedActorRequest,
                                       proto::CreateGetNamedActorRequest(fbb2, fbb2.CreateString("ns"),
                                                                         fbb2.CreateString("other"))
                                           .Union()))));
  EXPECT_EQ(f.peer->Last()->code(), static_cast<int>(StatusCode::kNotFound));
  EXPECT_EQ(f.peer->Last()->message()->str(), "no actor named 'other' in namespace 'ns'");
}

TEST(GcsServiceTest, WaitActorAnsweredWhenAliveAndOnlyWhileThePeerLives) {
  Fixture f;
  ActorID a = ActorID::FromRandom();
  f.Send(RegisterFrame(a, ""));
  auto waiter = std::make_shared<FakePeer>();
  f.gcs.HandleRequest(waiter, f.caller, *Request(WaitActorFrame(21, a)).req);
  EXPECT_TRUE(waiter->frames.empty());  // PENDING_CREATION: deferred
  auto gone = std::make_shared<FakePeer>();
  f.gcs.HandleRequest(gone, f.caller, *Request(WaitActorFrame(22, a)).req);
  std::weak_ptr<FakePeer> weak = gone;
  gone.reset();  // that process went away before the answer
  EXPECT_TRUE(weak.expired());

  f.Send(Request(ActorAliveFrame(a, "/tmp/w1.sock")));
  EXPECT_EQ(f.peer->Last()->code(), 0);
  ASSERT_EQ(waiter->frames.size(), 1u);
  auto where = ReadWaitActorReply(*waiter->Last());
  ASSERT_TRUE(where.ok());
  EXPECT_EQ(waiter->Last()->request_id(), 21u);
  EXPECT_TRUE(where->alive);
  EXPECT_EQ(where->address, "/tmp/w1.sock");
  EXPECT_EQ(f.gcs.tables().actors().num_subscriptions(), 0u);

  // ALIVE: answered at once.
  f.gcs.HandleRequest(waiter, f.caller, *Request(WaitActorFrame(23, a)).req);
  ASSERT_EQ(waiter->frames.size(), 2u);
  EXPECT_TRUE(ReadWaitActorReply(*waiter->Last())->alive);
}

TEST(GcsServiceTest, RestartingThenDeadReachesWaiters) {
  Fixture f;
  ActorID a = ActorID::FromRandom();
  f.Send(RegisterFrame(a, "r"));  // max_restarts 1
  f.Send(Request(ActorAliveFrame(a, "/tmp/w1.sock")));
  f.Send(Request(ActorRestartingFrame(a, "worker died")));
  EXPECT_EQ(f.peer->Last()->code(), 0);
  EXPECT_EQ(f.gcs.tables().actors().Get(a)->state, ActorState::kRestarting);
  auto waiter = std::make_shared<FakePeer>();
  f.gcs.HandleRequest(waiter, f.caller, *Request(WaitActorFrame(5, a)).req);
  EXPECT_TRUE(waiter->frames.empty());
  f.Send(Request(ActorDeadFrame(a, "killed by ray.kill()")));
  ASSERT_EQ(waiter->frames.size(), 1u);
  auto where = ReadWaitActorReply(*waiter->Last());
  ASSERT_TRUE(where.ok());
  EXPECT_FALSE(where->alive);
  EXPECT_EQ(where->death_cause, "killed by ray.kill()");
  // The name is free at once.
  f.Send(RegisterFrame(ActorID::FromRandom(), "r"));
  EXPECT_EQ(f.peer->Last()->code(), 0);
}

TEST(GcsServiceTest, KillActorRecordsTheDeathAndAsksTheHostToEndItsWorker) {
  Fixture f;
  ActorID a = ActorID::FromRandom();
  f.Send(RegisterFrame(a, ""));
  f.Send(Request(ActorAliveFrame(a, "/tmp/w9.sock")));
  Fbb fbb(64);
  auto aid = fbb.CreateVector(a.data(), ActorID::kSize);
  f.Send(Request(FinishFrame(
      fbb, proto::CreateGcsRequest(fbb, 4, proto::GcsRequestBody::KillActorRequest,
                                   proto::CreateKillActorRequest(fbb, aid, fbb.CreateString("by test")).Union()))));
  EXPECT_EQ(f.peer->Last()->code(), 0);
  EXPECT_EQ(f.killed, (std::vector<std::string>{"/tmp/w9.sock"}));
  EXPECT_EQ(f.gcs.tables().actors().Get(a)->state, ActorState::kDead);
  EXPECT_EQ(f.gcs.tables().actors().Get(a)->death_cause, "by test");
  // Unknown actor: NotFound, and no worker is touched.
  Fbb fbb2(64);
  ActorID unknown = ActorID::FromRandom();
  auto uid = fbb2.CreateVector(unknown.data(), ActorID::kSize);
  f.Send(Request(FinishFrame(
      fbb2, proto::CreateGcsRequest(fbb2, 4, proto::GcsRequestBody::KillActorRequest,
                                    proto::CreateKillActorRequest(fbb2, uid, fbb2.CreateString("x")).Union()))));
  EXPECT_EQ(f.peer->Last()->code(), static_cast<int>(StatusCode::kNotFound));
  EXPECT_EQ(f.killed.size(), 1u);
}

TEST(GcsServiceTest, OwnerDisconnectEndsItsActors) {
  Fixture f;
  ActorID a = ActorID::FromRandom();
  f.Send(RegisterFrame(a, ""));
  f.gcs.OnOwnerDisconnected(f.caller.worker_id);
  EXPECT_EQ(f.gcs.tables().actors().Get(a)->state, ActorState::kDead);
}

TEST(GcsServiceTest, ANodesDeathEndsTheActorsItsProcessesOwnedAndTheirWorkersElsewhere) {
  Fixture f;
  NodeInfo owner_node = test::MakeNodeIn("/tmp/s_owner");
  NodeInfo worker_node = test::MakeNodeIn("/tmp/s_worker");
  f.gcs.tables().RegisterNode(owner_node);
  f.gcs.tables().RegisterNode(worker_node);
  f.caller.node_id = owner_node.node_id;  // registered through the owner's node
  ActorID a = ActorID::FromRandom();
  f.Send(RegisterFrame(a, ""));
  f.Send(Request(ActorAliveFrame(a, "/tmp/s_worker/sockets/w-1.sock@127.0.0.1:7100")));
  const ActorInfo* info = f.gcs.tables().actors().Get(a);
  EXPECT_EQ(info->owner_node, owner_node.node_id);
  EXPECT_EQ(info->node, worker_node.node_id) << "the node whose session directory holds its address";
  // The worker's node dying is the owner's to handle (it lives): nothing here.
  f.gcs.OnNodeDead(worker_node.node_id, "stopped");
  EXPECT_EQ(f.gcs.tables().actors().Get(a)->state, ActorState::kAlive);
  EXPECT_TRUE(f.killed.empty());
  // The owner's node dying ends the actor, and its worker on the other node.
  f.gcs.OnNodeDead(owner_node.node_id, "failed 3 health checks");
  EXPECT_EQ(f.gcs.tables().actors().Get(a)->state, ActorState::kDead);
  EXPECT_EQ(f.gcs.tables().actors().Get(a)->death_cause,
            "its owner's node " + owner_node.node_id.Hex() + " died (failed 3 health checks)");
  EXPECT_EQ(f.killed, (std::vector<std::string>{"/tmp/s_worker/sockets/w-1.sock@127.0.0.1:7100"}));
}

TEST(GcsServiceTest, MalformedRequestsAreAnsweredNotDropped) {
  Fixture f;
  // An actor id of the wrong length.
  Fbb fbb(64);
  auto bad = fbb.CreateVector(std::vector<uint8_t>(5, 1));
  f.Send(Request(FinishFrame(fbb, proto::CreateGcsRequest(fbb, 11, proto::GcsRequestBody::WaitActorRequest,
                                                          proto::CreateWaitActorRequest(fbb, bad).Union()))));
  ASSERT_EQ(f.peer->frames.size(), 1u);
  EXPECT_EQ(f.peer->Last()->request_id(), 11u);
  EXPECT_EQ(f.peer->Last()->code(), static_cast<int>(StatusCode::kInvalidArgument));
  EXPECT_EQ(f.peer->Last()->message()->str(), "WaitActorRequest: actor_id must be 16 bytes");
  // No body at all.
  Fbb fbb2(64);
  f.Send(Request(FinishFrame(fbb2, proto::CreateGcsRequest(fbb2, 12))));
  ASSERT_EQ(f.peer->frames.size(), 2u);
  EXPECT_EQ(f.peer->Last()->code(), static_cast<int>(StatusCode::kInvalidArgument));
  // A wait for an actor the table never had.
  f.Send(Request(WaitActorFrame(13, ActorID::FromRandom())));
  EXPECT_EQ(f.peer->Last()->code(), static_cast<int>(StatusCode::kNotFound));
  EXPECT_FALSE(ReadWaitActorReply(*f.peer->Last()).ok());
}

}  // namespace
}  // namespace rayts::gcs
