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

// This process's cgroup path for v2 ("0::/a/b") or for the v1 memory
// controller ("4:memory:/a/b", or "4:cpu,memory:/a/b"); "" when absent.
std::string OwnCgroupPath(const std::string& proc_self_cgroup, bool v2) {
  std::string text;
  if (!ReadFile(proc_self_cgroup, &text)) return "";
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(':');
    size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    bool match = v2 ? controllers.empty() : ("," + controllers + ",").find(",memory,") != std::string::npos;
    if (match) return line.substr(b + 1);
  }
  return "";
}

// `base` + `rel` and each of its parents up to `base` itself.
std::vector<std::string> SelfAndAncestors(const std::string& base, std::string rel) {
  std::vector<std::string> dirs;
  while (!rel.empty() && rel != "/") {
    dirs.push_back(base + (rel[0] == '/' ? "" : "/") + rel);
    size_t slash = rel.find_last_of('/');
    rel = slash == std::string::npos ? "" : rel.substr(0, slash);
  }
  dirs.push_back(base);
  return dirs;
}

struct CgroupLayout {
  const char* limit;
  const char* usage;
  const char* inactive_key;
  const char* source;
};

// Of `dirs`, the one with the smallest limit below `physical`, as a snapshot.
std::optional<MemorySnapshot> Tightest(const std::vector<std::string>& dirs, const CgroupLayout& l, uint64_t physical) {
  std::optional<MemorySnapshot> best;
  for (const std::string& dir : dirs) {
    std::string max, cur, stat;
    uint64_t limit = 0, usage = 0;
    if (!ReadFile(dir + "/" + l.limit, &max) || !ParseU64(max, &limit) || limit == 0 || limit >= physical) continue;
    if (!ReadFile(dir + "/" + l.usage, &cur) || !ParseU64(cur, &usage)) continue;
    if (best && limit >= best->total_bytes) continue;
    ReadFile(dir + "/memory.stat", &stat);
    uint64_t inactive = StatField(stat, l.inactive_key);
    best = MemorySnapshot{usage > inactive ? usage - inactive : 0, limit, l.source};
  }
  return best;
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

std::optional<MemorySnapshot> ReadCgroupMemory(uint64_t physical, const CgroupFiles& f) {
  static constexpr CgroupLayout kV2{"memory.max", "memory.current", "inactive_file", "cgroup v2"};
  static constexpr CgroupLayout kV1{"memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file",
                                    "cgroup v1"};
  auto v2 = Tightest(SelfAndAncestors(f.root, OwnCgroupPath(f.proc_self_cgroup, true)), kV2, physical);
  auto v1 = Tightest(SelfAndAncestors(f.root + "/memory", OwnCgroupPath(f.proc_self_cgroup, false)), kV1, physical);
  if (v2 && v1) return v1->total_bytes < v2->total_bytes ? v1 : v2;
  return v2 ? v2 : v1;
}

StatusOr<MemorySnapshot> ReadNodeMemory() {
  std::string text;
  if (!ReadFile("/proc/meminfo", &text)) return Status::IOError("cannot read /proc/meminfo");
  auto sys = ParseMeminfo(text);
  if (!sys.ok()) return sys.status();
  if (auto cg = ReadCgroupMemory(sys->total_bytes)) return *cg;
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
