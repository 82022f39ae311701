#include "core/core_worker/borrower_protocol.h"

#include "core/core_worker/wire.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

void BorrowerProtocol::StageNested(std::vector<NestedRefIn> refs) {
  CoreGuard lock(ctx_);
  for (auto& r : refs) {
    if (r.owner_address == ctx_.address()) r.owner_address.clear();
    staged_.push_back(std::move(r));
  }
}

std::vector<NestedRefIn> BorrowerProtocol::TakeStagedLocked() {
  std::vector<NestedRefIn> out;
  out.swap(staged_);
  return out;
}

void BorrowerProtocol::HoldNestedLocked(const std::vector<NestedRefIn>& nested, const ObjectID* outer,
                                        std::vector<ObjectID>* held) {
  std::vector<ObjectID> inners;
  for (auto& n : nested) {
    bool created = outer ? refs_->AddContained(n.id, n.owner_address) : refs_->AddSubmittedRef(n.id, n.owner_address);
    if (created) RegisterBorrowLocked(n.id, n.owner_address);
    inners.push_back(n.id);
  }
  if (outer) refs_->SetContains(*outer, std::move(inners));
  if (held) held->insert(held->end(), inners.begin(), inners.end());
}

// Until the owner acknowledges, frames that release anything wait
// (QueueReleasingLocked), so whoever handed us the ref keeps it until the
// owner knows about us.
void BorrowerProtocol::RegisterBorrowLocked(const ObjectID& id, const std::string& owner) {
  if (ctx_.IsSelf(owner)) return;
  auto link = LinkToLocked(owner);
  if (!link) return;  // the owner is dead: a get reports OwnerDiedError
  uint64_t rid = ctx_.NextRequestId();
  pending_acks_[rid] = owner;
  refs_->AddRegistered(id, 1);
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  auto me = fbb.CreateString(ctx_.address());
  link->Send(FinishFrame(fbb, proto::CreateAddBorrower(fbb, rid, oid, me)));
}

void BorrowerProtocol::RegisterOnBehalfLocked(const ObjectID& id, const std::string& owner,
                                              const std::string& borrower) {
  if (borrower.empty()) return;
  if (ctx_.IsSelf(owner)) {
    if (refs_->AddBorrower(id, borrower)) WatchBorrowerLocked(borrower);
    return;
  }
  auto link = LinkToLocked(owner);
  if (!link) return;
  uint64_t rid = ctx_.NextRequestId();
  pending_acks_[rid] = owner;
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  auto who = fbb.CreateString(borrower);
  link->Send(FinishFrame(fbb, proto::CreateAddBorrower(fbb, rid, oid, who)));
}

// Owner side: a link to the borrower's listen socket; when it closes (the
// process died or shut down) its registrations are dropped.
void BorrowerProtocol::WatchBorrowerLocked(const std::string& address) {
  if (ctx_.IsSelf(address)) return;
  if (!LinkToLocked(address)) refs_->DropBorrower(address);
}

void BorrowerProtocol::OnBorrowerMessageLocked(const std::shared_ptr<Link>& from, const proto::Envelope& env) {
  if (env.body_type() == proto::Body::AddBorrower) {
    auto* m = env.body_as_AddBorrower();
    ObjectID id = IdFrom<ObjectID>(m->object_id());
    std::string who = Str(m->borrower_address());
    // Unknown (already freed) objects are not recorded: the borrower's get
    // then reports ObjectLostError.
    if (refs_->AddBorrower(id, who)) WatchBorrowerLocked(who);
    if (m->request_id() != 0) {
      Fbb fbb(32);
      from->Send(FinishFrame(fbb, proto::CreateBorrowerAck(fbb, m->request_id())));
    }
  } else if (env.body_type() == proto::Body::RemoveBorrower) {
    auto* m = env.body_as_RemoveBorrower();
    refs_->RemoveBorrower(IdFrom<ObjectID>(m->object_id()), Str(m->borrower_address()), m->count());
  }
}

