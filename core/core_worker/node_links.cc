#include "core/core_worker/node_links.h"

#include "core/core_worker/wire.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

std::shared_ptr<Link> NodeLinks::LinkLocked(const std::string& address) {
  if (address.empty()) return nullptr;
  auto it = links_.find(address);
  if (it != links_.end() && !it->second->closed()) return it->second;
  // The close handler forgets only its own link (a newer one may stand in its place).
  auto self = std::make_shared<Link*>(nullptr);
  std::shared_ptr<Link> link = transport_.Connect(
      address,
      [this, address](const proto::Envelope& e) {
        ctx_.AssertHeld();
        if (e.body_type() != proto::Body::LeaseReply) return;
        const proto::LeaseReply& r = *e.body_as_LeaseReply();
        auto w = waiting_.find(address);
        if (w != waiting_.end()) w->second.erase(r.request_id());
        backoff_.erase(address);  // it answers: not failing
        if (on_reply_) on_reply_(r);
      },
      [this, address, self](const Status&) {
        ctx_.AssertHeld();
        auto it = links_.find(address);
        if (it != links_.end() && it->second.get() == *self) OnClosedLocked(address, it->second);
      });
  if (!link) {
    links_.erase(address);
    return nullptr;
  }
  *self = link.get();
  links_[address] = link;
  return link;
}

void NodeLinks::SendRequestLocked(const std::string& address, uint64_t request_id, Frame frame) {
  if (address.empty()) {
    transport_.SendToNode(std::move(frame));
    return;
  }
  auto link = LinkLocked(address);
  if (!link) {
    // Unreachable now: the submitter asks its own node again, after this call.
    FailedLocked(address, {request_id}, /*now=*/false);
    return;
  }
  waiting_[address].insert(request_id);
  link->Send(std::move(frame));
}

void NodeLinks::SendLocked(const std::string& address, Frame frame) {
  if (address.empty()) {
    transport_.SendToNode(std::move(frame));
    return;
  }
  if (auto link = LinkLocked(address)) link->Send(std::move(frame));
}

void NodeLinks::OnNodeDeadLocked(const std::string& address) {
  if (address.empty()) return;
  backoff_.erase(address);
  std::vector<uint64_t> now;
  for (auto& [id, d] : delayed_)
    if (d.address == address) now.push_back(id);
  for (uint64_t id : now) {
    delayed_.erase(id);
    RejectLocked(id);
  }
  auto it = links_.find(address);
  if (it == links_.end()) {
    if (on_lost_) on_lost_(address);  // leases granted there may outlive their link
    return;
  }
  auto link = it->second;
  OnClosedLocked(address, link);  // forgets it first: its close handler finds nothing to do
  link->Close();
}

void NodeLinks::RejectLocked(uint64_t request_id) {
  Fbb fbb(64);
  proto::LeaseReplyBuilder b(fbb);
  b.add_request_id(request_id);
  b.add_rejected(true);
  auto frame = FinishFrame(fbb, b.Finish());
  const proto::Envelope* env = nullptr;
  if (VerifyEnvelope(frame.data(), frame.size(), &env).ok() && on_reply_) on_reply_(*env->body_as_LeaseReply());
}

void NodeLinks::OnClosedLocked(const std::string& address, const std::shared_ptr<Link>& link) {
  links_.erase(address);
  auto w = waiting_.find(address);
  std::unordered_set<uint64_t> waiting;
  if (w != waiting_.end()) {
    waiting = std::move(w->second);
    waiting_.erase(w);
  }
  FailedLocked(address, std::vector<uint64_t>(waiting.begin(), waiting.end()), /*now=*/true);
  if (on_lost_) on_lost_(address);
}

void NodeLinks::FailedLocked(const std::string& address, std::vector<uint64_t> ids, bool now) {
  auto b = backoff_.find(address);
  if (b == backoff_.end()) {
    // The first failure in a row: rejected at once (now, or right after the caller).
    backoff_[address] = kFirstBackoff;
    for (uint64_t id : ids) {
      if (now) {
        RejectLocked(id);
      } else {
        transport_.Post([this, id] {
          ctx_.AssertHeld();
          RejectLocked(id);
        });
      }
    }
    return;
  }
  Clock::duration wait = b->second;
  b->second = std::min<Clock::duration>(b->second * 2, kMaxBackoff);
  for (uint64_t id : ids) {
    auto timer = transport_.NewTimer();
    Timer* t = timer.get();
    delayed_[id] = Delayed{address, std::move(timer)};
    t->Arm(wait, [this, id] {
      ctx_.AssertHeld();
      delayed_.erase(id);  // this timer (CrashCauses ends its timers in their handlers too)
      RejectLocked(id);
    });
  }
}

}  // namespace rayts
