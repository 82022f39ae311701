// Memory monitor: the raylet's protection against the node running out of
// memory (Ray's MemoryMonitor + worker killing policy).
//
// Role: reads the node's memory usage (the cgroup's usage and limit when the
// process runs in a memory-limited cgroup, else /proc/meminfo MemTotal -
// MemAvailable) and, when usage passes a threshold fraction, picks one
// leased worker to kill. MemoryKillDriver::CheckOnce samples it on a timer (every
// `memory_monitor_period_ms`, 250 ms by default) and does the killing.
// Policy (SelectWorkerToKill, Ray's retriable-LIFO): among leased workers,
// prefer one whose owner would retry its task; among those, the most recently
// granted lease (the newest work loses the least progress). Non-retriable
// workers are killed only when no retriable one is left.
// Thread safety: the functions here are pure or read files; they hold no
// state and may be called from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/common/id.h"
#include "core/common/status.h"

namespace rayts::raylet {

struct MemorySnapshot {
  uint64_t used_bytes = 0;
  uint64_t total_bytes = 0;
  std::string source;  // "cgroup v2", "cgroup v1" or "/proc/meminfo"
  double fraction() const { return total_bytes == 0 ? 0.0 : static_cast<double>(used_bytes) / total_bytes; }
};

// A leased worker the monitor may kill.
struct KillCandidate {
  WorkerID worker;
  int pid = 0;
  uint64_t lease_id = 0;  // lease ids grow with grant order: larger is newer
  bool retriable = false;
  uint64_t rss_bytes = 0;
};

// Pure: does `snap` pass `threshold` (a fraction of total, in (0, 1])?
bool AboveThreshold(const MemorySnapshot& snap, double threshold);

// Pure: the index in `candidates` of the worker to kill, or nullopt when
// there is none. Retriable first, then the newest lease.
std::optional<size_t> SelectWorkerToKill(const std::vector<KillCandidate>& candidates);

// Parses /proc/meminfo text: used = MemTotal - MemAvailable. InvalidArgument
// when a field is missing.
StatusOr<MemorySnapshot> ParseMeminfo(const std::string& text);

// Where the cgroup files are (parameters for tests).
struct CgroupFiles {
  std::string root = "/sys/fs/cgroup";              // v2 here, v1 controllers under root/memory
  std::string proc_self_cgroup = "/proc/self/cgroup";
};

// The cgroup limit that binds this process and its usage: of this
// process's own cgroup (its path in /proc/self/cgroup: v2 "0::/a/b", v1
// "N:memory:/a/b") and each ancestor up to the mount root (a cgroup
// namespace or a container's bind mount shows its own cgroup there), the
// one with the smallest limit; v2 memory.max/current, v1
// memory.limit_in_bytes/usage_in_bytes, usage minus inactive file pages,
// as Ray counts. nullopt when no limit below `physical` is set.
std::optional<MemorySnapshot> ReadCgroupMemory(uint64_t physical, const CgroupFiles& files = {});

// The node's usage now: ReadCgroupMemory when a limit is set, else
// /proc/meminfo.
StatusOr<MemorySnapshot> ReadNodeMemory();

// Resident set size of `pid` (VmRSS in /proc/<pid>/status); 0 if unknown.
uint64_t ReadProcessRss(int pid);

// The message the owner shows in OutOfMemoryError (node usage vs threshold,
// the worker's RSS).
std::string OomKillMessage(const MemorySnapshot& snap, double threshold, const KillCandidate& victim);

}  // namespace rayts::raylet