void BorrowerProtocol::AckedLocked(uint64_t request_id) {
  if (pending_acks_.erase(request_id) == 0 || !pending_acks_.empty()) return;
  auto frames = std::move(deferred_);
  deferred_.clear();
  for (auto& [link, f] : frames) link->Send(std::move(f));
}

void BorrowerProtocol::SendAllForExitLocked(const std::shared_ptr<Link>& to, Frame frame) {
  pending_acks_.clear();
  auto frames = std::move(deferred_);
  deferred_.clear();
  for (auto& [link, f] : frames) link->Send(std::move(f));
  to->Send(std::move(frame));
}

void BorrowerProtocol::QueueReleasingLocked(const std::shared_ptr<Link>& to, Frame frame) {
  if (pending_acks_.empty()) {
    to->Send(std::move(frame));
  } else {
    deferred_.emplace_back(to, std::move(frame));
  }
}

void BorrowerProtocol::ReleaseLocked(const ObjectID& id, const ReferenceCounter::Ref& ref) {
  if (ref.owned || ref.registered <= 0) return;
  // Give our registrations back to the owner (after any pending ack).
  auto link = LinkToLocked(ref.owner_address);
  if (!link) return;
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  auto me = fbb.CreateString(ctx_.address());
  QueueReleasingLocked(link, FinishFrame(fbb, proto::CreateRemoveBorrower(fbb, oid, me, ref.registered)));
}

void BorrowerProtocol::AdoptNestedLocked(const ObjectID& outer, bool outer_alive, const proto::ReturnObject* ret) {
  std::vector<ObjectID> inners;
  for (auto* n : *ret->nested()) {
    ObjectID id = IdFrom<ObjectID>(n->object_id());
    std::string owner = Str(n->owner_address());
    if (ctx_.IsSelf(owner)) {
      // We own it: the registration made for us becomes a contained count.
      if (!refs_->Has(id)) continue;
      if (outer_alive) {
        refs_->AddContained(id, "");
        inners.push_back(id);
      }
      refs_->RemoveBorrower(id, ctx_.address(), 1);
      continue;
    }
    refs_->AddContained(id, owner);
    refs_->AddRegistered(id, 1);  // made on our behalf: no AddBorrower of our own
    if (outer_alive) inners.push_back(id);
    else refs_->RemoveContained(id);
  }
  if (outer_alive && !inners.empty()) refs_->SetContains(outer, std::move(inners));
}

std::shared_ptr<Link> BorrowerProtocol::LinkToLocked(const std::string& address) {
  auto it = links_.find(address);
  if (it != links_.end() && !it->second->closed()) return it->second;
  // The handlers run later (core lock held); `self` is set before then.
  auto self = std::make_shared<std::weak_ptr<Link>>();
  auto link = transport_.Connect(
      address,
      [this](const proto::Envelope& e) {
        ctx_.AssertHeld();
        if (e.body_type() == proto::Body::BorrowerAck) {
          AckedLocked(e.body_as_BorrowerAck()->request_id());
        } else if (e.body_type() == proto::Body::GetObjectReply && hooks_.on_get_reply) {
          hooks_.on_get_reply(*e.body_as_GetObjectReply());
        }
      },
      [this, address, self](const Status&) {
        ctx_.AssertHeld();
        OnPeerClosedLocked(address, self->lock());
      });
  if (!link) return nullptr;
  *self = link;
  links_[address] = link;
  return link;
}

// The process at `address` is gone (our link to its socket closed).
void BorrowerProtocol::OnPeerClosedLocked(const std::string& address, const std::shared_ptr<Link>& link) {
  if (ctx_.shutting_down) return;
  auto it = links_.find(address);
  if (it != links_.end() && link && it->second != link) return;  // an older link
  // Every fetch still waiting on it fails.
  if (hooks_.on_peer_gone) hooks_.on_peer_gone(address);
  // As a borrower of our objects, it holds nothing any more.
  refs_->DropBorrower(address);
  // As an owner, it will not acknowledge registrations.
  std::vector<uint64_t> acks;
  for (auto& [rid, owner] : pending_acks_)
    if (owner == address) acks.push_back(rid);
  for (auto rid : acks) AckedLocked(rid);
}

}  // namespace rayts
