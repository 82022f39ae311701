// NodeServer's lease handling (see node_server.h): a RequestWorkerLease from
// a local client or, in cluster mode, from an owner on another node; where
// it goes (granted here, spilled back, rejected, failed); queued requests
// reconsidered as the cluster's views change.
#include <cmath>

#include "core/raylet/node_server.h"
#include "core/raylet/node_server_client.h"

namespace rayts::raylet {

namespace {
using Fbb = flatbuffers::FlatBufferBuilder;
using Kind = SchedulingDecision::Kind;
std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }
// Shapes refused as infeasible stay in `rayts status` this long.
constexpr auto kInfeasibleShown = std::chrono::seconds(60);
}  // namespace

int NodeServer::SpareFor(const ResourceSet& req) {
  ResourceSet avail = leases_->available();
  int spare = -1;
  for (auto& [name, amount] : req.ToVector()) {
    if (amount <= 0) continue;
    int n = static_cast<int>(std::floor(avail.Get(name) / amount + 1e-9));
    spare = spare < 0 ? n : std::min(spare, n);
  }
  return spare < 0 ? 0 : spare;
}

void NodeServer::ReplyLeaseError(const std::shared_ptr<Client>& c, uint64_t request_id, const Status& s) {
  Fbb fbb(256);
  auto msg = fbb.CreateString(s.message());
  proto::LeaseReplyBuilder b(fbb);
  b.add_request_id(request_id);
  b.add_code(static_cast<int>(s.code()));
  b.add_message(msg);
  c->conn->Send(FinishFrame(fbb, b.Finish()));
}

void NodeServer::ReplyRedirect(const std::shared_ptr<Client>& c, uint64_t request_id, const SchedulingDecision& d) {
  Fbb fbb(256);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> nid;
  flatbuffers::Offset<flatbuffers::String> addr;
  if (d.kind == Kind::kSpill) {
    nid = fbb.CreateVector(d.node.data(), NodeID::kSize);
    addr = fbb.CreateString(d.address);
  }
  proto::LeaseReplyBuilder b(fbb);
  b.add_request_id(request_id);
  if (d.kind == Kind::kSpill) {
    b.add_retry_at_node_id(nid);
    b.add_retry_at_address(addr);
  } else {
    b.add_rejected(true);
  }
  c->conn->Send(FinishFrame(fbb, b.Finish()));
}

void NodeServer::HandleLease(const std::shared_ptr<Client>& c, const proto::RequestWorkerLease* r) {
  std::vector<std::pair<std::string, double>> shape;
  if (r->resources())
    for (auto* e : *r->resources()) shape.emplace_back(Str(e->name()), e->amount());
  auto rs = ResourceSet::FromMap(shape);
  if (!rs.ok()) {
    ReplyLeaseError(c, r->request_id(), rs.status());
    return;
  }
  if (c->remote && r->owner_address()) c->owner_address = r->owner_address()->str();
  SchedulingRequest sr;
  sr.shape = *rs;
  sr.strategy = r->strategy();
  if (r->affinity_node_id() && r->affinity_node_id()->size() == NodeID::kSize) {
    sr.affinity = NodeID::FromBytes(r->affinity_node_id()->data());
  }
  sr.soft = r->affinity_soft();
  sr.grant_or_reject = r->grant_or_reject();
  if (r->locality_node_id() && r->locality_node_id()->size() == NodeID::kSize) {
    sr.locality = NodeID::FromBytes(r->locality_node_id()->data());
  }
  if (view_) {
    // Cluster mode: which node (embedded mode has one: straight to the queue).
    view_->UpdateSelf(leases_->total(), leases_->available());
    SchedulingDecision d = policy_.Pick(*view_, sr);
    switch (d.kind) {
      case Kind::kLocal:
        break;
      case Kind::kSpill:
        spilled_leases_++;
        view_->AllocateRemote(d.node, sr.shape);
        ReplyRedirect(c, r->request_id(), d);
        return;
      case Kind::kReject:
        ReplyRedirect(c, r->request_id(), d);
        return;
      case Kind::kInfeasible:
        RecordInfeasible(sr.shape);
        ReplyLeaseError(c, r->request_id(), Status::Infeasible(d.message));
        return;
      case Kind::kUnschedulable:
        ReplyLeaseError(c, r->request_id(), Status::Infeasible(d.message));
        return;
    }
  }
  QueueLease(c, r, sr);
}

