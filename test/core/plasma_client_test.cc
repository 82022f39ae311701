#include "core/core_worker/plasma_client.h"

#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/protocol/connection.h"
#include "test/core/test_util.h"

namespace rayts {
namespace {

using Fbb = flatbuffers::FlatBufferBuilder;

std::string Bytes(const flatbuffers::Vector<uint8_t>* v) {
  return v ? std::string(reinterpret_cast<const char*>(v->data()), v->size()) : std::string();
}
std::string IdStr(const ObjectID& id) { return id.Binary(); }

bool WriteAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}
bool ReadAll(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// A node server stand-in on a unix socket: one connection, served on its own
// thread, one request frame at a time. Register is answered with a memfd of
// kStoreSize bytes starting with kStoreMagic; every other request goes to
// `handler`, which writes the replies (Reply) or returns false to close the
// connection without answering. Blocking reads only: no sleeps, no polling.
class FakeNode {
 public:
  static constexpr uint64_t kStoreSize = 1 << 16;
  static constexpr char kStoreMagic[] = "fake store";
  using Handler = std::function<bool(FakeNode& node, const proto::Envelope& req)>;

  explicit FakeNode(Handler handler) : handler_(std::move(handler)) {
    char tmpl[] = "/tmp/rayts_plasma_client_XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/node.sock";
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listen_fd_, 1), 0);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeNode() {
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept if no client came
    thread_.join();
    ::close(listen_fd_);
    std::filesystem::remove_all(dir_);
  }

  const std::string& path() const { return path_; }
  void Reply(flatbuffers::DetachedBuffer frame) { EXPECT_TRUE(WriteAll(conn_, frame.data(), frame.size())); }
  void ReplyAck(int code = 0, const std::string& message = "") {
    Fbb fbb;
    Reply(FinishFrame(fbb, proto::CreateAck(fbb, 0, code, fbb.CreateString(message))));
  }

  // What the node received, in order: body type and the frame's object id.
  struct Received {
    proto::Body type;
    std::string object_id;
    uint64_t size = 0;        // PlasmaCreate
    bool no_spill = false;    // PlasmaCreate
    int64_t timeout_ms = -1;  // PlasmaGet
  };
  std::vector<Received> received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  // The RegisterClient fields, as received.
  struct Registered {
    std::string worker_id, listen_path;
    bool is_driver = false, control = true;
    uint32_t job_id = 0;
    int pid = 0;
  };
  Registered registered() {
    std::lock_guard<std::mutex> lock(mu_);
    return registered_;
  }
  // Register is refused with this code and message when code != 0.
  int refuse_code = 0;
  std::string refuse_message;

 private:
  void Run() {
    conn_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn_ < 0) return;
    std::vector<uint64_t> storage;
    for (;;) {
      uint32_t len;
      if (!ReadAll(conn_, reinterpret_cast<uint8_t*>(&len), 4)) break;
      storage.assign((4 + len + 7) / 8, 0);
      auto* base = reinterpret_cast<uint8_t*>(storage.data());
      std::memcpy(base, &len, 4);
      if (!ReadAll(conn_, base + 4, len)) break;
      const proto::Envelope* env = nullptr;
      if (!VerifyEnvelope(base, 4 + len, &env).ok()) break;
      Record(*env);
      if (env->body_type() == proto::Body::RegisterClient) {
        AnswerRegister();
        continue;
      }
      if (!handler_(*this, *env)) break;
    }
    ::close(conn_);
  }

  void Record(const proto::Envelope& env) {
    std::lock_guard<std::mutex> lock(mu_);
    Received r{env.body_type(), ""};
    switch (env.body_type()) {
      case proto::Body::RegisterClient: {
        auto* b = env.body_as_RegisterClient();
        registered_ = {Bytes(b->worker_id()), b->listen_path() ? b->listen_path()->str() : "", b->is_driver(),
                       b->control(), b->job_id(), b->pid()};
        break;
      }
      case proto::Body::PlasmaCreate:
        r.object_id = Bytes(env.body_as_PlasmaCreate()->object_id());
        r.size = env.body_as_PlasmaCreate()->data_size();
        r.no_spill = env.body_as_PlasmaCreate()->no_spill();
        break;
      case proto::Body::PlasmaSeal: r.object_id = Bytes(env.body_as_PlasmaSeal()->object_id()); break;
      case proto::Body::PlasmaGet:
        r.object_id = Bytes(env.body_as_PlasmaGet()->object_ids());
        r.timeout_ms = env.body_as_PlasmaGet()->timeout_ms();
        break;
      case proto::Body::PlasmaRelease: r.object_id = Bytes(env.body_as_PlasmaRelease()->object_ids()); break;
      case proto::Body::PlasmaLose: r.object_id = Bytes(env.body_as_PlasmaLose()->object_id()); break;
      default: break;
    }
    received_.push_back(r);
  }

