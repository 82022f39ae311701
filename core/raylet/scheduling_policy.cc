#include "core/raylet/scheduling_policy.h"

#include <algorithm>
#include <vector>

namespace rayts::raylet {

namespace {
using Kind = SchedulingDecision::Kind;
constexpr const char* kCPU = "CPU";

bool Feasible(const NodeView& n, const ResourceSet& shape) { return shape.IsSubsetOf(n.total); }
bool Available(const NodeView& n, const ResourceSet& shape) { return shape.IsSubsetOf(n.available); }
std::string Short(const NodeID& id) { return id.Hex().substr(0, 8); }
}  // namespace

SchedulingPolicy::SchedulingPolicy(Options o)
    : opts_(o), rng_(o.seed != 0 ? o.seed : std::random_device{}()) {}

double SchedulingPolicy::Utilization(const NodeView& n) {
  int64_t total = n.total.GetUnits(kCPU);
  if (total <= 0) return 0;
  int64_t avail = std::max<int64_t>(0, n.available.GetUnits(kCPU));
  return 1.0 - static_cast<double>(avail) / static_cast<double>(total);
}

SchedulingDecision SchedulingPolicy::To(const ClusterView& view, const NodeID& node) const {
  SchedulingDecision d;
  if (node == view.self()) return d;  // kLocal
  d.kind = Kind::kSpill;
  d.node = node;
  if (const NodeView* n = view.Find(node)) d.address = n->address;
  return d;
}

std::string SchedulingPolicy::InfeasibleMessage(const ClusterView& view, const ResourceSet& shape) {
  std::string nodes;
  int listed = 0;
  for (auto& [id, n] : view.nodes()) {
    if (listed++ == 8) {
      nodes += ", ...";
      break;
    }
    if (!nodes.empty()) nodes += ", ";
    nodes += n.total.ToString() + (id == view.self() ? " (this node)" : " (node " + Short(id) + ")");
  }
  return "task requires " + shape.ToString() + " but no node of the cluster has that much in total (" +
         std::to_string(view.nodes().size()) + " alive: " + nodes + ")";
}

NodeID SchedulingPolicy::Hybrid(const ClusterView& view, const ResourceSet& shape, bool require_available,
                                bool skip_self) {
  // Nodes are visited in id order, so ties break the same way everywhere.
  std::vector<std::pair<NodeID, double>> available, feasible;
  bool self_available = false, self_feasible = false;
  auto score = [this](const NodeView& n) {
    double u = Utilization(n);
    return u < opts_.spread_threshold ? 0.0 : u;
  };
  for (auto& [id, n] : view.nodes()) {
    if (skip_self && id == view.self()) continue;
    if (!Feasible(n, shape)) continue;
    bool avail = Available(n, shape);
    if (id == view.self()) {
      self_feasible = true;
      self_available = avail;
    }
    (avail ? available : feasible).emplace_back(id, score(n));
  }
  auto best = [&](std::vector<std::pair<NodeID, double>>& nodes, bool prefer_self) {
    std::stable_sort(nodes.begin(), nodes.end(), [](auto& a, auto& b) { return a.second < b.second; });
    if (prefer_self) {
      const NodeView* self = view.Find(view.self());
      if (self && score(*self) <= nodes.front().second) return view.self();
    }
    size_t k = std::max<size_t>(static_cast<size_t>(std::max(1, opts_.top_k_absolute)),
                                static_cast<size_t>(static_cast<double>(view.nodes().size()) * opts_.top_k_fraction));
    k = std::min(k, nodes.size());
    std::uniform_int_distribution<size_t> pick(0, k - 1);
    return nodes[pick(rng_)].first;
  };
  if (!available.empty()) return best(available, self_available);
  if (!feasible.empty() && !require_available) return best(feasible, self_feasible);
  return NodeID::Nil();
}

NodeID SchedulingPolicy::Spread(const ClusterView& view, const ResourceSet& shape) {
  std::vector<const NodeView*> round;
  for (auto& [id, n] : view.nodes()) round.push_back(&n);
  if (round.empty()) return NodeID::Nil();
  for (bool available_only : {true, false}) {
    size_t idx = spread_next_;
    for (size_t i = 0; i < round.size(); i++, idx++) {
      const NodeView& n = *round[idx % round.size()];
      if (!Feasible(n, shape) || (available_only && !Available(n, shape))) continue;
      spread_next_ = (idx + 1) % round.size();
      return n.id;
    }
  }
  return NodeID::Nil();
}

SchedulingDecision SchedulingPolicy::Pick(const ClusterView& view, const SchedulingRequest& r) {
  SchedulingDecision fail;
  const NodeView* self = view.Find(view.self());
  if (r.strategy == proto::SchedulingStrategy::NodeAffinity) {
    const NodeView* target = view.Find(r.affinity);
    if (target && Feasible(*target, r.shape)) {
      if (r.grant_or_reject && target->id != view.self()) return SchedulingDecision{Kind::kReject};
      return To(view, target->id);
    }
    if (!r.soft) {
      fail.kind = Kind::kUnschedulable;
      std::string id = r.affinity.Hex();
      std::string why = target ? "cannot run it: it has " + target->total.ToString() + " in total"
                        : view.WasDead(r.affinity) ? "is dead"
                                                    : "is not a node of this cluster";
      fail.message = "task requires " + r.shape.ToString() + " on node " + id + " (schedulingStrategy { nodeId: '" +
                     id + "', soft: false }), but that node " + why;
      return fail;
    }
  }
  bool anywhere = false;
  for (auto& [id, n] : view.nodes()) anywhere = anywhere || Feasible(n, r.shape);
  if (!anywhere) {
    fail.kind = Kind::kInfeasible;
    fail.message = InfeasibleMessage(view, r.shape);
    return fail;
  }
  if (r.grant_or_reject) {
    if (self && Feasible(*self, r.shape) && Available(*self, r.shape)) return SchedulingDecision{};
    if (!Hybrid(view, r.shape, /*require_available=*/true, /*skip_self=*/true).IsNil()) {
      return SchedulingDecision{Kind::kReject};
    }
    if (self && Feasible(*self, r.shape)) return SchedulingDecision{};
    return SchedulingDecision{Kind::kReject};
  }
  if (r.strategy == proto::SchedulingStrategy::Spread) return To(view, Spread(view, r.shape));
  if (r.strategy == proto::SchedulingStrategy::Default && !r.locality.IsNil()) {
    const NodeView* near = view.Find(r.locality);
    if (near && Feasible(*near, r.shape) && Available(*near, r.shape)) return To(view, near->id);
  }
  return To(view, Hybrid(view, r.shape, /*require_available=*/false, /*skip_self=*/false));
}

SchedulingDecision SchedulingPolicy::Requeue(const ClusterView& view, const SchedulingRequest& r) {
  if (r.strategy == proto::SchedulingStrategy::NodeAffinity && r.affinity == view.self()) return SchedulingDecision{};
  const NodeView* self = view.Find(view.self());
  if (self && Available(*self, r.shape)) return SchedulingDecision{};
  NodeID other = Hybrid(view, r.shape, /*require_available=*/true, /*skip_self=*/true);
  if (other.IsNil()) return SchedulingDecision{};
  if (r.grant_or_reject) return SchedulingDecision{Kind::kReject};
  return To(view, other);
}

}  // namespace rayts::raylet
