#include "core/gcs/actor_record.h"

#include <cstdlib>
#include <vector>

namespace rayts::gcs {

namespace {

// Record layout version: the first field.
constexpr const char* kVersion = "a2";

std::string Escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

bool Unescape(const std::string& s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') { *out += s[i]; continue; }
    if (++i == s.size()) return false;
    switch (s[i]) {
      case '\\': *out += '\\'; break;
      case 't': *out += '\t'; break;
      case 'n': *out += '\n'; break;
      default: return false;
    }
  }
  return true;
}

template <size_t N>
std::string IdHex(const BaseId<N>& id) { return id.IsNil() ? std::string() : id.Hex(); }

template <size_t N>
bool IdFromHex(const std::string& hex, BaseId<N>* out) {
  *out = BaseId<N>::Nil();
  if (hex.empty()) return true;
  if (hex.size() != 2 * N) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < N; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

bool Int(const std::string& s, long long* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtoll(s.c_str(), &end, 10);
  return end && *end == '\0';
}

}  // namespace

std::string EncodeActorRecord(const ActorInfo& a) {
  const std::string fields[] = {
      kVersion,
      IdHex(a.id),
      Escape(a.name),
      Escape(a.ns),
      Escape(a.class_name),
      a.detached ? "1" : "0",
      std::to_string(a.max_restarts),
      std::to_string(a.num_restarts),
      ActorStateName(a.state),
      IdHex(a.owner_worker),
      IdHex(a.owner_node),
      a.owner_alive ? "1" : "0",
      std::to_string(a.job),
      Escape(a.address),
      IdHex(a.worker),
      IdHex(a.node),
      Escape(a.death_cause),
      Escape(a.creation_spec),
      Escape(a.restart_spec),
      Escape(a.not_restartable),
  };
  std::string out;
  for (const std::string& f : fields) {
    if (!out.empty()) out += '\t';
    out += f;
  }
  return out;
}

StatusOr<ActorInfo> DecodeActorRecord(const std::string& bytes) {
  std::vector<std::string> f;
  size_t start = 0;
  while (true) {
    size_t tab = bytes.find('\t', start);
    f.push_back(bytes.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  auto bad = [](const char* what) { return Status::InvalidArgument(std::string("actor record: bad ") + what); };
  if (f.size() != 20 || f[0] != kVersion) return bad("layout (version or field count)");
  ActorInfo a;
  long long n = 0;
  if (!IdFromHex(f[1], &a.id) || a.id.IsNil()) return bad("id");
  if (!Unescape(f[2], &a.name) || !Unescape(f[3], &a.ns) || !Unescape(f[4], &a.class_name)) return bad("name");
  a.detached = f[5] == "1";
  if (!Int(f[6], &n)) return bad("max_restarts");
  a.max_restarts = static_cast<int>(n);
  if (!Int(f[7], &n)) return bad("num_restarts");
  a.num_restarts = static_cast<int>(n);
  bool known = false;
  for (ActorState s : {ActorState::kPendingCreation, ActorState::kAlive, ActorState::kRestarting, ActorState::kDead}) {
    if (f[8] == ActorStateName(s)) { a.state = s; known = true; }
  }
  if (!known) return bad("state");
  if (!IdFromHex(f[9], &a.owner_worker)) return bad("owner_worker");
  if (!IdFromHex(f[10], &a.owner_node)) return bad("owner_node");
  a.owner_alive = f[11] == "1";
  if (!Int(f[12], &n)) return bad("job");
  a.job = static_cast<JobID>(n);
  if (!Unescape(f[13], &a.address)) return bad("address");
  if (!IdFromHex(f[14], &a.worker)) return bad("worker");
  if (!IdFromHex(f[15], &a.node)) return bad("node");
  if (!Unescape(f[16], &a.death_cause) || !Unescape(f[17], &a.creation_spec)) return bad("death_cause");
  if (!Unescape(f[18], &a.restart_spec) || !Unescape(f[19], &a.not_restartable)) return bad("restart_spec");
  return a;
}

}  // namespace rayts::gcs
