#include "core/gcs/gcs_server.h"

#include <chrono>
#include <cstdio>

#include "core/common/json.h"

namespace rayts::gcs {

namespace {
int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}
std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.10g", v);
  return buf;
}
}  // namespace

std::string ResourcesJson(const std::vector<std::pair<std::string, double>>& r) {
  std::string out = "{";
  bool first = true;
  for (auto& [name, amount] : r) {
    if (!first) out += ",";
    first = false;
    JsonEscapeTo(&out, name);
    out += ":" + Num(amount);
  }
  return out + "}";
}

void GcsServer::RegisterNode(NodeInfo node) {
  if (node.start_time_ms == 0) node.start_time_ms = NowMs();
  for (auto& n : nodes_) {
    if (n.node_id == node.node_id) { n = std::move(node); return; }
  }
  nodes_.push_back(std::move(node));
}

Status GcsServer::MarkNodeDead(const NodeID& id) {
  for (auto& n : nodes_) {
    if (n.node_id == id) { n.alive = false; return Status::OK(); }
  }
  return Status::NotFound("node " + id.Hex() + " is not registered");
}

JobID GcsServer::AddJob(int driver_pid, const std::string& ns) {
  JobID id = next_job_id_++;
  jobs_[id] = JobInfo{id, driver_pid, true, NowMs(), ns};
  return id;
}

Status GcsServer::MarkJobFinished(JobID id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status::NotFound("job " + std::to_string(id) + " is not registered");
  it->second.alive = false;
  return Status::OK();
}

StatusOr<std::string> GcsServer::KvGet(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return Status::NotFound("no key " + key);
  return it->second;
}

std::vector<std::string> GcsServer::KvKeys(const std::string& prefix) const {
  std::vector<std::string> out;
  for (auto it = kv_.lower_bound(prefix); it != kv_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
    out.push_back(it->first);
  return out;
}

std::string GcsServer::NodesJson() const {
  std::string out = "[";
  for (size_t i = 0; i < nodes_.size(); i++) {
    const NodeInfo& n = nodes_[i];
    if (i) out += ",";
    out += "{\"nodeId\":" + JsonString(n.node_id.Hex()) + ",\"alive\":" + (n.alive ? "true" : "false") +
           ",\"address\":" + JsonString(n.address) + ",\"resources\":" + ResourcesJson(n.resources) +
           ",\"startTimeMs\":" + std::to_string(n.start_time_ms) + "}";
  }
  return out + "]";
}

std::string GcsServer::JobsJson() const {
  std::string out = "[";
  bool first = true;
  for (auto& [id, j] : jobs_) {
    if (!first) out += ",";
    first = false;
    out += "{\"jobId\":" + std::to_string(id) + ",\"driverPid\":" + std::to_string(j.driver_pid) +
           ",\"alive\":" + (j.alive ? "true" : "false") + ",\"namespace\":" + JsonString(j.namespace_) + "}";
  }
  return out + "]";
}

}  // namespace rayts::gcs
