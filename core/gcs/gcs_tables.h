// GcsTables: the cluster's control-plane tables (node table, job table, KV,
// actor table).
//
// Role: the state behind the GcsService (gcs_service.h), which answers the
// wire requests; pure data, no sockets. Tables are in memory and every node,
// job and KV record is also written through a StoreClient (store_client.h;
// in memory now, Redis with GCS fault tolerance), and so is every actor
// record (ActorTable writes them through the same store). The KV reads from it.
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
#include "core/gcs/store_client.h"
#include <memory>

namespace rayts::gcs {

struct NodeInfo {
  NodeID node_id;
  std::string address;   // node server socket
  bool alive = true;
  std::vector<std::pair<std::string, double>> resources;  // totals
  std::vector<std::pair<std::string, double>> available;  // the node's latest report
  int64_t start_time_ms = 0;
  // Daemon nodes of a cluster (embedded: empty / false / 0).
  std::string node_ip;
  std::string hostname;
  bool is_head = false;
  int pid = 0;
  std::string session_dir;
  uint64_t report_version = 0;  // of `available`
  std::string death_reason;
  int64_t end_time_ms = 0;
  // Lease requests queued on the node, by shape (its latest report), and
  // shapes it refused lately because no node could ever run them.
  std::vector<std::pair<std::vector<std::pair<std::string, double>>, int>> pending_demand;
  std::vector<std::pair<std::vector<std::pair<std::string, double>>, int>> infeasible_demand;
  std::string node_manager_address;  // its node server's TCP address (ip:port)
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
  explicit GcsTables(std::unique_ptr<StoreClient> store = std::make_unique<InMemoryStoreClient>())
      : store_(std::move(store)), actors_(ActorTable::kDefaultMaxDeadActors, store_.get()) {}
  // A node registering again (same id) replaces its record.
  void RegisterNode(NodeInfo node);
  Status MarkNodeDead(const NodeID& id, const std::string& reason = "");
  // The node's free resources now; NotFound for an unknown node. A report
  // whose version (> 0) is older than the one held is ignored.
  Status ReportResources(const NodeID& id, std::vector<std::pair<std::string, double>> available,
                         uint64_t version = 0);
  const std::vector<NodeInfo>& nodes() const { return nodes_; }
  using Demand = std::vector<std::pair<std::vector<std::pair<std::string, double>>, int>>;
  void SetDemand(const NodeID& id, Demand pending, Demand infeasible) {
    for (auto& n : nodes_) {
      if (n.node_id != id) continue;
      n.pending_demand = std::move(pending);
      n.infeasible_demand = std::move(infeasible);
    }
  }
  const NodeInfo* node(const NodeID& id) const;

  JobID AddJob(int driver_pid, const std::string& ns);
  Status MarkJobFinished(JobID id);
  const std::map<JobID, JobInfo>& jobs() const { return jobs_; }

  void KvPut(const std::string& key, std::string value) { (void)store_->Put("kv", key, std::move(value)); }
  StatusOr<std::string> KvGet(const std::string& key) const { return store_->Get("kv", key); }
  bool KvDel(const std::string& key) { return store_->Delete("kv", key); }
  std::vector<std::string> KvKeys(const std::string& prefix) const;

  // The alive node whose session directory holds `address` (a worker's
  // socket, `<session>/sockets/...`, optionally `@ip:port`); nil if none.
  NodeID NodeOfAddress(const std::string& address) const;

  // Actor table (lifecycle state machine, names per namespace).
  ActorTable& actors() { return actors_; }
  const ActorTable& actors() const { return actors_; }

  // Sums over the alive nodes: totals, and what they reported free (every
  // resource a node has appears, at zero when none is free).
  std::vector<std::pair<std::string, double>> ClusterTotals() const;
  std::vector<std::pair<std::string, double>> ClusterAvailable() const;

 private:
  void StoreNode(const NodeInfo& n);
  void StoreJob(const JobInfo& j);

  std::unique_ptr<StoreClient> store_;
  std::vector<NodeInfo> nodes_;
  std::map<JobID, JobInfo> jobs_;
  ActorTable actors_;
  JobID next_job_id_ = 1;
};

}  // namespace rayts::gcs
