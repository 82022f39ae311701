#include "core/raylet/memory_monitor.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace rayts::raylet {

namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream f(path);
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// First unsigned number in `text`; false for "max" or nothing.
bool ParseU64(const std::string& text, uint64_t* out) {
  size_t i = 0;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t')) i++;
  if (i >= text.size() || text[i] < '0' || text[i] > '9') return false;
  uint64_t v = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; i++) v = v * 10 + static_cast<uint64_t>(text[i] - '0');
  *out = v;
  return true;
}

// Value of "key <number>" in a memory.stat style file; 0 if absent.
uint64_t StatField(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  uint64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

std::optional<MemorySnapshot> CgroupMemory(uint64_t physical) {
  std::string max, cur, stat;
  uint64_t limit = 0, usage = 0;
  if (ReadFile("/sys/fs/cgroup/memory.max", &max) && ReadFile("/sys/fs/cgroup/memory.current", &cur)) {
    if (!ParseU64(max, &limit) || !ParseU64(cur, &usage) || limit >= physical) return std::nullopt;
    ReadFile("/sys/fs/cgroup/memory.stat", &stat);
    uint64_t inactive = StatField(stat, "inactive_file");
    return MemorySnapshot{usage > inactive ? usage - inactive : 0, limit, "cgroup v2"};
  }
  if (ReadFile("/sys/fs/cgroup/memory/memory.limit_in_bytes", &max) &&
      ReadFile("/sys/fs/cgroup/memory/memory.usage_in_bytes", &cur)) {
    if (!ParseU64(max, &limit) || !ParseU64(cur, &usage) || limit >= physical) return std::nullopt;
    ReadFile("/sys/fs/cgroup/memory/memory.stat", &stat);
    uint64_t inactive = StatField(stat, "total_inactive_file");
    return MemorySnapshot{usage > inactive ? usage - inactive : 0, limit, "cgroup v1"};
  }
  return std::nullopt;
}

}  // namespace

bool AboveThreshold(const MemorySnapshot& snap, double threshold) {
  if (snap.total_bytes == 0) return false;
  return snap.fraction() > threshold;
}

std::optional<size_t> SelectWorkerToKill(const std::vector<KillCandidate>& candidates) {
  std::optional<size_t> best;
  for (size_t i = 0; i < candidates.size(); i++) {
    if (!best) {
      best = i;
      continue;
    }
    const KillCandidate& a = candidates[i];
    const KillCandidate& b = candidates[*best];
    if (a.retriable != b.retriable) {
      if (a.retriable) best = i;
      continue;
    }
    if (a.lease_id > b.lease_id) best = i;
  }
  return best;
}

StatusOr<MemorySnapshot> ParseMeminfo(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  uint64_t total = 0, available = 0;
  bool have_total = false, have_available = false;
  while (std::getline(in, line)) {
    uint64_t kb = 0;
    if (line.rfind("MemTotal:", 0) == 0 && ParseU64(line.substr(9), &kb)) {
      total = kb * 1024;
      have_total = true;
    } else if (line.rfind("MemAvailable:", 0) == 0 && ParseU64(line.substr(13), &kb)) {
      available = kb * 1024;
      have_available = true;
    }
  }
  if (!have_total || !have_available || total == 0) {
    return Status::InvalidArgument("/proc/meminfo has no MemTotal/MemAvailable");
  }
  return MemorySnapshot{available < total ? total - available : 0, total, "/proc/meminfo"};
}

StatusOr<MemorySnapshot> ReadNodeMemory() {
  std::string text;
  if (!ReadFile("/proc/meminfo", &text)) return Status::IOError("cannot read /proc/meminfo");
  auto sys = ParseMeminfo(text);
  if (!sys.ok()) return sys.status();
  if (auto cg = CgroupMemory(sys->total_bytes)) return *cg;
  return sys;
}

uint64_t ReadProcessRss(int pid) {
  std::string text;
  if (pid <= 0 || !ReadFile("/proc/" + std::to_string(pid) + "/status", &text)) return 0;
  size_t at = text.find("VmRSS:");
  uint64_t kb = 0;
  if (at == std::string::npos || !ParseU64(text.substr(at + 6, 32), &kb)) return 0;
  return kb * 1024;
}

std::string OomKillMessage(const MemorySnapshot& snap, double threshold, const KillCandidate& victim) {
  char frac[64];
  std::snprintf(frac, sizeof frac, "%.3f", snap.fraction());
  char thr[32];
  std::snprintf(thr, sizeof thr, "%.3f", threshold);
  return "the node's memory monitor killed its worker (pid " + std::to_string(victim.pid) + ", RSS " +
         Mib(victim.rss_bytes) + ") because node memory usage " + Mib(snap.used_bytes) + " / " +
         Mib(snap.total_bytes) + " (" + frac + ", from " + snap.source + ") passed the threshold " + thr +
         " (memoryUsageThreshold)";
}

}  // namespace rayts::raylet
