// NodeHealth: the GCS's health checks of its nodes (Ray's
// GcsHealthCheckManager), as plain logic over an injected clock.
//
// Role: the GcsServer calls Heartbeat when it hears from a node (any
// resource report or health-check reply counts) and Tick on a timer; Tick
// says which nodes to probe now and which have failed too often and are dead.
// A check is due `period` after the previous one (the first `initial_delay`
// after the node joins). A check passes at once if the node was heard from
// since the previous check; otherwise it probes, and the probe fails when no
// answer comes within `timeout` or the node has no connection to probe.
// `failure_threshold` failures in a row: dead.
// Thread safety: none; the GcsServer's io thread.
// Invariants: a node is reported dead exactly once, then forgotten.
#pragma once

#include <chrono>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/common/id.h"

namespace rayts::gcs {

struct HealthCheckConfig {
  // Ray's defaults (ray_config_def.h health_check_*).
  int initial_delay_ms = 5000;
  int period_ms = 3000;
  int timeout_ms = 10000;
  int failure_threshold = 5;
};

class NodeHealth {
 public:
  using Clock = std::chrono::steady_clock;
  explicit NodeHealth(HealthCheckConfig config) : config_(config) {}

  void AddNode(const NodeID& id, Clock::time_point now);
  void RemoveNode(const NodeID& id) { nodes_.erase(id); }
  void Heartbeat(const NodeID& id, Clock::time_point now);
  // Whether the node has a connection a probe can go out on.
  void SetConnected(const NodeID& id, bool connected);

  struct TickResult {
    std::vector<NodeID> probe;  // send a HealthCheck now
    std::vector<NodeID> dead;   // failed failure_threshold checks in a row
  };
  TickResult Tick(Clock::time_point now);

  size_t size() const { return nodes_.size(); }
  int failures(const NodeID& id) const;
  const HealthCheckConfig& config() const { return config_; }

 private:
  struct State {
    Clock::time_point next_check;
    Clock::time_point last_heard;
    Clock::time_point probe_sent;
    bool probing = false;
    bool connected = true;
    int failures = 0;
  };
  // Counts a failed check; true when the node is now dead.
  bool Fail(State* s, Clock::time_point now);

  HealthCheckConfig config_;
  std::unordered_map<NodeID, State, IdHash> nodes_;
};

}  // namespace rayts::gcs
