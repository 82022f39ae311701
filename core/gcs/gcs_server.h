// GcsServer: the cluster's control-plane tables (node table, job table, KV).
//
// Role: in embedded mode it is hosted by the NodeServer of the driver process
// and reached through GcsRequest messages on the node socket; the cluster
// issue hosts the same class in a head daemon. Tables are in memory.
// Thread safety: not thread-safe; its host calls it on one io thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/common/id.h"
#include "core/common/status.h"
#include "core/gcs/actor_table.h"

namespace rayts::gcs {

struct NodeInfo {
  NodeID node_id;
  std::string address;   // node server socket
  bool alive = true;
  std::vector<std::pair<std::string, double>> resources;
  int64_t start_time_ms = 0;
};

struct JobInfo {
  JobID job_id = 0;
  int driver_pid = 0;
  bool alive = true;
  int64_t start_time_ms = 0;
  std::string namespace_;
};

class GcsServer {
 public:
  void RegisterNode(NodeInfo node);
  Status MarkNodeDead(const NodeID& id);
  const std::vector<NodeInfo>& nodes() const { return nodes_; }

  JobID AddJob(int driver_pid, const std::string& ns);
  Status MarkJobFinished(JobID id);
  const std::map<JobID, JobInfo>& jobs() const { return jobs_; }

  void KvPut(const std::string& key, std::string value) { kv_[key] = std::move(value); }
  StatusOr<std::string> KvGet(const std::string& key) const;
  bool KvDel(const std::string& key) { return kv_.erase(key) > 0; }
  std::vector<std::string> KvKeys(const std::string& prefix) const;

  // Actor table (lifecycle state machine, names per namespace). The actor
  // runtime that drives it comes with the actors issue.
  ActorTable& actors() { return actors_; }
  const ActorTable& actors() const { return actors_; }

  // JSON views used by ray.nodes() and the job listing.
  std::string NodesJson() const;
  std::string JobsJson() const;

 private:
  std::vector<NodeInfo> nodes_;
  std::map<JobID, JobInfo> jobs_;
  std::map<std::string, std::string> kv_;
  ActorTable actors_;
  JobID next_job_id_ = 1;
};

std::string ResourcesJson(const std::vector<std::pair<std::string, double>>& r);

}  // namespace rayts::gcs
