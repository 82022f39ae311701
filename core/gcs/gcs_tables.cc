#include "core/gcs/gcs_tables.h"

#include <chrono>
#include <cstdio>

#include <algorithm>

namespace rayts::gcs {

namespace {
int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

void GcsTables::RegisterNode(NodeInfo node) {
  if (node.start_time_ms == 0) node.start_time_ms = NowMs();
  if (node.available.empty()) node.available = node.resources;  // until its first report
  for (auto& n : nodes_) {
    if (n.node_id == node.node_id) { n = std::move(node); return; }
  }
  nodes_.push_back(std::move(node));
}

Status GcsTables::MarkNodeDead(const NodeID& id) {
  for (auto& n : nodes_) {
    if (n.node_id == id) { n.alive = false; return Status::OK(); }
  }
  return Status::NotFound("node " + id.Hex() + " is not registered");
}

JobID GcsTables::AddJob(int driver_pid, const std::string& ns) {
  JobID id = next_job_id_++;
  jobs_[id] = JobInfo{id, driver_pid, true, NowMs(), ns};
  return id;
}

Status GcsTables::MarkJobFinished(JobID id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status::NotFound("job " + std::to_string(id) + " is not registered");
  it->second.alive = false;
  return Status::OK();
}

StatusOr<std::string> GcsTables::KvGet(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return Status::NotFound("no key " + key);
  return it->second;
}

std::vector<std::string> GcsTables::KvKeys(const std::string& prefix) const {
  std::vector<std::string> out;
  for (auto it = kv_.lower_bound(prefix); it != kv_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
    out.push_back(it->first);
  return out;
}

Status GcsTables::ReportResources(const NodeID& id, std::vector<std::pair<std::string, double>> available) {
  for (auto& n : nodes_) {
    if (n.node_id == id) { n.available = std::move(available); return Status::OK(); }
  }
  return Status::NotFound("node " + id.Hex() + " is not registered");
}

namespace {
void AddTo(std::vector<std::pair<std::string, double>>* sum, const std::string& name, double amount) {
  for (auto& [n, a] : *sum) {
    if (n == name) { a += amount; return; }
  }
  sum->emplace_back(name, amount);
}
}  // namespace

std::vector<std::pair<std::string, double>> GcsTables::ClusterTotals() const {
  std::vector<std::pair<std::string, double>> out;
  for (auto& n : nodes_) {
    if (!n.alive) continue;
    for (auto& [name, amount] : n.resources) {
      if (amount > 0) AddTo(&out, name, amount);
    }
  }
  return out;
}

std::vector<std::pair<std::string, double>> GcsTables::ClusterAvailable() const {
  std::vector<std::pair<std::string, double>> out;
  for (auto& n : nodes_) {
    if (!n.alive) continue;
    for (auto& [name, total] : n.resources) {
      if (total <= 0) continue;
      double free = 0;
      for (auto& [an, aa] : n.available) if (an == name) free = aa;
      AddTo(&out, name, std::max(0.0, free));
    }
  }
  return out;
}

}  // namespace rayts::gcs
