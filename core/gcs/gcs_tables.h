// GcsTables: the cluster's control-plane tables (node table, job table, KV,
// actor table).
//
// Role: the state behind the GcsService (gcs_service.h), which answers the
// wire requests; pure data, no sockets. Tables are in memory; a storage
// interface for persistence comes with GCS fault tolerance.
// Thread safety: not thread-safe; the GcsService's host calls it on one io
// thread.
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
  std::vector<std::pair<std::string, double>> resources;  // totals
  std::vector<std::pair<std::string, double>> available;  // the node's latest report
  int64_t start_time_ms = 0;
};

struct JobInfo {
  JobID job_id = 0;
  int driver_pid = 0;
  bool alive = true;
  int64_t start_time_ms = 0;
  std::string namespace_;
};

class GcsTables {
 public:
  // A node registering again (same id) replaces its record.
  void RegisterNode(NodeInfo node);
  Status MarkNodeDead(const NodeID& id);
  // The node's free resources now; NotFound for an unknown node.
  Status ReportResources(const NodeID& id, std::vector<std::pair<std::string, double>> available);
  const std::vector<NodeInfo>& nodes() const { return nodes_; }

  JobID AddJob(int driver_pid, const std::string& ns);
  Status MarkJobFinished(JobID id);
  const std::map<JobID, JobInfo>& jobs() const { return jobs_; }

  void KvPut(const std::string& key, std::string value) { kv_[key] = std::move(value); }
  StatusOr<std::string> KvGet(const std::string& key) const;
  bool KvDel(const std::string& key) { return kv_.erase(key) > 0; }
  std::vector<std::string> KvKeys(const std::string& prefix) const;

  // Actor table (lifecycle state machine, names per namespace).
  ActorTable& actors() { return actors_; }
  const ActorTable& actors() const { return actors_; }

  // Sums over the alive nodes: totals, and what they reported free (every
  // resource a node has appears, at zero when none is free).
  std::vector<std::pair<std::string, double>> ClusterTotals() const;
  std::vector<std::pair<std::string, double>> ClusterAvailable() const;

 private:
  std::vector<NodeInfo> nodes_;
  std::map<JobID, JobInfo> jobs_;
  std::map<std::string, std::string> kv_;
  ActorTable actors_;
  JobID next_job_id_ = 1;
};

}  // namespace rayts::gcs