  void AnswerRegister() {
    Fbb fbb;
    NodeID node = NodeID::FromBytes(reinterpret_cast<const uint8_t*>("node-id-of-the-fake-node-server!"));
    auto nid = fbb.CreateVector(node.data(), NodeID::kSize);
    auto msg = fbb.CreateString(refuse_message);
    auto dir = fbb.CreateString("/tmp/fake-session");
    auto frame = FinishFrame(fbb, proto::CreateRegisterReply(fbb, refuse_code, msg, nid, kStoreSize, dir, 7));
    int memfd = ::memfd_create("rayts_plasma_client_test", MFD_CLOEXEC);
    ASSERT_GE(memfd, 0);
    ASSERT_EQ(::ftruncate(memfd, kStoreSize + plasma::ShmRegion::kHeaderBytes), 0);  // store bytes + the header page
    ASSERT_EQ(::pwrite(memfd, kStoreMagic, sizeof(kStoreMagic), 0), static_cast<ssize_t>(sizeof(kStoreMagic)));
    EXPECT_TRUE(SendFrameWithFd(conn_, frame, memfd).ok());
    ::close(memfd);  // the client holds its own copy
  }

  Handler handler_;
  std::string dir_, path_;
  int listen_fd_ = -1;
  int conn_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Received> received_;
  Registered registered_;
};

PlasmaClient::Registration Reg() {
  PlasmaClient::Registration r;
  r.worker_id = WorkerID::FromBytes(reinterpret_cast<const uint8_t*>("worker-id-of-the-test-client-28b"));
  r.is_driver = false;
  r.listen_path = "/tmp/the-client.sock";
  r.job_id = 3;
  return r;
}

bool NoRequests(FakeNode&, const proto::Envelope&) {
  ADD_FAILURE() << "unexpected request";
  return false;
}

TEST(PlasmaClient, ConnectRegistersAndMapsTheStore) {
  FakeNode node(NoRequests);
  PlasmaClient client;
  auto info = client.Connect(node.path(), Reg());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->node_id, NodeID::FromBytes(reinterpret_cast<const uint8_t*>("node-id-of-the-fake-node-server!")));
  EXPECT_EQ(info->job_id, 7u);
  EXPECT_EQ(info->session_dir, "/tmp/fake-session");
  ASSERT_NE(client.base(), nullptr);
  EXPECT_EQ(client.size(), FakeNode::kStoreSize);
  EXPECT_STREQ(reinterpret_cast<const char*>(client.base()), FakeNode::kStoreMagic);  // the node's memory, mapped
  auto reg = node.registered();
  EXPECT_EQ(reg.worker_id, Reg().worker_id.Binary());
  EXPECT_EQ(reg.listen_path, "/tmp/the-client.sock");
  EXPECT_FALSE(reg.is_driver);
  EXPECT_FALSE(reg.control);  // the plasma channel, not the control connection
  EXPECT_EQ(reg.job_id, 3u);
  EXPECT_EQ(reg.pid, ::getpid());
}

TEST(PlasmaClient, RefusedRegistrationIsTheStatus) {
  FakeNode node(NoRequests);
  node.refuse_code = static_cast<int>(StatusCode::kInvalidArgument);
  node.refuse_message = "unknown job";
  PlasmaClient client;
  auto info = client.Connect(node.path(), Reg());
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(info.status().message(), "unknown job");
  EXPECT_EQ(client.base(), nullptr);
  EXPECT_EQ(client.size(), 0u);
}

