// FakeTransport: the Transport of a CoreWorker under test, with no sockets,
// no io thread and a clock the test moves.
//
// Role: records every frame a component sends (to the node, to each peer it
// connected to, on each link given to it as inbound), answers Connect with a
// FakeLink (or nullptr for addresses marked unreachable), keeps timers and
// posted functions until the test runs them (Advance, RunPosted), and
// records Exit instead of exiting. The test delivers frames to components
// the way the io thread would: with the core lock held (Deliver*, Close*).
// Ownership: the test owns it and the CoreWorker built over it
// (CoreWorker::WithTransport); Bind() tells it that worker's context.
// Thread safety: none; one test thread drives everything.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/core_worker/core_worker.h"
#include "core/core_worker/transport.h"
#include "core/protocol/frame_codec.h"

namespace rayts::test {

inline const proto::Envelope* Env(const Frame& f) {
  return flatbuffers::GetSizePrefixedRoot<proto::Envelope>(f.data());
}

class FakeLink final : public Link {
 public:
  void Send(Frame frame) override { sent.push_back(std::move(frame)); }
  void SendNow(Frame frame) override { sent.push_back(std::move(frame)); }
  void Close() override { closed_ = true; }
  bool closed() const override { return closed_; }
  // The frames of one body type sent so far.
  std::vector<const proto::Envelope*> Of(proto::Body type) const {
    std::vector<const proto::Envelope*> out;
    for (auto& f : sent)
      if (Env(f)->body_type() == type) out.push_back(Env(f));
    return out;
  }
  std::vector<Frame> sent;

 private:
  bool closed_ = false;
};

class FakeTransport final : public Transport {
 public:
  struct Peer {
    std::string address;
    std::shared_ptr<FakeLink> link;
    MessageHandler on_message;
    CloseHandler on_closed;
  };

  void Bind(WorkerContext* ctx) { ctx_ = ctx; }

  void SendToNode(Frame frame) override { to_node.push_back(std::move(frame)); }
  std::shared_ptr<Link> Connect(const std::string& address, MessageHandler on_message,
                                CloseHandler on_closed) override {
    if (unreachable.count(address)) return nullptr;
    auto link = std::make_shared<FakeLink>();
    peers.push_back(Peer{address, link, std::move(on_message), std::move(on_closed)});
    return link;
  }
  std::unique_ptr<Timer> NewTimer() override { return std::make_unique<FakeTimer>(*this); }
  Clock::time_point Now() override { return now; }
  void Post(std::function<void()> fn) override { posted.push_back(std::move(fn)); }
  void Flush() override { flushes++; }
  void Exit(int code) override { exits.push_back(code); }

  // ---- the test's side ----
  std::vector<const proto::Envelope*> NodeFrames(proto::Body type) const {
    std::vector<const proto::Envelope*> out;
    for (auto& f : to_node)
      if (Env(f)->body_type() == type) out.push_back(Env(f));
    return out;
  }
  // The latest connection made to `address`.
  Peer* PeerAt(const std::string& address) {
    for (auto it = peers.rbegin(); it != peers.rend(); ++it)
      if (it->address == address) return &*it;
    return nullptr;
  }
  // A frame from the node on the control connection.
  void DeliverControl(CoreWorker& cw, const Frame& f) {
    CoreGuard lock(*ctx_);
    cw.OnControlLocked(*Env(f));
  }
  // A frame from the peer at `address` on our connection to it.
  void DeliverFromPeer(const std::string& address, const Frame& f) {
    Peer* p = PeerAt(address);
    ASSERT_NE(p, nullptr) << "no connection to " << address;
    CoreGuard lock(*ctx_);
    p->on_message(*Env(f));
  }
  // The peer at `address` goes away: its link's close handler runs.
  void ClosePeer(const std::string& address, const std::string& why = "peer closed the connection") {
    Peer* p = PeerAt(address);
    ASSERT_NE(p, nullptr) << "no connection to " << address;
    CoreGuard lock(*ctx_);
    p->on_closed(Status::IOError(why));
  }
  // Moves the clock; due timers fire in deadline order (the lock held).
  void Advance(Clock::duration d) {
    now += d;
    for (;;) {
      FakeTimer* due = nullptr;
      for (auto* t : timers)
        if (t->armed && t->deadline <= now && (!due || t->deadline < due->deadline)) due = t;
      if (!due) return;
      due->armed = false;
      auto fn = std::move(due->fn);
      CoreGuard lock(*ctx_);
      fn();
    }
  }
  void RunPosted() {
    while (!posted.empty()) {
      auto fns = std::move(posted);
      posted.clear();
      for (auto& fn : fns) {
        CoreGuard lock(*ctx_);
        fn();
      }
    }
  }
  size_t ArmedTimers() const {
    return static_cast<size_t>(std::count_if(timers.begin(), timers.end(), [](FakeTimer* t) { return t->armed; }));
  }

  std::vector<Frame> to_node;
  std::vector<Peer> peers;
  std::set<std::string> unreachable;
  std::vector<std::function<void()>> posted;
  std::vector<int> exits;
  int flushes = 0;
  int arms = 0;  // Timer::Arm calls, all timers
  Clock::time_point now{};

