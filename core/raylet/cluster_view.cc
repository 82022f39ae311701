#include "core/raylet/cluster_view.h"

#include <utility>

namespace rayts::raylet {

void ClusterView::UpdateSelf(const ResourceSet& total, const ResourceSet& available) {
  NodeView& v = nodes_[self_];
  v.id = self_;
  v.total = total;
  v.available = available;
}

bool ClusterView::Apply(const NodeID& id, uint64_t version, bool alive, std::string address, ResourceSet total,
                        ResourceSet available) {
  if (id == self_) return false;
  auto it = nodes_.find(id);
  if (!alive) {
    dead_[id] = true;
    if (it == nodes_.end()) return false;
    nodes_.erase(it);
    return true;
  }
  if (dead_.count(id)) return false;  // a dead node does not come back (it registers as a new one)
  if (it != nodes_.end() && version < it->second.version) return false;
  NodeView& v = nodes_[id];
  v.id = id;
  v.version = version;
  v.address = std::move(address);
  v.total = std::move(total);
  v.available = std::move(available);
  return true;
}

void ClusterView::AllocateRemote(const NodeID& id, const ResourceSet& shape) {
  auto it = nodes_.find(id);
  if (it == nodes_.end() || id == self_) return;
  it->second.available.SubtractAllowingNegative(shape);
}

const NodeView* ClusterView::Find(const NodeID& id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

}  // namespace rayts::raylet
