// Error records: how core/ describes a failed object or task to the process
// that reads it (ts/api/errors.ts errorFromRecord turns a record into the
// matching RayError class).
//
// Role: one JSON object {"kind", "name", "message"[, "objectId"]} stored as
// an object's error value; "kind" is always its first key (ErrorRecordJson
// and the executor's records alike), so a record's kind is read from its
// prefix. A dependency record (DependencyErrorJson) wraps the task error of
// a result a task depended on. ErrorKind is defined here once; the addon exports
// the kind names to TypeScript (addon.ErrorKind), which types them and checks
// the list against the addon (test/unit/native_enums.test.ts).
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/common/json.h"

namespace rayts {

// Append only: the numbering is exported (0..kNumErrorKinds-1).
enum class ErrorKind : int {
  kTask = 0,           // the task threw (RayTaskError)
  kWorkerCrashed = 1,  // its worker died (WorkerCrashedError)
  kActorDied = 2,      // ActorDiedError
  kObjectLost = 3,     // ObjectLostError
  kOwnerDied = 4,      // OwnerDiedError
  kCancelled = 5,      // TaskCancelledError
  kStoreFull = 6,      // ObjectStoreFullError
  kOom = 7,            // the memory monitor killed its worker (OutOfMemoryError)
  kSystem = 8,         // RaySystemError
};
inline constexpr int kNumErrorKinds = 9;

// The kind as it appears in a record: "task", "worker_crashed", ...
inline const char* ErrorKindName(ErrorKind k) {
  switch (k) {
    case ErrorKind::kTask: return "task";
    case ErrorKind::kWorkerCrashed: return "worker_crashed";
    case ErrorKind::kActorDied: return "actor_died";
    case ErrorKind::kObjectLost: return "object_lost";
    case ErrorKind::kOwnerDied: return "owner_died";
    case ErrorKind::kCancelled: return "cancelled";
    case ErrorKind::kStoreFull: return "store_full";
    case ErrorKind::kOom: return "oom";
    case ErrorKind::kSystem: return "system";
  }
  return "system";
}

// {"kind":..., "name":..., "message":...[, "objectId":...]}
inline std::string ErrorRecordJson(ErrorKind kind, std::string_view name, std::string_view message,
                                   std::string_view object_id = {}) {
  std::string out = "{\"kind\":";
  JsonEscapeTo(&out, ErrorKindName(kind));
  out += ",\"name\":";
  JsonEscapeTo(&out, name);
  out += ",\"message\":";
  JsonEscapeTo(&out, message);
  if (!object_id.empty()) {
    out += ",\"objectId\":";
    JsonEscapeTo(&out, object_id);
  }
  out += "}";
  return out;
}

// True when `json` is the record of a task that threw (kind "task").
inline bool IsTaskErrorRecord(std::string_view json) { return json.starts_with(R"({"kind":"task")"); }

// Dependency records: a task whose argument holds a task error fails with
// {"kind":"task","name":"RayTaskError","message":"a result it depends on failed",
//  "dependency":N,"taskName":...,"cause":<the upstream record>}
// (Ray's dependency error: RayTaskError whose cause is the upstream error).
// N counts the failed tasks from the cause's task to this one: 1 while the
// chain nests (up to kMaxDependencyNesting records deep); a deeper chain
// restarts from its first error with N = the tasks in between, so a record
// stays bounded however long the chain. The executor writes the same shape
// (ts/api/error_records.ts dependencyRecord); "cause" is the last key, so
// a record's cause is the text between it and the closing brace.
inline constexpr int kMaxDependencyNesting = 32;

// Splits a dependency record into its count and its cause; false when
// `json` is not one.
inline bool ParseDependencyRecord(std::string_view json, int64_t* count, std::string_view* cause) {
  static constexpr std::string_view kPrefix =
      R"({"kind":"task","name":"RayTaskError","message":"a result it depends on failed","dependency":)";
  static constexpr std::string_view kCause = R"(,"cause":)";
  if (!json.starts_with(kPrefix) || !json.ends_with('}')) return false;
  size_t p = kPrefix.size();
  int64_t n = 0;
  while (p < json.size() && json[p] >= '0' && json[p] <= '9' && n < (int64_t{1} << 40)) n = n * 10 + (json[p++] - '0');
  // The first ,"cause": after the count is the key: inside a JSON string a
  // quote is always escaped, so that text cannot occur in taskName.
  size_t c = json.find(kCause, p);
  if (n <= 0 || c == std::string_view::npos) return false;
  *count = n;
  *cause = json.substr(c + kCause.size(), json.size() - 1 - (c + kCause.size()));
  return true;
}

// The dependency records a record nests, walked down to the first error of
// its chain.
struct DependencyChain {
  int depth = 0;          // dependency records, outermost included
  int64_t tasks = 0;      // tasks they count (the sum of their counts)
  std::string_view root;  // the first error of the chain
};
inline DependencyChain WalkDependencies(std::string_view json) {
  DependencyChain c;
  c.root = json;
  int64_t n = 0;
  std::string_view inner;
  while (ParseDependencyRecord(c.root, &n, &inner)) {
    c.depth++;
    c.tasks += n;
    c.root = inner;
  }
  return c;
}

// The record of task `task_name` failing because `upstream`, the task error
// of a result it depends on, failed.
inline std::string DependencyErrorJson(std::string_view task_name, std::string_view upstream) {
  const DependencyChain chain = WalkDependencies(upstream);
  const bool nest = chain.depth < kMaxDependencyNesting;
  std::string out(R"({"kind":"task","name":"RayTaskError","message":"a result it depends on failed","dependency":)");
  out += std::to_string(nest ? 1 : chain.tasks + 1);
  out += ",\"taskName\":";
  JsonEscapeTo(&out, task_name);
  out += R"(,"cause":)";
  out += nest ? upstream : chain.root;
  out += "}";
  return out;
}

}  // namespace rayts
