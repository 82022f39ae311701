// Error records: how core/ describes a failed object or task to the process
// that reads it (ts/api/errors.ts errorFromRecord turns a record into the
// matching RayError class).
//
// Role: one JSON object {"kind", "name", "message"[, "objectId"]} stored as
// an object's error value. ErrorKind is defined here once; the addon exports
// the kind names to TypeScript (addon.ErrorKind), which types them and checks
// the list against the addon (test/unit/native_enums.test.ts).
// Thread safety: pure functions.
#pragma once

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

}  // namespace rayts
