// DeadNodes: the nodes of the cluster this process heard are dead (the
// GCS's NodeDied, passed on by this process's node server), and which
// addresses belong to them.
//
// Role: the components ask it whether a lease's granting node (its node
// server's TCP address), an object's primary node (NodeID) or a process
// (a peer address: its unix socket lies in the dead node's sockets
// directory, peer_address.h) died with a node, and why, so errors can name
// the node's death. A few entries: nodes die rarely; the oldest are dropped
// past kMaxKept.
// Thread safety: none; the WorkerContext keeps it under the core lock.
// Invariants: one entry per node id.
#pragma once

#include <deque>
#include <string>

#include "core/common/id.h"
#include "core/protocol/peer_address.h"

namespace rayts {

struct DeadNode {
  NodeID id;
  std::string socket;           // its node server's unix socket
  std::string manager_address;  // its node server's TCP address (ip:port)
  std::string reason;
  // "node <hex> died (<reason>)"
  std::string Describe() const { return "node " + id.Hex() + " died (" + reason + ")"; }
};

class DeadNodes {
 public:
  static constexpr size_t kMaxKept = 1024;
  // False when the node was known dead already.
  bool Add(DeadNode d) {
    if (Find(d.id)) return false;
    nodes_.push_back(std::move(d));
    if (nodes_.size() > kMaxKept) nodes_.pop_front();
    return true;
  }
  const DeadNode* Find(const NodeID& id) const {
    for (auto& n : nodes_)
      if (n.id == id) return &n;
    return nullptr;
  }
  // The dead node whose node server is at `manager_address` (a lease's node).
  const DeadNode* AtManager(const std::string& manager_address) const {
    if (manager_address.empty()) return nullptr;
    for (auto& n : nodes_)
      if (n.manager_address == manager_address) return &n;
    return nullptr;
  }
  // The dead node the process at `address` lived on.
  const DeadNode* OfProcess(const std::string& address) const {
    for (auto& n : nodes_)
      if (OnNodeOf(address, n.socket)) return &n;
    return nullptr;
  }
  size_t size() const { return nodes_.size(); }

 private:
  std::deque<DeadNode> nodes_;
};

}  // namespace rayts