 private:
  class FakeTimer final : public Timer {
   public:
    explicit FakeTimer(FakeTransport& t) : t_(t) { t_.timers.insert(this); }
    ~FakeTimer() override { t_.timers.erase(this); }
    void Arm(Clock::duration delay, std::function<void()> f) override {
      deadline = t_.now + delay;
      fn = std::move(f);
      armed = true;
      t_.arms++;
    }
    void Cancel() override { armed = false; }
    Clock::time_point deadline{};
    std::function<void()> fn;
    bool armed = false;

   private:
    FakeTransport& t_;
  };
  WorkerContext* ctx_ = nullptr;
  std::set<FakeTimer*> timers;
};

// ---- frames a test delivers, as the node or a worker would send them ----

inline Frame LeaseGrantFrame(uint64_t request_id, uint64_t lease_id, const std::string& worker_address, int spare = 1,
                             const WorkerID& wid = WorkerID::FromRandom()) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto w = fbb.CreateVector(wid.data(), WorkerID::kSize);
  auto addr = fbb.CreateString(worker_address);
  return FinishFrame(fbb, proto::CreateLeaseReply(fbb, request_id, 0, 0, lease_id, w, addr, spare));
}

inline Frame LeaseErrorFrame(uint64_t request_id, StatusCode code, const std::string& message) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto m = fbb.CreateString(message);
  return FinishFrame(fbb, proto::CreateLeaseReply(fbb, request_id, static_cast<int>(code), m));
}

// A successful reply of `task` with one inline return value per entry of
// `values` (return index i + 1); `is_error` marks them error records.
inline Frame PushReplyFrame(const TaskID& task, const std::vector<std::string>& values, bool is_error = false,
                            bool retryable = false, bool actor_exited = false) {
  flatbuffers::FlatBufferBuilder fbb(256);
  std::vector<flatbuffers::Offset<proto::ReturnObject>> rets;
  for (size_t i = 0; i < values.size(); i++) {
    ObjectID id = ObjectIdFor(task, static_cast<uint32_t>(i + 1));
    auto oid = fbb.CreateVector(id.data(), ObjectID::kSize);
    auto data = fbb.CreateVector(reinterpret_cast<const uint8_t*>(values[i].data()), values[i].size());
    rets.push_back(proto::CreateReturnObject(fbb, oid, data, false, is_error, values[i].size()));
  }
  auto rv = fbb.CreateVector(rets);
  auto tid = fbb.CreateVector(task.data(), TaskID::kSize);
  return FinishFrame(fbb, proto::CreatePushTaskReply(fbb, tid, 0, 0, rv, 0, retryable, actor_exited));
}

// A spillback reply: ask again at the node server at `address`.
inline Frame SpillbackFrame(uint64_t request_id, const std::string& address) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto addr = fbb.CreateString(address);
  proto::LeaseReplyBuilder b(fbb);
  b.add_request_id(request_id);
  b.add_retry_at_address(addr);
  return FinishFrame(fbb, b.Finish());
}

inline Frame WorkerExitingFrame(int code) {
  flatbuffers::FlatBufferBuilder fbb(32);
  return FinishFrame(fbb, proto::CreateWorkerExiting(fbb, code));
}

// The node's notice that a leased worker was reaped: code >= 0 an exit code, < 0 minus a signal.
inline Frame WorkerDiedFrame(const WorkerID& wid, uint64_t lease_id, int pid, int code, const std::string& tail) {
  flatbuffers::FlatBufferBuilder fbb(128 + tail.size());
  auto w = fbb.CreateVector(wid.data(), WorkerID::kSize);
  auto t = fbb.CreateString(tail);
  return FinishFrame(fbb, proto::CreateWorkerDied(fbb, w, lease_id, pid, code >= 0 ? code : -1, code < 0 ? -code : 0, t));
}

inline TaskID SpecTaskId(const proto::Envelope* push) {
  auto* v = push->body_as_PushTask()->spec()->task_id();
  return TaskID::FromBytes(v->data());
}

inline std::string ValueOf(const LookupResult& r) { return r.data ? *r.data : std::string(); }

// A fixture with one CoreWorker over a FakeTransport.
class FakeTransportTest : public ::testing::Test {
 protected:
  void StartWorker(const std::string& address, bool is_driver = true) {
    CoreWorkerOptions o;
    o.listen_path = address;
    o.is_driver = is_driver;
    cw_ = CoreWorker::WithTransport(o, t_);
    t_.Bind(&cw_->context());
  }
  // A task class needing one CPU.
  std::shared_ptr<const TaskClass> RegisterClass(const std::string& name, const std::string& source) {
    TaskClass c;
    c.function = {"hash-" + name, source, "", ""};
    c.name = name;
    c.resources = {{"CPU", 1}};
    return cw_->submitter().GetTaskClass(cw_->submitter().RegisterTaskClass(c));
  }

  FakeTransport t_;  // outlives cw_
  std::unique_ptr<CoreWorker> cw_;
};

}  // namespace rayts::test