void NodeServer::QueueLease(const std::shared_ptr<Client>& c, const proto::RequestWorkerLease* r,
                            const SchedulingRequest& sr) {
  uint64_t req_id = r->request_id();
  uint64_t cid = c->conn->id();
  uint64_t key = next_request_key_++;
  c->requests[req_id] = key;
  request_owner_[key] = {cid, req_id};
  if (view_) queued_sched_[key] = sr;
  std::weak_ptr<Client> weak = c;
  ResourceSet req = sr.shape;
  bool for_actor = r->for_actor();
  bool detached = r->detached();
  bool retriable = r->retriable();
  // Fair share among owners and functions (LeaseManager): one share per
  // scheduling key of one connection.
  uint64_t share = (cid * 0x9E3779B97F4A7C15ull) ^ r->scheduling_key();
  if (share == 0) share = 1;
  leases_->RequestLease(key, req, [this, weak, key, req_id, req, cid, for_actor, detached,
                                   retriable](StatusOr<Lease> lease) {
    request_owner_.erase(key);
    queued_sched_.erase(key);
    std::optional<SchedulingDecision> redirect;
    if (auto it = redirects_.find(key); it != redirects_.end()) {
      redirect = it->second;
      redirects_.erase(it);
    }
    auto c = weak.lock();
    if (c) c->requests.erase(req_id);
    if (!c || c->conn->closed()) {
      if (lease.ok()) (void)leases_->ReturnLease(lease->lease_id, false);  // just granted
      return;
    }
    if (!lease.ok()) {
      // Withdrawn from the queue to go elsewhere (SpillQueued): say where.
      if (redirect && lease.status().code() == StatusCode::kCancelled) ReplyRedirect(c, req_id, *redirect);
      else ReplyLeaseError(c, req_id, lease.status());
      return;
    }
    granted_[lease->lease_id] = LeaseRecord{cid, lease->worker_id, for_actor, detached, retriable};
    Fbb fbb(256);
    auto wid = fbb.CreateVector(lease->worker_id.data(), WorkerID::kSize);
    auto addr = fbb.CreateString(worker_address_[lease->worker_id]);
    proto::LeaseReplyBuilder b(fbb);
    b.add_request_id(req_id);
    b.add_lease_id(lease->lease_id);
    b.add_worker_id(wid);
    b.add_worker_address(addr);
    b.add_spare(SpareFor(req));
    c->conn->Send(FinishFrame(fbb, b.Finish()));
  }, share);
}

void NodeServer::OnView(const proto::ResourceViewUpdate& u) {
  if (!view_ || !u.views()) return;
  bool changed = false;
  for (auto* v : *u.views()) {
    if (!v->node_id() || v->node_id()->size() != NodeID::kSize) continue;
    auto list = [](const flatbuffers::Vector<flatbuffers::Offset<proto::ResourceEntry>>* r) {
      std::vector<std::pair<std::string, double>> out;
      if (r)
        for (auto* e : *r) out.emplace_back(Str(e->name()), std::max(0.0, e->amount()));
      return ResourceSet::FromMap(out);
    };
    auto total = list(v->total());
    auto avail = list(v->available());
    if (!total.ok() || !avail.ok()) continue;
    changed |= view_->Apply(NodeID::FromBytes(v->node_id()->data()), v->version(), v->alive(), Str(v->address()),
                            std::move(total).value(), std::move(avail).value());
  }
  if (changed) SpillQueued();
}

void NodeServer::SpillQueued() {
  if (!view_) return;
  view_->UpdateSelf(leases_->total(), leases_->available());
  for (auto& [key, shape] : leases_->QueuedRequests()) {
    auto it = queued_sched_.find(key);
    if (it == queued_sched_.end()) continue;
    SchedulingDecision d = policy_.Requeue(*view_, it->second);
    if (d.kind == Kind::kLocal) continue;
    if (d.kind == Kind::kSpill) {
      spilled_leases_++;
      view_->AllocateRemote(d.node, shape);
    }
    redirects_[key] = d;
    leases_->CancelRequest(key);  // its callback sends the redirect
  }
}

void NodeServer::RecordInfeasible(const ResourceSet& shape) {
  Infeasible& e = infeasible_[shape.ToString()];
  e.shape = shape;
  e.count++;
  e.last = std::chrono::steady_clock::now();
}

std::vector<std::pair<GcsLink::Resources, int>> NodeServer::InfeasibleDemand() {
  std::vector<std::pair<GcsLink::Resources, int>> out;
  auto now = std::chrono::steady_clock::now();
  for (auto it = infeasible_.begin(); it != infeasible_.end();) {
    if (now - it->second.last > kInfeasibleShown) {
      it = infeasible_.erase(it);
      continue;
    }
    out.emplace_back(it->second.shape.ToVector(), it->second.count);
    ++it;
  }
  return out;
}

}  // namespace rayts::raylet