TEST(PlasmaClient, CreateSealGetReleaseFramesAndReplies) {
  FakeNode node([](FakeNode& n, const proto::Envelope& req) {
    Fbb fbb;
    switch (req.body_type()) {
      case proto::Body::PlasmaCreate:
        n.Reply(FinishFrame(fbb, proto::CreatePlasmaCreateReply(fbb, 0, 0, 0, /*offset=*/4096)));
        return true;
      case proto::Body::PlasmaSeal:
        n.ReplyAck();
        return true;
      case proto::Body::PlasmaGet: {
        auto oid = fbb.CreateVector(req.body_as_PlasmaGet()->object_ids()->data(), ObjectID::kSize);
        std::vector<flatbuffers::Offset<proto::PlasmaObject>> objs{
            proto::CreatePlasmaObject(fbb, oid, true, /*offset=*/4096, /*size=*/100)};
        n.Reply(FinishFrame(fbb, proto::CreatePlasmaGetReply(fbb, 0, fbb.CreateVector(objs))));
        return true;
      }
      case proto::Body::PlasmaRelease:
        return true;  // no answer
      default:
        ADD_FAILURE() << "unexpected request";
        return false;
    }
  });
  PlasmaClient client;
  ASSERT_TRUE(client.Connect(node.path(), Reg()).ok());
  ObjectID id = test::Id(1);
  auto offset = client.Create(id, 100, /*allow_spill=*/false);
  ASSERT_TRUE(offset.ok()) << offset.status().ToString();
  EXPECT_EQ(*offset, 4096u);
  ASSERT_TRUE(client.Seal(id).ok());
  auto view = client.Get(id);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->offset, 4096u);
  EXPECT_EQ(view->size, 100u);
  client.Release(id);
  ASSERT_TRUE(client.Seal(id).ok());  // answered after the release was read: the node saw it

  auto got = node.received();
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[0].type, proto::Body::RegisterClient);
  EXPECT_EQ(got[1].type, proto::Body::PlasmaCreate);
  EXPECT_EQ(got[1].object_id, IdStr(id));
  EXPECT_EQ(got[1].size, 100u);
  EXPECT_TRUE(got[1].no_spill);
  EXPECT_EQ(got[2].type, proto::Body::PlasmaSeal);
  EXPECT_EQ(got[2].object_id, IdStr(id));
  EXPECT_EQ(got[3].type, proto::Body::PlasmaGet);
  EXPECT_EQ(got[3].object_id, IdStr(id));
  EXPECT_EQ(got[3].timeout_ms, 5000);  // waits in the store for an object being sealed
  EXPECT_EQ(got[4].type, proto::Body::PlasmaRelease);
  EXPECT_EQ(got[4].object_id, IdStr(id));
  EXPECT_EQ(got[5].type, proto::Body::PlasmaSeal);
}

TEST(PlasmaClient, ErrorRepliesAreTheStatus) {
  FakeNode node([](FakeNode& n, const proto::Envelope& req) {
    Fbb fbb;
    switch (req.body_type()) {
      case proto::Body::PlasmaCreate:
        n.Reply(FinishFrame(fbb, proto::CreatePlasmaCreateReply(fbb, 0, static_cast<int>(StatusCode::kObjectExists),
                                                                fbb.CreateString("sealed by another"), 0)));
        return true;
      case proto::Body::PlasmaSeal:
        n.ReplyAck(static_cast<int>(StatusCode::kNotFound), "not being created");
        return true;
      case proto::Body::PlasmaLose:
        n.ReplyAck(static_cast<int>(StatusCode::kNotFound), "no such object");
        return true;
      case proto::Body::PlasmaGet: {
        // First object id byte 2: spilled and not restorable (a code); else not found.
        auto* ids = req.body_as_PlasmaGet()->object_ids();
        auto oid = fbb.CreateVector(ids->data(), ObjectID::kSize);
        bool spilled = ids->Get(0) == 2;
        auto msg = fbb.CreateString(spilled ? "no room to restore" : "");
        std::vector<flatbuffers::Offset<proto::PlasmaObject>> objs{proto::CreatePlasmaObject(
            fbb, oid, false, 0, 0, spilled ? static_cast<int>(StatusCode::kOutOfMemory) : 0, msg)};
        n.Reply(FinishFrame(fbb, proto::CreatePlasmaGetReply(fbb, 0, fbb.CreateVector(objs))));
        return true;
      }
      default:
        ADD_FAILURE() << "unexpected request";
        return false;
    }
  });
  PlasmaClient client;
  ASSERT_TRUE(client.Connect(node.path(), Reg()).ok());
  auto created = client.Create(test::Id(1), 10, true);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), StatusCode::kObjectExists);
  EXPECT_EQ(created.status().message(), "sealed by another");
  Status sealed = client.Seal(test::Id(1));
  EXPECT_EQ(sealed.code(), StatusCode::kNotFound);
  EXPECT_EQ(sealed.message(), "not being created");
  auto missing = client.Get(test::Id(1));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kObjectLost);
  auto spilled = client.Get(test::Id(2));
  ASSERT_FALSE(spilled.ok());
  EXPECT_EQ(spilled.status().code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(spilled.status().message(), "no room to restore");
  Status lost = client.Lose(test::Id(3));
  EXPECT_EQ(lost.code(), StatusCode::kNotFound);
  EXPECT_EQ(lost.message(), "no such object");
  EXPECT_TRUE(client.Create(test::Id(4), 1, true).status().code() == StatusCode::kObjectExists);  // still in sync
}

