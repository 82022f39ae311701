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

// The store's records: one line of tab-separated fields (names and
// numbers); the tables in memory are the ones read. A persistent store
// reads them back with the same layout.
void GcsTables::StoreNode(const NodeInfo& n) {
  std::string v = n.address + "\t" + (n.alive ? "1" : "0") + "\t" + n.node_ip + "\t" + n.hostname + "\t" +
                  (n.is_head ? "1" : "0") + "\t" + std::to_string(n.pid) + "\t" + std::to_string(n.start_time_ms) +
                  "\t" + std::to_string(n.end_time_ms) + "\t" + n.death_reason;
  for (auto& [name, amount] : n.resources) v += "\t" + name + "=" + std::to_string(amount);
  (void)store_->Put("node", n.node_id.Hex(), std::move(v));  // in memory: cannot fail
}

void GcsTables::StoreJob(const JobInfo& j) {
  (void)store_->Put("job", std::to_string(j.job_id),
                    std::to_string(j.driver_pid) + "\t" + (j.alive ? "1" : "0") + "\t" +
                        std::to_string(j.start_time_ms) + "\t" + j.namespace_);
}

void GcsTables::RegisterNode(NodeInfo node) {
  if (node.start_time_ms == 0) node.start_time_ms = NowMs();
  if (node.available.empty()) node.available = node.resources;  // until its first report
  StoreNode(node);
  for (auto& n : nodes_) {
    if (n.node_id == node.node_id) { n = std::move(node); return; }
  }
  nodes_.push_back(std::move(node));
}

const NodeInfo* GcsTables::node(const NodeID& id) const {
  for (auto& n : nodes_) {
    if (n.node_id == id) return &n;
  }
  return nullptr;
}

Status GcsTables::MarkNodeDead(const NodeID& id, const std::string& reason) {
  for (auto& n : nodes_) {
    if (n.node_id != id) continue;
    if (n.alive) {
      n.alive = false;
      n.death_reason = reason;
      n.end_time_ms = NowMs();
      StoreNode(n);
    }
    return Status::OK();
  }
  return Status::NotFound("node " + id.Hex() + " is not registered");
}

JobID GcsTables::AddJob(int driver_pid, const std::string& ns) {
  JobID id = next_job_id_++;
  jobs_[id] = JobInfo{id, driver_pid, true, NowMs(), ns};
  StoreJob(jobs_[id]);
  return id;
}

Status GcsTables::MarkJobFinished(JobID id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status::NotFound("job " + std::to_string(id) + " is not registered");
  it->second.alive = false;
  StoreJob(it->second);
  return Status::OK();
}

NodeID GcsTables::NodeOfAddress(const std::string& address) const {
  for (auto& n : nodes_) {
    if (!n.alive || n.session_dir.empty()) continue;
    const std::string dir = n.session_dir + "/";
    if (address.compare(0, dir.size(), dir) == 0) return n.node_id;
  }
  return NodeID::Nil();
}

std::vector<std::string> GcsTables::KvKeys(const std::string& prefix) const {
  std::vector<std::string> out;
  for (auto& [key, value] : store_->GetAll("kv")) {
    if (key.compare(0, prefix.size(), prefix) == 0) out.push_back(key);
  }
  return out;
}

Status GcsTables::ReportResources(const NodeID& id, std::vector<std::pair<std::string, double>> available,
                                  uint64_t version) {
  for (auto& n : nodes_) {
    if (n.node_id != id) continue;
    if (version != 0 && version < n.report_version) return Status::OK();  // stale
    if (version != 0) n.report_version = version;
    n.available = std::move(available);
    return Status::OK();
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
