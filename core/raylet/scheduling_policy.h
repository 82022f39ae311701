// SchedulingPolicy: where a lease request goes in a cluster (Ray's
// HybridSchedulingPolicy, SpreadSchedulingPolicy and
// NodeAffinitySchedulingPolicy, with ClusterLeaseManager's spillback rules).
//
// Role: pure decisions over a ClusterView. The node server asks Pick for a
// new request (grant here, spill back to another node, reject, or fail) and
// Requeue for a request queued here that cannot run here now (Ray's
// TrySpillback).
//   Default (hybrid): among the nodes that can run the request now, a
//     node's score is its critical resource utilization (CPU in use /
//     total), rounded to 0 below spread_threshold (0.5); this node wins
//     when its score is the lowest, otherwise one of the top k lowest
//     (k = max(top_k_absolute, top_k_fraction x nodes), ties broken by
//     node id) at random. So requests pack onto a node until half its CPUs
//     are used, then spread. When no node can run it now, the same among
//     the nodes that could once resources free up (this node first).
//   Locality (Default with a locality node, Ray's LocalityAwareLeasePolicy):
//     the node holding most of the task's argument bytes when it can run the
//     request now; otherwise the hybrid choice.
//   Spread: round robin over the nodes in id order (the ones that can run
//     it now first, else the ones that could).
//   NodeAffinity: the named node if it is alive and its totals fit; else,
//     soft, the hybrid choice; hard, Unschedulable naming the node.
//   grant_or_reject (a request a spillback sent here): granted here when
//     this node can run it now, or when no node can and this one could;
//     rejected otherwise (the owner asks its first node again). Never spilled
//     on: single-hop spillback. Affinity to this node always queues here.
// A request no alive node could ever run (its totals) is Infeasible, at
// once: nothing waits for a node that may never come.
// Thread safety: none; the node server's io thread.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "core/raylet/cluster_view.h"
#include "protocol/messages_generated.h"

namespace rayts::raylet {

struct SchedulingRequest {
  ResourceSet shape;
  proto::SchedulingStrategy strategy = proto::SchedulingStrategy::Default;
  NodeID affinity = NodeID::Nil();
  bool soft = false;
  bool grant_or_reject = false;
  // Default strategy: the node holding most of the task's plasma argument
  // bytes (nil: none elsewhere); picked first when it can run the request now.
  NodeID locality = NodeID::Nil();
};

struct SchedulingDecision {
  enum class Kind { kLocal, kSpill, kReject, kInfeasible, kUnschedulable };
  Kind kind = Kind::kLocal;
  NodeID node = NodeID::Nil();  // kSpill
  std::string address;          // kSpill: its node server's TCP address
  std::string message;          // kInfeasible, kUnschedulable
};

class SchedulingPolicy {
 public:
  struct Options {
    double spread_threshold = 0.5;  // Ray: scheduler_spread_threshold
    double top_k_fraction = 0.2;    // Ray: scheduler_top_k_fraction
    int top_k_absolute = 1;         // Ray: scheduler_top_k_absolute
    uint64_t seed = 0;              // 0: random
  };
  explicit SchedulingPolicy(Options o);
  SchedulingPolicy() : SchedulingPolicy(Options{}) {}

  SchedulingDecision Pick(const ClusterView& view, const SchedulingRequest& r);
  // A request queued here that does not fit here now: kSpill (or kReject for
  // grant_or_reject) when another node can run it now, else kLocal (stay).
  SchedulingDecision Requeue(const ClusterView& view, const SchedulingRequest& r);

  // Critical resource utilization of a node: CPU in use over its total
  // (0 for a node without CPUs), as Ray computes it for CPU.
  static double Utilization(const NodeView& n);

 private:
  // Hybrid choice among nodes that can run `shape` now (require_available)
  // or could; nil when none.
  NodeID Hybrid(const ClusterView& view, const ResourceSet& shape, bool require_available, bool skip_self);
  NodeID Spread(const ClusterView& view, const ResourceSet& shape);
  SchedulingDecision To(const ClusterView& view, const NodeID& node) const;
  static std::string InfeasibleMessage(const ClusterView& view, const ResourceSet& shape);

  Options opts_;
  std::mt19937_64 rng_;
  size_t spread_next_ = 0;
};

}  // namespace rayts::raylet