TEST(PlasmaClient, ContainsAsksWithoutWaitingAndReleasesWhatItFinds) {
  FakeNode node([](FakeNode& n, const proto::Envelope& req) {
    Fbb fbb;
    if (req.body_type() == proto::Body::PlasmaRelease) return true;
    if (req.body_type() == proto::Body::PlasmaSeal) {
      n.ReplyAck();
      return true;
    }
    auto* ids = req.body_as_PlasmaGet()->object_ids();
    auto oid = fbb.CreateVector(ids->data(), ObjectID::kSize);
    std::vector<flatbuffers::Offset<proto::PlasmaObject>> objs{
        proto::CreatePlasmaObject(fbb, oid, /*found=*/ids->Get(0) == 1, 0, 8)};
    n.Reply(FinishFrame(fbb, proto::CreatePlasmaGetReply(fbb, 0, fbb.CreateVector(objs))));
    return true;
  });
  PlasmaClient client;
  ASSERT_TRUE(client.Connect(node.path(), Reg()).ok());
  EXPECT_TRUE(client.Contains(test::Id(1)));
  EXPECT_FALSE(client.Contains(test::Id(2)));
  ASSERT_TRUE(client.Seal(test::Id(9)).ok());  // a marker: everything before it was read
  auto got = node.received();
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[1].type, proto::Body::PlasmaGet);
  EXPECT_EQ(got[1].timeout_ms, 0);
  EXPECT_EQ(got[2].type, proto::Body::PlasmaRelease);  // found: the probe's pin is given back
  EXPECT_EQ(got[2].object_id, IdStr(test::Id(1)));
  EXPECT_EQ(got[3].type, proto::Body::PlasmaGet);  // not found: nothing to release
  EXPECT_EQ(got[4].type, proto::Body::PlasmaSeal);
}

TEST(PlasmaClient, ClosedSocketIsDisconnected) {
  FakeNode node([](FakeNode&, const proto::Envelope&) { return false; });  // reads the request, then hangs up
  PlasmaClient client;
  ASSERT_TRUE(client.Connect(node.path(), Reg()).ok());
  auto created = client.Create(test::Id(1), 10, true);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), StatusCode::kDisconnected);
  EXPECT_FALSE(client.Contains(test::Id(1)));  // cannot be asked: false
  client.Close();
  EXPECT_EQ(client.Seal(test::Id(1)).code(), StatusCode::kDisconnected);
  EXPECT_EQ(client.Get(test::Id(1)).status().code(), StatusCode::kDisconnected);
  EXPECT_EQ(client.Lose(test::Id(1)).code(), StatusCode::kDisconnected);
  client.Release(test::Id(1));  // best effort: no error to report
}

TEST(PlasmaClient, DeleteFrameNamesTheObject) {
  auto frame = PlasmaClient::DeleteFrame(test::Id(5));
  std::vector<uint64_t> storage((frame.size() + 7) / 8);
  std::memcpy(storage.data(), frame.data(), frame.size());
  const proto::Envelope* env = nullptr;
  ASSERT_TRUE(VerifyEnvelope(reinterpret_cast<const uint8_t*>(storage.data()), frame.size(), &env).ok());
  ASSERT_EQ(env->body_type(), proto::Body::PlasmaDelete);
  EXPECT_EQ(Bytes(env->body_as_PlasmaDelete()->object_ids()), IdStr(test::Id(5)));
}

}  // namespace
}  // namespace rayts
