// ClusterView: a node's view of the resources of every node of its cluster
// (Ray's ClusterResourceManager), what its scheduling policy decides on.
//
// Role: one entry per node the GCS told this node about (ResourceViewUpdate,
// every 100 ms, versioned), plus this node itself, whose entry the node
// server keeps current from its LeaseManager before every decision. A
// lease spilled to another node is deducted from that node's entry at once
// (AllocateRemote), so the next decisions do not pile onto it on a stale
// view; the next view from the GCS replaces the deduction.
// Ownership: owned by the NodeServer; plain data.
// Thread safety: none; the node server's io thread.
// Invariants: a dead node has no entry; an entry is replaced only by a view
// of the same or a newer version.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/common/id.h"
#include "core/raylet/resource_set.h"

namespace rayts::raylet {

struct NodeView {
  NodeID id;
  std::string address;  // its node server's TCP address (ip:port); empty for this node
  ResourceSet total;
  ResourceSet available;
  uint64_t version = 0;
};

class ClusterView {
 public:
  explicit ClusterView(NodeID self) : self_(self) {}
  const NodeID& self() const { return self_; }

  // This node's live numbers.
  void UpdateSelf(const ResourceSet& total, const ResourceSet& available);
  // A view from the GCS (this node's own is ignored). alive = false removes
  // the node; an older version than the one held is ignored. True when it
  // changed the view.
  bool Apply(const NodeID& id, uint64_t version, bool alive, std::string address, ResourceSet total,
             ResourceSet available);
  // A lease of `shape` was spilled to `id`: take it off that node's
  // available until its next view.
  void AllocateRemote(const NodeID& id, const ResourceSet& shape);

  const NodeView* Find(const NodeID& id) const;
  // Every node known alive, this one included, in id order.
  const std::map<NodeID, NodeView>& nodes() const { return nodes_; }
  // Whether `id` was known and then reported dead (for error messages).
  bool WasDead(const NodeID& id) const { return dead_.count(id) != 0; }

 private:
  NodeID self_;
  std::map<NodeID, NodeView> nodes_;
  std::map<NodeID, bool> dead_;
};

}  // namespace rayts::raylet
